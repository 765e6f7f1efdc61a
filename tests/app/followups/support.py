"""Test helpers of the follow-ups: a recording Rasa, tickets and notices made directly."""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy import Engine, select

from bot.core.db import (
    Agent,
    AgentRole,
    ComplaintGrade,
    Notice,
    ServiceRecord,
    Ticket,
    TicketStatus,
    UrgencyTier,
    session_factory,
)
from bot.service.outbox import CUSTOMER, NewNotice, enqueue

TOKEN = "rasa-token-for-followup-tests"
SHANGHAI = timezone(timedelta(hours=8))
DAY_10AM = datetime(2026, 12, 10, 10, 0, tzinfo=SHANGHAI)
"""A Thursday morning in the policy's zone: not quiet."""


class FakeRasa:
    """The part of Rasa's HTTP API the deliverer uses, recording what it receives.

    `POST /conversations/<id>/tracker/events` stores the events (with a timestamp) before it
    waits `delay` seconds and answers, like Rasa, which persists before it replies; `GET
    /conversations/<id>/tracker` returns them. `fail` answers 500 to appends.
    """

    def __init__(self) -> None:
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.appends: list[tuple[str, list[dict[str, Any]]]] = []
        self.tracker_reads = 0
        self.delay = 0.0
        self.fail = False
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _conversation(self) -> tuple[str, str, dict[str, list[str]]]:
                parts = urlsplit(self.path)
                path = unquote(parts.path)
                prefix = "/conversations/"
                rest = path[len(prefix) :]
                conversation, _, tail = rest.partition("/tracker")
                return conversation, tail, parse_qs(parts.query)

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                conversation, tail, query = self._conversation()
                if tail != "/events" or query.get("token") != [TOKEN]:
                    self._answer(401, {"error": "bad path or token"})
                    return
                events = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if fake.fail:
                    self._answer(500, {"error": "down"})
                    return
                with fake.lock:
                    stamped = [{**event, "timestamp": time.time()} for event in events]
                    fake.events.setdefault(conversation, []).extend(stamped)
                    fake.appends.append((conversation, events))
                time.sleep(fake.delay)
                self._answer(200, {"sender_id": conversation})

            def do_GET(self) -> None:
                conversation, tail, query = self._conversation()
                if tail != "" or query.get("token") != [TOKEN]:
                    self._answer(401, {"error": "bad path or token"})
                    return
                with fake.lock:
                    fake.tracker_reads += 1
                    events = list(fake.events.get(conversation, []))
                self._answer(200, {"sender_id": conversation, "events": events})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def user_said(self, conversation: str, at: datetime, text: str = "hi") -> None:
        """Adds a customer message at `at` (for the WeChat window)."""
        with self.lock:
            self.events.setdefault(conversation, []).append(
                {"event": "user", "text": text, "timestamp": at.timestamp()}
            )

    def sent_notice_ids(self) -> list[int]:
        """The `metadata.kefu.notice_id` of every bot message appended, in order."""
        with self.lock:
            return [
                event["metadata"]["kefu"]["notice_id"]
                for _, events in self.appends
                for event in events
                if event.get("event") == "bot"
            ]

    def __enter__(self) -> FakeRasa:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def add_agent(
    engine: Engine,
    username: str,
    role: AgentRole = AgentRole.agent,
    email: str | None = None,
    supervisor_id: int | None = None,
) -> int:
    """An agent row; its id."""
    with session_factory(engine).begin() as session:
        agent = Agent(
            username=username,
            display_name=username.title(),
            role=role,
            password_hash="x",
            active=True,
            created_at=datetime.now(timezone.utc),
            email=email,
            supervisor_id=supervisor_id,
        )
        session.add(agent)
        session.flush()
        return agent.id


_counter = iter(range(1, 10**9))


def add_ticket(engine: Engine, created_at: datetime, **values: Any) -> Ticket:
    """A ticket (with its service record) opened at `created_at`; `values` override columns."""
    n = next(_counter)
    customer = values.pop("customer_id", f"web:c{n}")
    channel = values.pop("channel", "web")
    language = values.pop("language", "zh")
    urgency = values.pop("urgency", UrgencyTier.normal)
    grade: ComplaintGrade | None = values.pop("complaint_grade", None)
    with session_factory(engine).begin() as session:
        record = ServiceRecord(
            customer_id=customer,
            channel=channel,
            language=language,
            category="problem",
            impacts=[],
            need_points=["fix it"],
            preferences={},
            special_requests=[],
            skipped=[],
            urgency=urgency,
            complaint_grade=grade,
            classification_reasons=[],
            correction_rounds=0,
            completeness=1.0,
            created_at=created_at,
        )
        session.add(record)
        session.flush()
        columns: dict[str, Any] = {
            "number": f"TK{created_at:%Y%m%d}{n:04d}",
            "record_id": record.id,
            "customer_id": customer,
            "channel": channel,
            "language": language,
            "status": TicketStatus.open,
            "urgency": urgency,
            "complaint_grade": grade,
            "due_at": created_at + timedelta(hours=24),
            "created_at": created_at,
            "updated_at": created_at,
            "summary": f"problem {n}",
            "sla_state": "ok",
            "reopen_count": 0,
        }
        columns.update(values)
        ticket = Ticket(**columns)
        session.add(ticket)
        session.flush()
        session.expunge(ticket)
        return ticket


def add_notice(
    engine: Engine,
    ticket: Ticket | None,
    key: str,
    due_at: datetime,
    kind: str = "progress_update",
    **values: Any,
) -> int:
    """A pending customer notice to the ticket's conversation; its id."""
    notice = NewNotice(
        key=key,
        kind=kind,
        audience=values.pop("audience", CUSTOMER),
        text=values.pop("text", f"text of {key}"),
        due_at=due_at,
        language=values.pop("language", ticket.language if ticket else "zh"),
        ticket_id=ticket.id if ticket else None,
        conversation_id=values.pop("conversation_id", ticket.customer_id if ticket else None),
        channel=values.pop("channel", ticket.channel if ticket else None),
        **values,
    )
    with session_factory(engine).begin() as session:
        row = enqueue(session, notice, due_at)
        assert row is not None
        session.flush()
        return row.id


def notice(engine: Engine, notice_id: int) -> Notice:
    """The notice row as stored now."""
    with session_factory(engine)() as session:
        row = session.get(Notice, notice_id)
        assert row is not None
        return row


def notices(engine: Engine, **where: Any) -> list[Notice]:
    """Notices matching column values, by id."""
    with session_factory(engine)() as session:
        query = select(Notice).order_by(Notice.id)
        for name, value in where.items():
            query = query.where(getattr(Notice, name) == value)
        return list(session.scalars(query))


class Inbox:
    """aiosmtpd handler keeping (recipients, message)."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"
