"""The monthly audit: does the service keep its plan? Execution, compliance, trends, repeats.

`build_monthly` measures a calendar month (policy zone) against the service plan's targets
(`policy.supervision.targets`): how the service loop executed (progress notices on time,
results within `result_within_hours`, satisfaction visits made, second follow-ups within
`second_followup_hours`, SLA hits), compliance (QA pass rate, red cards, appeals upheld or
overturned), the complaint rate per week of the month and over the 3 months before, repeat
problems (a customer back within 7 days on the same first intent or ticket category;
reopened tickets), and the month's frequent problems: questions left unanswered at least
`frequent_problem_min` times, queued once for the knowledge editors (`ReviewItem`,
`frequent_problem`, key `month:<YYYY-MM>:<hash>`). Writes `audit.html` and `audit.json`.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, or_, select
from sqlalchemy.orm import Session

from bot.core.db import (
    GENERATED,
    Conversation,
    FollowupTask,
    KbFeedback,
    KbOutcome,
    KbQuery,
    Notice,
    NoticeStatus,
    QaFinding,
    ReviewItem,
    ReviewSource,
    ReviewStatus,
    ServiceRecord,
    Ticket,
    session_factory,
)
from bot.core.settings import Settings
from bot.service.notices import CSAT, PROGRESS_NOTICE, RESULT
from bot.service.policy import ServicePolicy
from bot.supervision.metrics import day_bounds, period_metrics
from bot.supervision.report import desk_base, record_run, render_page, write_file, write_json
from bot.supervision.tallies import DONE_TICKET_STATUSES, question_key, rate

REPEAT_WINDOW = timedelta(days=7)
"""A customer back on the same problem within this window is a repeat."""
ON_TIME_GRACE = timedelta(hours=1)
"""A progress notice sent within this long after its due time is on time."""
_CJK = re.compile(r"[\u3400-\u9fff]")


def month_after(first: date) -> date:
    """The first day of the month after `first`'s."""
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1)


def month_before(first: date) -> date:
    """The first day of the month before `first`'s."""
    return (first.replace(day=1) - timedelta(days=1)).replace(day=1)


def _chunks(ids: list[int], size: int = 500) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


# --------------------------------------------------------------------------- execution
def _execution(
    session: Session, policy: ServicePolicy, start: datetime, end: datetime, now: datetime
) -> dict[str, Any]:
    """How the service loop kept its promises for the month (each as done / due and a rate)."""
    loop = policy.service_loop
    until = min(end, now)
    progress = session.execute(
        select(Notice.status, Notice.due_at, Notice.sent_at).where(
            Notice.kind == PROGRESS_NOTICE,
            Notice.due_at >= start,
            Notice.due_at < until,
            Notice.status != NoticeStatus.cancelled,
        )
    ).all()
    on_time = sum(
        row.status is NoticeStatus.sent
        and row.sent_at is not None
        and row.sent_at <= row.due_at + ON_TIME_GRACE
        for row in progress
    )
    resolved: dict[int, datetime | None] = {
        ticket_id: resolved_at
        for ticket_id, resolved_at in session.execute(
            select(Ticket.id, Ticket.resolved_at).where(
                Ticket.status.in_(DONE_TICKET_STATUSES),
                Ticket.resolved_at >= start,
                Ticket.resolved_at < end,
            )
        )
    }
    first_sent: dict[str, dict[int, datetime]] = {RESULT: {}, CSAT: {}}
    for chunk in _chunks(list(resolved)):
        for kind, ticket_id, sent_at in session.execute(
            select(Notice.kind, Notice.ticket_id, Notice.sent_at).where(
                Notice.ticket_id.in_(chunk),
                Notice.kind.in_((RESULT, CSAT)),
                Notice.status == NoticeStatus.sent,
            )
        ):
            sent = first_sent[kind]
            if ticket_id is not None and sent_at is not None:
                sent[ticket_id] = min(sent.get(ticket_id, sent_at), sent_at)
    window = timedelta(hours=loop.result_within_hours)
    results = sum(
        ticket_id in first_sent[RESULT]
        and resolved_at is not None
        and first_sent[RESULT][ticket_id] <= resolved_at + window
        for ticket_id, resolved_at in resolved.items()
    )
    tasks = session.execute(
        select(FollowupTask.created_at, FollowupTask.done_at).where(
            FollowupTask.created_at >= start, FollowupTask.created_at < until
        )
    ).all()
    limit = timedelta(hours=loop.second_followup_hours)
    followed = sum(
        row.done_at is not None and row.done_at <= row.created_at + limit for row in tasks
    )

    def entry(done: int, due: int) -> dict[str, Any]:
        return {"done": done, "due": due, "rate": rate(done, due)}

    return {
        "progress_notices_on_time": entry(on_time, len(progress)),
        "results_in_time": entry(results, len(resolved)),
        "csat_visits_made": entry(len(first_sent[CSAT]), len(resolved)),
        "second_followups_in_time": entry(followed, len(tasks)),
    }


# --------------------------------------------------------------------------- compliance
def _compliance(
    session: Session, figures: dict[str, Any], start: datetime, end: datetime
) -> dict[str, Any]:
    """QA pass rate, red cards and the appeals of the month's findings."""
    appeals: Counter[str] = Counter(
        {
            status: count
            for status, count in session.execute(
                select(QaFinding.appeal_status, func.count())
                .join(Conversation, Conversation.id == QaFinding.conversation_pk)
                .where(Conversation.started_at >= start, Conversation.started_at < end)
                .group_by(QaFinding.appeal_status)
            )
        }
    )
    decided = appeals["upheld"] + appeals["overturned"]
    return {
        "qa_pass_rate": figures["qa_pass_rate"],
        "qa_scored_subjects": figures["qa_scored_subjects"],
        "red_cards": figures["red_card_count"],
        "findings": sum(appeals.values()),
        "appealed": decided + appeals["pending"],
        "appeals_pending": appeals["pending"],
        "appeals_upheld": appeals["upheld"],
        "appeals_overturned": appeals["overturned"],
        "overturn_rate": rate(appeals["overturned"], decided),
    }


# --------------------------------------------------------------------------- trends, repeats
def _complaint_rate(session: Session, start: datetime, end: datetime) -> dict[str, Any]:
    conversations = session.scalar(
        select(func.count()).where(Conversation.started_at >= start, Conversation.started_at < end)
    )
    complaints = session.scalar(
        select(func.count()).where(
            Ticket.created_at >= start, Ticket.created_at < end, Ticket.complaint_grade.is_not(None)
        )
    )
    return {
        "conversations": conversations or 0,
        "complaints": complaints or 0,
        "rate": rate(complaints or 0, conversations or 0),
    }


def _complaint_trend(session: Session, policy: ServicePolicy, month: date) -> dict[str, Any]:
    """The complaint rate per week of the month (days 1-7, 8-14...) and of 3 months before."""
    after = month_after(month)
    weeks = []
    first = month
    while first < after:
        last = min(first + timedelta(days=7), after)
        span = _complaint_rate(session, day_bounds(policy, first)[0], day_bounds(policy, last)[0])
        weeks.append({"start": first.isoformat(), "end": (last - timedelta(1)).isoformat(), **span})
        first = last
    months = []
    current = month
    for _ in range(3):
        current = month_before(current)
        span = _complaint_rate(
            session,
            day_bounds(policy, current)[0],
            day_bounds(policy, month_after(current))[0],
        )
        months.append({"month": current.strftime("%Y-%m"), **span})
    return {"weeks": weeks, "months": months[::-1]}


def _repeats(session: Session, start: datetime, end: datetime) -> dict[str, Any]:
    """Customers back within `REPEAT_WINDOW` on the same first intent / ticket category."""
    conversations = session.execute(
        select(Conversation.conversation_id, Conversation.first_intent, Conversation.started_at)
        .where(
            Conversation.started_at >= start - REPEAT_WINDOW,
            Conversation.started_at < end,
            Conversation.first_intent.is_not(None),
        )
        .order_by(Conversation.started_at)
    ).all()
    tickets = session.execute(
        select(Ticket.customer_id, ServiceRecord.category, Ticket.created_at, Ticket.reopen_count)
        .join(ServiceRecord, ServiceRecord.id == Ticket.record_id)
        .where(Ticket.created_at >= start - REPEAT_WINDOW, Ticket.created_at < end)
        .order_by(Ticket.created_at)
    ).all()

    def count(rows: list[tuple[str, str, datetime]]) -> tuple[int, int]:
        last: dict[tuple[str, str], datetime] = {}
        seen = repeated = 0
        for customer, topic, at in rows:
            before = last.get((customer, topic))
            if at >= start:
                seen += 1
                repeated += before is not None and at - before <= REPEAT_WINDOW
            last[(customer, topic)] = at
        return repeated, seen

    repeated_conversations, with_intent = count(
        [(row[0], row[1] or "", row[2]) for row in conversations]
    )
    repeated_tickets, month_tickets = count([(row[0], row[1], row[2]) for row in tickets])
    reopened = sum(row.reopen_count > 0 for row in tickets if row.created_at >= start)
    return {
        "conversations": with_intent,
        "repeat_conversations": repeated_conversations,
        "repeat_conversation_rate": rate(repeated_conversations, with_intent),
        "tickets": month_tickets,
        "repeat_tickets": repeated_tickets,
        "repeat_ticket_rate": rate(repeated_tickets, month_tickets),
        "reopened_tickets": reopened,
        "reopen_rate": rate(reopened, month_tickets),
    }


# --------------------------------------------------------------------------- frequent problems
def frequent_problems(
    session: Session, start: datetime, end: datetime, minimum: int
) -> list[dict[str, Any]]:
    """Questions left unanswered at least `minimum` times in [start, end), most asked first.

    Knowledge-base misses ("no answer" or "did not solve it") and first questions of
    conversations that ended unresolved, grouped by `question_key`, once per customer. Only
    real customers' questions: a generated day (`kefu demo-day`) never reaches the editors.
    """
    naive = (start.astimezone(UTC).replace(tzinfo=None), end.astimezone(UTC).replace(tzinfo=None))
    asked = session.execute(
        select(KbQuery.sender_id, KbQuery.query, KbQuery.channel, KbQuery.language,
               KbQuery.created_at)
        .where(KbQuery.created_at >= naive[0], KbQuery.created_at < naive[1],
               KbQuery.index_version != GENERATED,
               or_(KbQuery.outcome == KbOutcome.no_answer,
                   KbQuery.feedback == KbFeedback.not_solved))
        .order_by(KbQuery.created_at)
    ).all()  # fmt: skip
    ended = session.execute(
        select(Conversation.conversation_id, Conversation.first_question, Conversation.channel,
               Conversation.language, Conversation.started_at)
        .where(Conversation.started_at >= start, Conversation.started_at < end,
               Conversation.outcome == "unresolved", Conversation.first_question.is_not(None),
               Conversation.source != GENERATED)
        .order_by(Conversation.started_at)
    ).all()  # fmt: skip
    groups: dict[str, dict[str, Any]] = {}
    customers: dict[str, set[str]] = defaultdict(set)
    for sender, text, channel, language, at in [*asked, *ended]:
        key = question_key(text or "")
        if not key or sender in customers[key]:
            continue
        customers[key].add(sender)
        moment = at if at.tzinfo else at.replace(tzinfo=UTC)
        group = groups.setdefault(
            key,
            {"key": key, "wordings": Counter(), "first_at": moment, "customer_id": sender,
             "channel": channel, "language": language},
        )  # fmt: skip
        group["wordings"][(text or "").strip()] += 1
        group["first_at"] = min(group["first_at"], moment)
    found = [
        {
            "key": key,
            "question": group["wordings"].most_common(1)[0][0],
            "count": len(customers[key]),
            "first_at": group["first_at"],
            "customer_id": group["customer_id"],
            "channel": group["channel"],
            "language": "zh" if _CJK.search(key) else (group["language"] or "en"),
        }
        for key, group in groups.items()
        if len(customers[key]) >= minimum
    ]
    return sorted(found, key=lambda item: (-item["count"], item["key"]))


def _queue(
    session: Session, month: date, problems: list[dict[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    """Queues each frequent problem once for the knowledge editors; returns them for the page."""
    listed = []
    for problem in problems:
        digest = hashlib.sha1(problem["key"].encode("utf-8")).hexdigest()[:12]  # noqa: S324
        source_key = f"month:{month:%Y-%m}:{digest}"
        item = session.scalars(
            select(ReviewItem).where(ReviewItem.source_key == source_key)
        ).first()
        new = item is None
        if item is None:
            item = ReviewItem(
                source_key=source_key, source=ReviewSource.frequent_problem,
                question=problem["question"][:2000], answer=None,
                language=problem["language"], customer_id=problem["customer_id"],
                channel=problem["channel"], hit_entry_id=None, created_at=problem["first_at"],
                collected_at=now, status=ReviewStatus.pending, decided_by=None,
                decided_at=None, decision=None,
            )  # fmt: skip
            session.add(item)
            session.flush()
        listed.append(
            {"question": problem["question"], "count": problem["count"],
             "review_item_id": item.id, "status": item.status.value, "new": new}
        )  # fmt: skip
    return listed


# --------------------------------------------------------------------------- the audit
def build_monthly(
    settings: Settings,
    engine: Engine,
    policy: ServicePolicy,
    month: date,
    out_dir: Path,
    now: datetime,
) -> Path:
    """Builds the audit of the month starting `month` (its 1st day); returns audit.html.

    Idempotent: frequent problems are queued for review once per month and question.
    Raises ValueError when `month` is not the first day of a month.
    """
    if month.day != 1:
        raise ValueError(f"a month starts on its first day; {month} is not one")
    start, end = day_bounds(policy, month)[0], day_bounds(policy, month_after(month))[0]
    figures = period_metrics(engine, policy, start, end, now=now)
    with session_factory(engine).begin() as session:
        execution = _execution(session, policy, start, end, now)
        execution["sla_hit"] = {
            "done": figures["sla"]["hit"],
            "due": figures["sla"]["hit"] + figures["sla"]["missed"],
            "rate": figures["sla_hit_rate"],
        }
        problems = frequent_problems(session, start, end, policy.supervision.frequent_problem_min)
        data = {
            "month": month.strftime("%Y-%m"),
            "start": start.isoformat(),
            "end": end.isoformat(),
            "built_at": now.isoformat(),
            "conversations": figures["conversations"],
            "tickets_created": figures["tickets_created"],
            "complaint_tickets": figures["complaint_tickets"],
            "targets": figures["targets"],
            "execution": execution,
            "compliance": _compliance(session, figures, start, end),
            "complaint_trend": _complaint_trend(session, policy, month),
            "repeats": _repeats(session, start, end),
            "frequent_problem_min": policy.supervision.frequent_problem_min,
            "frequent_problems": _queue(session, month, problems, now),
        }
    write_json(out_dir / "audit.json", data)
    page = render_page(
        "monthly_audit.html",
        a=data,
        desk=desk_base(settings, None),
        built=now.astimezone(policy.zone).strftime("%Y-%m-%d %H:%M"),
    )
    path = out_dir / "audit.html"
    write_file(path, page)
    record_run(engine, "monthly", month.strftime("%Y-%m"), path, now)
    return path
