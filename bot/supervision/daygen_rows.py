"""The rows of a generated day: conversations, messages, tickets, handoffs, notices.

`DayWriter` stores a batch of `daygen_script.Script`s in one session with bulk inserts (ids
by RETURNING, in parameter order), and decides what happened to each ticket after its
conversation (`Timeline`): when an agent responded, resolved it, when the customer rated it;
whatever would come after `now` has not happened yet. See `bot.supervision.daygen`.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from bot.core.db import (
    GENERATED,
    ComplaintGrade,
    Conversation,
    ConversationMessage,
    FollowupOutcome,
    FollowupTask,
    Handoff,
    HandoffMessage,
    HandoffStatus,
    KbFeedback,
    KbOutcome,
    KbQuery,
    MessageKind,
    Notice,
    NoticeStatus,
    ServiceRecord,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketStatus,
    UrgencyTier,
)
from bot.handoff.packet import (
    CustomerProfile,
    HandoffPacket,
    IntentReading,
    KbAnswer,
    TranscriptLine,
)
from bot.service import notices as texts
from bot.service.policy import ServicePolicy
from bot.service.sla import at_risk_moment, resolution_due_at
from bot.supervision import daygen_material as material
from bot.supervision.daygen_script import (
    GREETING_INTENTS,
    AgentProfile,
    Case,
    Script,
    is_open,
    next_opening,
    rating,
)

TICKET_PREFIX = "TK9"
"""Generated ticket numbers: `TK9<yymmdd><5 digits>` (real ones begin with the year, `TK2…`)."""
_NOT_FIRST = GREETING_INTENTS | {"inform", "choose", "kb_select", "rate_service"}


@dataclass(frozen=True)
class Team:
    """The generated agents (profiles and account ids) and their supervisor."""

    profiles: tuple[AgentProfile, ...]
    ids: dict[str, int]
    supervisor_id: int | None
    supervisor: str | None


@dataclass
class Timeline:
    """A ticket's life after the conversation: responded, resolved, rated (None: not yet)."""

    responded: datetime | None
    resolved: datetime | None
    rated: datetime | None
    satisfaction: int | None
    resolution_due: datetime


class DayWriter:
    """Stores a chunk of scripts in one session with bulk inserts, ids by RETURNING."""

    def __init__(
        self,
        session: Session,
        policy: ServicePolicy,
        team: Team,
        rng: random.Random,
        now: datetime,
        day: date,
        sequence: int,
    ) -> None:
        self.session, self.policy, self.team, self.rng = session, policy, team, rng
        self.now, self.day, self.sequence = now, day, sequence
        self.stats: Counter[str] = Counter()

    def _insert(self, model: Any, rows: list[dict[str, Any]]) -> list[int]:
        """Core executemany with RETURNING (batched: "insertmanyvalues"); the new ids in order."""
        if not rows:
            return []
        table = model.__table__
        statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return list(self.session.connection().execute(statement, rows).scalars())

    def _bulk(self, model: Any, rows: list[dict[str, Any]]) -> None:
        """Core executemany (the ORM's bulk path sends one statement per row on psycopg)."""
        if rows:
            self.session.connection().execute(insert(model.__table__), rows)

    def store(self, scripts: list[Script]) -> None:
        """Writes the scripts and everything their cases made."""
        cased = [s for s in scripts if s.case is not None]
        timelines = [self._timeline(s.case) for s in cased if s.case is not None]
        timeline_of = {id(s): line for s, line in zip(cased, timelines, strict=True)}
        record_ids = self._insert(ServiceRecord, [self._record(s) for s in cased])
        numbers = [self._number() for _ in cased]
        ticket_rows = [
            self._ticket(s, number, record, line)
            for s, number, record, line in zip(cased, numbers, record_ids, timelines, strict=True)
        ]
        ticket_ids = self._insert(Ticket, ticket_rows)
        ticket_of = {id(s): (tid, n) for s, tid, n in zip(cased, ticket_ids, numbers, strict=True)}
        handed = [s for s in cased if s.case is not None and s.case.reason is not None]
        handoff_ids = self._insert(Handoff, [self._handoff(s, *ticket_of[id(s)]) for s in handed])
        handoff_of = {id(s): h for s, h in zip(handed, handoff_ids, strict=True)}
        conversation_rows = []
        for s in scripts:
            ticket_id, number = ticket_of.get(id(s), (None, None))
            for line in s.lines:
                if number and "{ticket_number}" in line.text:
                    line.text = line.text.replace("{ticket_number}", number)
            line_ = timeline_of.get(id(s))
            satisfaction = line_.satisfaction if line_ is not None else None
            conversation_rows.append(
                self._conversation(s, handoff_of.get(id(s)), ticket_id, satisfaction)
            )
        pks = self._insert(Conversation, conversation_rows)
        self._bulk(ConversationMessage, [
            {"conversation_pk": pk, "at": line.at, "role": line.role, "author": line.author,
             "text": line.text, "intent": line.intent, "confidence": line.confidence,
             "action": line.action, "source_key": f"gen:{pk}:{n}"}
            for s, pk in zip(scripts, pks, strict=True) for n, line in enumerate(s.lines)
        ])  # fmt: skip
        self._bulk(HandoffMessage, [
            {"handoff_id": hid, "kind": MessageKind(line.role), "author": line.author,
             "text": line.text, "created_at": line.at, "source_key": f"gen:{hid}:{n}"}
            for s, hid in zip(handed, handoff_ids, strict=True) if s.case is not None
            for n, line in enumerate(s.case.desk)
        ])  # fmt: skip
        self._bulk(KbQuery, [
            {"sender_id": s.sender, "channel": s.channel, "language": s.language,
             "query": ask.query, "outcome": KbOutcome(ask.outcome), "entry_id": ask.entry_id,
             "confidence": ask.confidence, "top_hits": ask.top_hits, "index_version": GENERATED,
             "feedback": KbFeedback(ask.feedback) if ask.feedback else None,
             "created_at": ask.at.replace(tzinfo=None)}
            for s in scripts for ask in s.kb
        ])  # fmt: skip
        events, notices, tasks = [], [], []
        for s, tid, row, timeline in zip(cased, ticket_ids, ticket_rows, timelines, strict=True):
            assert s.case is not None
            events += self._events(tid, row, timeline, s.case)
            notices += self._notices(tid, row, timeline)
            tasks += self._followup(tid, row, timeline)
        self._bulk(TicketEvent, events)
        self._bulk(Notice, notices)
        self._bulk(FollowupTask, tasks)
        self.stats.update(
            messages=sum(len(s.lines) for s in scripts),
            handoffs=len(handoff_ids),
            tickets=len(ticket_ids),
            kb_queries=sum(len(s.kb) for s in scripts),
            notices=len(notices),
        )
        self.stats.update(f"outcome:{row['outcome']}" for row in conversation_rows)

    def _number(self) -> str:
        number = f"{TICKET_PREFIX}{self.day:%y%m%d}{self.sequence:05d}"
        self.sequence += 1
        return number

    # ------------------------------------------------------------------ one conversation
    def _conversation(
        self, s: Script, handoff_id: int | None, ticket_id: int | None, rating_: int | None
    ) -> dict[str, Any]:
        case = s.case
        roles = Counter(line.role for line in s.lines)
        customer = [line for line in s.lines if line.role == "customer"]
        first = next((line for line in customer if line.intent not in _NOT_FIRST), None)
        asked = next((line for line in customer if line.intent != "greet"), None)
        agent_lines = [line for line in s.lines if line.role == "agent"]
        requested = case.requested_at if case is not None else None
        first_reply = agent_lines[0].at if agent_lines else None
        if not roles["bot"] and not roles["agent"]:
            outcome = "abandoned"
        elif case is not None and case.reason is not None:
            outcome = "handoff"
        elif case is not None:
            outcome = "ticket"
        else:
            outcome = "unresolved" if s.failed else "self_service"
        names = case.agents if case is not None else []
        return {
            "conversation_id": s.sender,
            "channel": s.channel,
            "language": s.language,
            "source": GENERATED,
            "started_at": s.lines[0].at,
            "last_message_at": s.lines[-1].at,
            "ended_at": s.lines[-1].at,
            "customer_messages": roles["customer"],
            "bot_messages": roles["bot"],
            "agent_messages": roles["agent"],
            "kb_answers": s.kb_answers,
            "fallbacks": s.fallbacks,
            "first_intent": first.intent if first else None,
            "first_question": asked.text if asked else None,
            "handoff_id": handoff_id,
            "ticket_id": ticket_id,
            "agent_id": self.team.ids.get(names[-1]) if names else None,
            "agents": list(dict.fromkeys(names)),
            "transfers": max(len(names) - 1, 0),
            "handoff_requested_at": requested,
            "first_agent_reply_at": first_reply,
            "first_response_seconds": (first_reply - requested).total_seconds()
            if first_reply and requested
            else None,
            "outcome": outcome,
            "rating": rating_,
            "red_cards": 0,
        }

    # ------------------------------------------------------------------ its case
    def _timeline(self, case: Case) -> Timeline:
        rng, now = self.rng, self.now
        grade = ComplaintGrade(case.grade) if case.grade else None
        resolution_due = resolution_due_at(
            self.policy, UrgencyTier(case.tier), grade, case.created_at, case.due_at
        )
        responded = case.claimed_at
        if responded is None:  # a ticket the bot opened: an agent takes it from the queue
            share = rng.uniform(0.05, 0.8) if rng.random() > 0.07 else rng.uniform(1.02, 1.6)
            responded = self._at_work(case.created_at + (case.due_at - case.created_at) * share)
        resolved = case.resolved_at
        if resolved is None:
            span = max(resolution_due - responded, timedelta(hours=2))
            share = rng.uniform(0.05, 0.7) if rng.random() > 0.06 else rng.uniform(1.02, 1.4)
            resolved = self._at_work(responded + span * share)
        satisfaction, rated = case.rating, resolved if case.rating else None
        if satisfaction is None and rng.random() < 0.55:
            satisfaction = rating(rng, case.lapses)
            rated = resolved + timedelta(hours=rng.uniform(0.2, 30))
        if rated is not None and rated > now:
            satisfaction = rated = None
        if resolved > now:
            resolved = satisfaction = rated = None
        if responded > now:
            responded = None
        return Timeline(responded, resolved, rated, satisfaction, resolution_due)

    def _at_work(self, moment: datetime) -> datetime:
        """`moment`, or a little after the desk opens when it falls outside business hours."""
        if is_open(self.policy, moment):
            return moment
        return next_opening(self.policy, moment) + timedelta(minutes=self.rng.uniform(0, 50))

    def _record(self, s: Script) -> dict[str, Any]:
        case = s.case
        assert case is not None
        return {
            "customer_id": s.sender,
            "channel": s.channel,
            "language": s.language,
            "category": case.category,
            "order_number": case.order_number,
            "product": case.product,
            "situation": case.order_number or case.product,
            "problem": case.problem,
            "implication": case.implication,
            "impacts": case.impacts,
            "need_payoff": case.need_payoff,
            "need_points": [],
            "preferences": {},
            "special_requests": [],
            "skipped": [],
            "urgency": UrgencyTier(case.tier),
            "complaint_grade": ComplaintGrade(case.grade) if case.grade else None,
            "classification_reasons": [],
            "correction_rounds": case.correction_rounds,
            "completeness": case.completeness,
            "created_at": case.created_at,
            "confirmation_due_at": None,
            "due_at": case.due_at,
            "confirmed_at": case.created_at,
        }

    def _ticket(self, s: Script, number: str, record_id: int, line: Timeline) -> dict[str, Any]:
        case = s.case
        assert case is not None
        now = self.now
        owner = case.agents[-1] if case.agents else self.rng.choice(self.team.profiles).username
        if line.resolved is not None:
            closed = line.resolved + timedelta(days=3)
            status = TicketStatus.closed if closed <= now else TicketStatus.resolved
        elif line.responded is not None:
            status, closed = TicketStatus.in_progress, None
        else:
            status = TicketStatus.pending_agent if case.reason else TicketStatus.open
            closed = None
        due = line.resolution_due if line.responded else case.due_at
        late = (line.responded or now) > case.due_at or (line.resolved or now) > line.resolution_due
        if line.resolved is not None:
            state = "breached" if late else "ok"
        elif now >= due:
            state = "breached"
        else:
            start = line.responded or case.created_at
            state = "at_risk" if now >= at_risk_moment(self.policy, start, due) else "ok"
        kind = material.RESULTS[case.kind]
        subject = f"{case.product} ({case.order_number})" if case.order_number else case.product
        summary = " · ".join((case.category, subject, " ".join(case.problem.split())))
        return {
            "number": number,
            "record_id": record_id,
            "customer_id": s.sender,
            "channel": s.channel,
            "language": s.language,
            "status": status,
            "urgency": UrgencyTier(case.tier),
            "complaint_grade": ComplaintGrade(case.grade) if case.grade else None,
            "due_at": due,
            "created_at": case.created_at,
            "updated_at": line.rated
            or closed
            or line.resolved
            or line.responded
            or case.created_at,
            "resolved_at": line.resolved,
            "satisfaction": line.satisfaction,
            "summary": summary[:120],
            "response_due_at": case.due_at,
            "resolution_due_at": line.resolution_due,
            "first_responded_at": line.responded,
            "sla_state": state,
            "sla_check_at": None,
            "escalated_at": None,
            "assignee_id": self.team.ids.get(owner),
            "supervisor_id": self.team.supervisor_id,
            "last_progress_at": line.responded,
            "next_progress_at": None,
            "result": (kind[1] if s.language == "en" else kind[0]) if line.resolved else None,
            "improvement": None,
            "reopen_count": 0,
            "closed_at": closed if status == TicketStatus.closed else None,
        }

    def _handoff(self, s: Script, ticket_id: int, number: str) -> dict[str, Any]:
        case = s.case
        assert case is not None and case.requested_at is not None
        transcript = [
            TranscriptLine(at=line.at, speaker=line.role, text=line.text, channel=s.channel)
            for line in s.lines
            if line.at <= case.requested_at and line.role in ("customer", "bot")
        ]
        intents = [
            IntentReading(at=line.at, text=line.text, intent=line.intent,
                          confidence=line.confidence)
            for line in s.lines if line.role == "customer" and line.at <= case.requested_at
        ]  # fmt: skip
        answers = [
            KbAnswer(at=ask.at, query=ask.query, outcome=ask.outcome, entry_id=ask.entry_id,
                     confidence=ask.confidence, feedback=ask.feedback)
            for ask in s.kb if ask.at <= case.requested_at
        ]  # fmt: skip
        step = material.NEXT_STEPS[case.need_payoff or "information"]
        packet = HandoffPacket(
            conversation_id=s.sender,
            channel=s.channel,
            language="en" if s.language == "en" else "zh",
            reason=case.reason or "explicit_request",
            created_at=case.requested_at,
            transcript=transcript,
            intents=intents,
            kb_answers=answers,
            spin={"situation": case.order_number or case.product, "problem": case.problem,
                  "implication": case.implication, "need_payoff": case.need_payoff},
            urgency_tier=case.tier,
            complaint_grade=case.grade,
            due_at=case.due_at,
            ticket_number=number,
            customer=CustomerProfile(id=s.sender, first_seen=s.lines[0].at),
            earlier_tickets=[],
            suggested_next_step=f"{step[0]} · {step[1]}",
        )  # fmt: skip
        return {
            "conversation_id": s.sender,
            "channel": s.channel,
            "language": s.language,
            "reason": case.reason,
            "status": HandoffStatus.handed_back if case.handed_back else HandoffStatus.resolved,
            "ticket_id": ticket_id,
            "agent_id": self.team.ids.get(case.agents[-1]) if case.agents else None,
            "packet": packet.as_json(),
            "due_at": case.due_at,
            "created_at": case.requested_at,
            "claimed_at": case.claimed_at,
            "ended_at": case.handoff_ended_at or s.lines[-1].at,
        }

    def _events(
        self, ticket_id: int, row: dict[str, Any], line: Timeline, case: Case
    ) -> list[dict[str, Any]]:
        """The ticket's history: opened, taken, resolved (with the result), rated, closed."""
        first = TicketStatus.pending_agent if case.reason else TicketStatus.open
        agent = case.agents[-1] if case.agents else "agent"
        working, done, status = (
            TicketStatus.in_progress,
            TicketStatus.resolved,
            TicketEventKind.status,
        )
        entries: list[tuple[datetime | None, TicketStatus | None, TicketStatus, str, str | None]]
        entries = [
            (row["created_at"], None, first, "bot", None),
            (line.responded, first, working, agent, None),
            (line.resolved, working, done, agent, row["result"]),
            (line.rated, done, done, "customer", f"satisfaction {line.satisfaction}/5"),
            (row["closed_at"], done, TicketStatus.closed, "scheduler", None),
        ]
        return [
            {"ticket_id": ticket_id, "at": at, "from_status": old, "to_status": new,
             "actor": actor, "note": note, "visible_to_customer": actor != "customer",
             "kind": TicketEventKind.rating if actor == "customer" else status}
            for at, old, new, actor, note in entries if at is not None
        ]  # fmt: skip

    def _notices(self, ticket_id: int, row: dict[str, Any], line: Timeline) -> list[dict[str, Any]]:
        """The result, the satisfaction question and, unrated, its reminder: sent or cancelled."""
        if line.resolved is None:
            return []
        loop, lang, number = self.policy.service_loop, row["language"], row["number"]
        result_at = min(line.resolved + timedelta(minutes=1), self.now)
        asked = min(line.resolved + timedelta(minutes=self.rng.uniform(2, 90)), self.now)
        reminder = asked + timedelta(days=loop.satisfaction_reminder_after_days)
        result = texts.result(number, row["result"], None, lang, loop.reopen_within_days)
        buttons = texts.rating_buttons(lang)
        sent = NoticeStatus.sent
        rows = [
            (f"result:{ticket_id}:0", texts.RESULT, result_at, sent, result, None),
            (f"csat:{ticket_id}:0", texts.CSAT, asked, sent, texts.csat_question(number, lang),
             buttons),
        ]  # fmt: skip
        if line.satisfaction is None:
            later = reminder > self.now
            rows.append((f"csat_reminder:{ticket_id}:0", texts.CSAT_REMINDER, reminder,
                         NoticeStatus.cancelled if later else sent,
                         texts.csat_reminder(number, lang), buttons))  # fmt: skip
        return [
            {"key": key, "kind": kind, "audience": "customer", "ticket_id": ticket_id,
             "conversation_id": row["customer_id"], "channel": row["channel"], "language": lang,
             "text": text, "buttons": options,
             "slots": {"rating_ticket": number} if options else None, "urgent": False,
             "due_at": at, "status": status, "attempts": int(status is sent),
             "sent_at": at if status is sent else None,
             "via": "rasa" if status is sent else None, "created_at": at}
            for key, kind, at, status, text, options in rows
        ]  # fmt: skip

    def _followup(
        self, ticket_id: int, row: dict[str, Any], line: Timeline
    ) -> list[dict[str, Any]]:
        """An unhappy rating's second follow-up, done (open ones would alert: left out)."""
        loop = self.policy.service_loop
        if (
            line.satisfaction is None
            or line.rated is None
            or line.satisfaction > loop.unhappy_score
        ):
            return []
        done = line.rated + timedelta(hours=self.rng.uniform(1, loop.second_followup_hours * 1.2))
        if done > self.now:
            return []
        outcome = self.rng.choices(list(FollowupOutcome), [0.6, 0.25, 0.15])[0]
        return [{
            "key": f"followup:{ticket_id}:0", "ticket_id": ticket_id, "score": line.satisfaction,
            "assignee_id": self.team.supervisor_id, "created_at": line.rated,
            "due_at": line.rated + timedelta(hours=loop.second_followup_hours),
            "done_at": done, "outcome": outcome, "done_by": self.team.supervisor or "supervisor",
            "note": "已电话回访，客户接受处理方案。 · called back, customer accepted the solution.",
        }]  # fmt: skip
