"""Delivering the outbox: claim a notice, send it on the right channel, record how it went.

Exactly once, across workers and crashes:

- **Claim** by compare-and-set: `UPDATE notices SET status='sending', claimed_by=<token>,
  lease_until=<real now + lease>, attempts=attempts+1 WHERE id=? AND (status='pending' AND
  due_at <= now OR status='sending' AND lease_until < real now)`. One worker wins each row on
  SQLite and PostgreSQL alike (no `SKIP LOCKED` needed); claims take rows in id order, so two
  workers never wait on each other in a cycle.
- **Mark** by compare-and-set on the claim token: only the claimant records the outcome.
- **Crash**: a worker killed after Rasa took the message but before it marked the notice
  leaves an expired claim. Every message to a conversation carries `metadata.kefu.notice_id`,
  so the next claimant of a notice with an earlier attempt reads the Rasa tracker first and
  marks the notice sent when the message is already there, instead of sending it again.
  Email and text messages cannot be looked up that way: a crash between the SMTP server's
  acceptance and the commit may repeat an email (the logged SMS sender drops repeats by key).

Customer notices respect the quiet hours (urgent cases aside: the notice's own flag, an urgent
ticket or a major complaint) and WeChat's 48-hour window: outside it the message goes by
email (the verified address on file, when SMTP is configured), else by text message (the
verified phone), else it is recorded undeliverable with a desk alert for the ticket's agent.
Staff notices are emailed to the recipient agent when SMTP is configured, else the desk alert
the planner raised is their delivery (`via="desk"`). A failure puts the notice back with a
backoff; after `MAX_ATTEMPTS` it is undeliverable and alerted.

Time: `now` is the scheduler's clock (injectable: what is due, quiet hours, windows, `sent_at`);
leases use the real clock, because crashes happen in real time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine, and_, or_, select, update
from sqlalchemy.orm import Session, aliased

from bot.core.db import (
    Agent,
    ComplaintGrade,
    Notice,
    NoticeStatus,
    Ticket,
    TicketEvent,
    TicketEventKind,
    UrgencyTier,
    session_factory,
)
from bot.core.settings import Settings
from bot.customers.directory import CustomerDirectory
from bot.followups.sms import LoggedSmsSender, SmsError, SmsSender
from bot.handoff.rasa_api import RasaApiError, RasaClient, bot_event, slot_event
from bot.service.mailer import ConfirmationLetter, MailError, send_letter
from bot.service.outbox import STAFF, raise_alert
from bot.service.policy import ServicePolicy, load_policy
from bot.service.sla import next_quiet_end

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
"""Attempts after which a notice is recorded undeliverable."""

RETRY_STEP = timedelta(seconds=30)
"""Backoff after a failed attempt: this times the number of attempts so far."""

CONCURRENCY = 8
"""Conversations served at once (each conversation's notices go in order)."""

Mailer = Callable[[str, str, str], Awaitable[bool]]
"""Sends (to, subject, text); False when email is off; raises `MailError` on failure."""


def _real_now() -> datetime:
    return datetime.now(timezone.utc)


def default_worker_id() -> str:
    """`host:pid`, how a claim names its worker."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}"


@dataclass(frozen=True)
class Delivery:
    """What became of one notice in a delivery run."""

    id: int
    kind: str
    ticket: str | None
    conversation: str | None
    status: str
    """`sent`, `undeliverable`, `deferred` (quiet hours) or `retry` (failed, back later)."""
    via: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able view: id, kind, ticket, conversation, via, status (+ error when any)."""
        view: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "ticket": self.ticket,
            "conversation": self.conversation,
            "via": self.via,
            "status": self.status,
        }
        if self.error:
            view["error"] = self.error
        return view


@dataclass(frozen=True)
class _Claimed:
    """A claimed notice with what delivering it needs (plain values: crosses threads)."""

    id: int
    key: str
    kind: str
    audience: str
    token: str
    attempts: int
    due_at: datetime
    conversation_id: str | None
    channel: str | None
    language: str
    text: str
    buttons: list[dict[str, str]] | None
    slots: dict[str, Any] | None
    urgent: bool
    ticket_id: int | None
    ticket_number: str | None
    assignee_id: int | None
    recipient_email: str | None

    @property
    def english(self) -> bool:
        return self.language.lower().startswith("en")


class Deliverer:
    """Claims due notices and delivers them (Rasa, email, SMS or the desk).

    Database work runs in worker threads; `deliver_ids` and `deliver_due` are safe to call
    from an event loop (the web app's, the scheduler's).
    """

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        policy: ServicePolicy,
        rasa: RasaClient,
        mailer: Mailer | None = None,
        sms: SmsSender | None = None,
        *,
        directory: CustomerDirectory | None = None,
        worker_id: str | None = None,
        clock: Callable[[], datetime] = _real_now,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self.settings = settings
        self.policy = policy
        self.rasa = rasa
        self.worker_id = worker_id or default_worker_id()
        self._sessions = session_factory(engine)
        self._mailer = mailer or self._smtp_mailer
        self._sms: SmsSender = sms or LoggedSmsSender(_sms_path(settings))
        self._directory = directory or CustomerDirectory(engine)
        self._clock = clock
        self._concurrency = max(1, concurrency)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        engine: Engine,
        policy: ServicePolicy | None = None,
        *,
        worker_id: str | None = None,
    ) -> Deliverer:
        """A deliverer with the configured Rasa, SMTP and the logged SMS sender."""
        return cls(
            settings,
            engine,
            policy if policy is not None else load_policy(),
            RasaClient.from_settings(settings),
            worker_id=worker_id,
        )

    async def close(self) -> None:
        """Closes the Rasa client's connections."""
        await self.rasa.close()

    # ------------------------------------------------------------------ entry points
    async def deliver_ids(self, ids: Sequence[int], now: datetime) -> list[Delivery]:
        """Delivers these notices now if they are due and nobody else holds them.

        For a change that owes a message at once (the desk's progress update, a resolve).
        Notices another worker holds, already sent or not yet due are skipped (not listed).
        """
        if not ids:
            return []
        claimed = await asyncio.to_thread(self._claim, now, list(ids), None)
        return await self._deliver(claimed, now)

    async def deliver_due(self, now: datetime, limit: int | None = None) -> list[Delivery]:
        """Delivers every notice due at `now` (and expired claims), batch by batch.

        `limit` caps the notices handled in this call (default: until none is due). A notice
        put back for later (quiet hours, backoff) is due after `now`, so the loop ends.
        """
        batch = self.settings.followups_batch_size
        done: list[Delivery] = []
        while limit is None or len(done) < limit:
            size = batch if limit is None else min(batch, limit - len(done))
            claimed = await asyncio.to_thread(self._claim, now, None, size)
            if not claimed:
                break
            done += await self._deliver(claimed, now)
        return done

    # ------------------------------------------------------------------ claiming
    def _claim(self, now: datetime, ids: list[int] | None, size: int | None) -> list[_Claimed]:
        """Claims the given notices, or up to `size` due ones; what this worker won."""
        real = self._clock()
        token = f"{self.worker_id}/{uuid.uuid4().hex[:10]}"
        lease_until = real + timedelta(seconds=self.settings.followups_lease_seconds)
        claimable = or_(
            and_(Notice.status == NoticeStatus.pending, Notice.due_at <= now),
            and_(Notice.status == NoticeStatus.sending, Notice.lease_until < real),
        )
        with self._sessions() as session:
            if ids is None:
                candidates = self._due_ids(session, now, real, size or 1)
            else:
                candidates = sorted(set(ids))
        if not candidates:
            return []
        won: list[int] = []
        with self._sessions.begin() as session:
            for notice_id in sorted(candidates):  # one lock order for every worker
                result = session.execute(
                    update(Notice)
                    .where(Notice.id == notice_id, claimable)
                    .values(
                        status=NoticeStatus.sending,
                        claimed_by=token,
                        lease_until=lease_until,
                        attempts=Notice.attempts + 1,
                    )
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    won.append(notice_id)
            return self._load(session, won, token)

    @staticmethod
    def _due_ids(session: Session, now: datetime, real: datetime, size: int) -> list[int]:
        """Pending notices due at `now` (oldest first) and claims expired at `real`."""
        due = list(
            session.scalars(
                select(Notice.id)
                .where(Notice.status == NoticeStatus.pending, Notice.due_at <= now)
                .order_by(Notice.due_at, Notice.id)
                .limit(size)
            )
        )
        expired = list(
            session.scalars(
                select(Notice.id)
                .where(Notice.status == NoticeStatus.sending, Notice.lease_until < real)
                .order_by(Notice.id)
                .limit(size)
            )
        )
        return sorted(set(expired + due))

    @staticmethod
    def _load(session: Session, ids: list[int], token: str) -> list[_Claimed]:
        if not ids:
            return []
        recipient = aliased(Agent)
        rows = session.execute(
            select(
                Notice,
                Ticket.number,
                Ticket.urgency,
                Ticket.complaint_grade,
                Ticket.assignee_id,
                recipient.email,
            )
            .outerjoin(Ticket, Ticket.id == Notice.ticket_id)
            .outerjoin(recipient, recipient.id == Notice.recipient_agent_id)
            .where(Notice.id.in_(ids))
            .order_by(Notice.id)
        ).all()
        claimed = []
        for notice, number, urgency, grade, assignee_id, email in rows:
            claimed.append(
                _Claimed(
                    id=notice.id,
                    key=notice.key,
                    kind=notice.kind,
                    audience=notice.audience,
                    token=token,
                    attempts=notice.attempts,
                    due_at=notice.due_at,
                    conversation_id=notice.conversation_id,
                    channel=notice.channel,
                    language=notice.language,
                    text=notice.text,
                    buttons=notice.buttons,
                    slots=notice.slots,
                    urgent=bool(notice.urgent)
                    or urgency is UrgencyTier.urgent
                    or grade is ComplaintGrade.major,
                    ticket_id=notice.ticket_id,
                    ticket_number=number,
                    assignee_id=assignee_id,
                    recipient_email=email,
                )
            )
        return claimed

    # ------------------------------------------------------------------ delivering
    async def _deliver(self, claimed: list[_Claimed], now: datetime) -> list[Delivery]:
        """Delivers claimed notices: conversations in parallel, each one's notices in order."""
        groups: dict[str, list[_Claimed]] = {}
        for notice in claimed:
            groups.setdefault(notice.conversation_id or f"#{notice.id}", []).append(notice)
        semaphore = asyncio.Semaphore(self._concurrency)

        async def run(group: list[_Claimed]) -> list[Delivery]:
            async with semaphore:
                return [await self._deliver_one(notice, now) for notice in group]

        results = await asyncio.gather(*(run(group) for group in groups.values()))
        by_id = {d.id: d for group in results for d in group}
        return [by_id[notice.id] for notice in claimed]

    async def _deliver_one(self, notice: _Claimed, now: datetime) -> Delivery:
        try:
            if notice.audience == STAFF:
                return await self._deliver_staff(notice, now)
            return await self._deliver_customer(notice, now)
        except (RasaApiError, MailError, SmsError) as error:
            return await asyncio.to_thread(self._retry, notice, now, str(error))

    async def _deliver_customer(self, notice: _Claimed, now: datetime) -> Delivery:
        quiet_end = None if self._exempt(notice) else next_quiet_end(self.policy, now)
        if quiet_end is not None:
            return await asyncio.to_thread(self._defer, notice, quiet_end)
        conversation = notice.conversation_id
        if not conversation:
            return await asyncio.to_thread(
                self._undeliverable, notice, now, "no conversation to write to"
            )
        tracker: dict[str, Any] | None = None
        if notice.attempts > 1:  # an earlier attempt may have reached Rasa before a crash
            tracker = await self.rasa.tracker(conversation)
            if _carries_notice(tracker, notice.id):
                return await asyncio.to_thread(
                    self._finish, notice, now, "rasa", "found in the conversation after a retry"
                )
        if _is_wechat(notice):
            tracker = tracker if tracker is not None else await self.rasa.tracker(conversation)
            window = timedelta(hours=self.policy.service_loop.wechat_window_hours)
            last = _last_user_message(tracker)
            if last is None or now - last > window:
                return await self._fallback(notice, now)
        await self.rasa.append(conversation, self._events(notice))
        return await asyncio.to_thread(self._finish, notice, now, "rasa", None)

    def _exempt(self, notice: _Claimed) -> bool:
        quiet = self.policy.service_loop.quiet_hours
        return quiet is None or (quiet.urgent_exempt and notice.urgent)

    def _events(self, notice: _Claimed) -> list[dict[str, Any]]:
        metadata = {
            "kefu": {"notice_id": notice.id, "kind": notice.kind, "ticket": notice.ticket_number}
        }
        slots = [slot_event(name, value) for name, value in (notice.slots or {}).items()]
        return [*slots, bot_event(notice.text, metadata, notice.buttons)]

    async def _fallback(self, notice: _Claimed, now: datetime) -> Delivery:
        """WeChat's window is closed: email, else SMS, else undeliverable."""
        identity = notice.conversation_id or ""
        if self.settings.smtp_host:
            email = await asyncio.to_thread(self._directory.email_on_file, identity)
            if email:
                subject, body = _email(notice)
                if await self._mailer(email, subject, body):
                    return await asyncio.to_thread(self._finish, notice, now, "email", None)
        phone = await asyncio.to_thread(self._directory.verified_phone, identity)
        if phone:
            await asyncio.to_thread(self._sms.send, phone, _sms_text(notice), notice.key, now)
            return await asyncio.to_thread(self._finish, notice, now, "sms", None)
        reason = (
            "WeChat's 48-hour window is closed and the customer has no verified email "
            "or phone on file"
        )
        return await asyncio.to_thread(self._undeliverable, notice, now, reason)

    async def _deliver_staff(self, notice: _Claimed, now: datetime) -> Delivery:
        if self.settings.smtp_host and notice.recipient_email:
            subject, body = _email(notice)
            if await self._mailer(notice.recipient_email, subject, body):
                return await asyncio.to_thread(self._finish, notice, now, "email", None)
        return await asyncio.to_thread(self._finish, notice, now, "desk", None)

    async def _smtp_mailer(self, to: str, subject: str, text: str) -> bool:
        return await send_letter(
            self.settings, ConfirmationLetter(to=to, subject=subject, text=text)
        )

    # ------------------------------------------------------------------ recording
    def _mine(self, notice: _Claimed) -> Any:
        return and_(
            Notice.id == notice.id,
            Notice.status == NoticeStatus.sending,
            Notice.claimed_by == notice.token,
        )

    def _finish(self, notice: _Claimed, now: datetime, via: str, note: str | None) -> Delivery:
        """Marks the notice sent (if this worker still holds it) and notes it on the ticket."""
        with self._sessions.begin() as session:
            result = session.execute(
                update(Notice)
                .where(self._mine(notice))
                .values(
                    status=NoticeStatus.sent,
                    sent_at=now,
                    via=via,
                    error=note,
                    lease_until=None,
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                logger.warning("Notice %s was sent after this worker's claim ran out.", notice.id)
            elif notice.audience != STAFF and notice.ticket_id is not None:
                _history(session, notice, now, f"{notice.kind} → {via}")
        return self._result(notice, "sent", via, note)

    def _retry(self, notice: _Claimed, now: datetime, error: str) -> Delivery:
        """Puts the notice back with a backoff, or gives up after `MAX_ATTEMPTS`."""
        logger.warning("Notice %s, attempt %d: %s", notice.id, notice.attempts, error)
        if notice.attempts >= MAX_ATTEMPTS:
            return self._undeliverable(
                notice, now, f"gave up after {notice.attempts} attempts: {error}"
            )
        with self._sessions.begin() as session:
            session.execute(
                update(Notice)
                .where(self._mine(notice))
                .values(
                    status=NoticeStatus.pending,
                    due_at=max(notice.due_at, now) + RETRY_STEP * notice.attempts,
                    error=error[:2000],
                    claimed_by=None,
                    lease_until=None,
                )
                .execution_options(synchronize_session=False)
            )
        return self._result(notice, "retry", None, error)

    def _defer(self, notice: _Claimed, until: datetime) -> Delivery:
        """Quiet hours: back to pending until they end; the claim does not count as an attempt."""
        with self._sessions.begin() as session:
            session.execute(
                update(Notice)
                .where(self._mine(notice))
                .values(
                    status=NoticeStatus.pending,
                    due_at=until,
                    attempts=Notice.attempts - 1,
                    claimed_by=None,
                    lease_until=None,
                )
                .execution_options(synchronize_session=False)
            )
        return self._result(notice, "deferred", None, f"quiet hours until {until.isoformat()}")

    def _undeliverable(self, notice: _Claimed, now: datetime, reason: str) -> Delivery:
        """Records that nobody could receive it and alerts the ticket's agent."""
        with self._sessions.begin() as session:
            result = session.execute(
                update(Notice)
                .where(self._mine(notice))
                .values(status=NoticeStatus.undeliverable, error=reason[:2000], lease_until=None)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                raise_alert(
                    session,
                    key=f"undeliverable:{notice.id}",
                    kind="undeliverable",
                    severity="warning",
                    text=_undeliverable_text(notice, reason),
                    now=now,
                    ticket_id=notice.ticket_id,
                    agent_id=notice.assignee_id,
                )
                if notice.ticket_id is not None and notice.audience != STAFF:
                    _history(session, notice, now, f"{notice.kind} undeliverable: {reason}")
        return self._result(notice, "undeliverable", None, reason)

    @staticmethod
    def _result(notice: _Claimed, status: str, via: str | None, error: str | None) -> Delivery:
        return Delivery(
            id=notice.id,
            kind=notice.kind,
            ticket=notice.ticket_number,
            conversation=notice.conversation_id,
            status=status,
            via=via,
            error=error,
        )


# ---------------------------------------------------------------------- helpers
def _sms_path(settings: Settings) -> Any:
    return settings.sms_log_path or settings.var_dir / "logs" / "sms.log"


def _history(session: Session, notice: _Claimed, now: datetime, note: str) -> None:
    """A `notice` entry on the ticket's history (the status stays as it is)."""
    status = session.scalar(select(Ticket.status).where(Ticket.id == notice.ticket_id))
    if status is None or notice.kind == "progress_update":
        return  # the desk recorded the update itself
    session.add(
        TicketEvent(
            ticket_id=notice.ticket_id,
            at=now,
            from_status=status,
            to_status=status,
            actor="scheduler",
            note=note[:500],
            kind=TicketEventKind.notice,
            visible_to_customer=False,
        )
    )


def _is_wechat(notice: _Claimed) -> bool:
    return notice.channel == "wechat" or (notice.conversation_id or "").startswith("wechat:")


def _carries_notice(tracker: dict[str, Any], notice_id: int) -> bool:
    """Whether the conversation already holds the bot message of this notice."""
    for event in tracker.get("events") or []:
        if not isinstance(event, dict) or event.get("event") != "bot":
            continue
        metadata = event.get("metadata")
        kefu = metadata.get("kefu") if isinstance(metadata, dict) else None
        if isinstance(kefu, dict) and kefu.get("notice_id") == notice_id:
            return True
    return False


def _last_user_message(tracker: dict[str, Any]) -> datetime | None:
    """When the customer last wrote (UTC), from the tracker's `user` events."""
    latest: float | None = None
    for event in tracker.get("events") or []:
        if isinstance(event, dict) and event.get("event") == "user":
            stamp = event.get("timestamp")
            if isinstance(stamp, int | float) and (latest is None or stamp > latest):
                latest = float(stamp)
    return None if latest is None else datetime.fromtimestamp(latest, timezone.utc)


def _options(notice: _Claimed) -> list[str]:
    return [button.get("title", "") for button in notice.buttons or [] if button.get("title")]


def _email(notice: _Claimed) -> tuple[str, str]:
    """Subject and text of a notice sent by email."""
    number = notice.ticket_number
    if notice.audience == STAFF:
        first = notice.text.strip().splitlines()[0] if notice.text.strip() else notice.kind
        return f"[Kefu] {first[:120]}", notice.text + "\n"
    if notice.english:
        subject = f"About your ticket {number}" if number else "A message from customer service"
        tail = "Reply in our chat, or on WeChat, to answer."
        options = "Options: " + " / ".join(_options(notice)) if notice.buttons else ""
    else:
        subject = f"关于您的工单 {number}" if number else "客服消息"
        tail = "如需回复，请在微信或在线客服对话中告诉我们。"
        options = "可选回复：" + " / ".join(_options(notice)) if notice.buttons else ""
    body = "\n\n".join(part for part in (notice.text, options, tail) if part)
    return subject, body + "\n"


def _sms_text(notice: _Claimed) -> str:
    options = " / ".join(_options(notice))
    text = f"{notice.text} ({options})" if options else notice.text
    return f"【Kefu】{text}" if not notice.english else f"[Kefu] {text}"


def _undeliverable_text(notice: _Claimed, reason: str) -> str:
    where = f"工单 {notice.ticket_number} 的" if notice.ticket_number else ""
    return f"{where}客户消息（{notice.kind}）未能送达，请人工联系客户：{reason}"
