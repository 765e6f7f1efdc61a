"""A generated day of conversations: the dashboard, the reports and the benchmark get real work.

`generate_day` writes one calendar day (policy zone) of finished conversations as a shop
would have them: about three quarters in Chinese, on WeChat, the web chat (socket.io, the shop
app's REST channel) and Telegram, more at 10-12, 14-17 and 20-22; most solved by the bot from
the knowledge base or an order lookup, some recorded as tickets, some handed to agents who
mostly do well and now and then slip (see `daygen_script`). The texts are the project's own
(`daygen_material`). Rows: `conversations` (source `generated`, ended, outcome set,
`scored_at` NULL so the inspector scores them), `conversation_messages`, `handoffs` and
`handoff_messages`, `service_records` and `tickets` with their history, `kb_queries`
(`index_version` `generated`), the notices the service loop would have sent, follow-up tasks.

No side effects: nothing is left for the follow-up scheduler (`sla_check_at` and
`next_progress_at` are NULL, every resolved ticket has its `result:`, `csat:` and, unrated,
`csat_reminder:` notices already sent or cancelled, unhappy ratings' follow-ups are done), no
alert is raised, nothing is emailed, and the inspector raises no red-card alert for generated
conversations. Ticket numbers are `TK9<yymmdd><5 digits>`: real ones begin with the year
(`TK2…`), so the two never meet. Generated agents are created disabled (no login) unless
they exist already; `kefu demo-day` gives them the demo password in local runs.

Deterministic for a seed and a day (the database's ids aside). Bulk inserts.
"""

from __future__ import annotations

import random
import secrets
import time as clock
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from bot.accounts.agents import AgentStore
from bot.core.db import (
    GENERATED,
    Agent,
    AgentRole,
    Conversation,
    ConversationMessage,
    DeskAlert,
    FollowupTask,
    Handoff,
    HandoffMessage,
    KbQuery,
    Notice,
    QaFinding,
    QaScore,
    ServiceRecord,
    Ticket,
    TicketEvent,
    session_factory,
)
from bot.service.policy import ServicePolicy
from bot.supervision import daygen_material as material
from bot.supervision.daygen_rows import TICKET_PREFIX, DayWriter, Team
from bot.supervision.daygen_script import (
    DEFAULT_AGENTS,
    AgentProfile,
    Script,
    script_conversation,
    sender_id,
)
from bot.supervision.metrics import day_bounds

__all__ = [
    "GENERATED",
    "TICKET_PREFIX",
    "Team",
    "delete_day",
    "ensure_agents",
    "generate_day",
    "generate_month",
    "generated_conversations",
]

HOURLY_LOAD = (
    1.0, 0.6, 0.4, 0.3, 0.3, 0.4, 0.8, 1.5, 2.8, 4.5, 6.5, 6.8,
    5.0, 4.8, 6.0, 6.4, 6.2, 5.2, 4.2, 4.6, 6.0, 6.3, 5.0, 2.6,
)  # fmt: skip
"""Conversations started per hour of the day (policy zone), relative."""
CHINESE_SHARE = 0.75
CHANNELS = {
    "zh": {"wechat": 0.58, "socketio": 0.33, "rest": 0.07, "telegram": 0.02},
    "en": {"socketio": 0.45, "telegram": 0.3, "wechat": 0.15, "rest": 0.1},
}
CHUNK = 1000
"""Conversations stored per transaction."""


# ---------------------------------------------------------------------- public
def generate_day(
    engine: Engine,
    policy: ServicePolicy,
    day: date,
    conversations: int,
    *,
    seed: int = 7,
    now: datetime | None = None,
    agents: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Writes about `conversations` finished conversations started on `day` (policy zone).

    Conversations that would not have ended by `now` (default: the current time) are left
    out, so today gets the part of the day that has passed. Returns counts by kind.
    """
    started = clock.perf_counter()
    now = (now or datetime.now(UTC)).astimezone(UTC)
    team = ensure_agents(engine, policy, agents)
    rng = random.Random(f"kefu-daygen:{seed}:{day.isoformat()}")  # noqa: S311 - reproducible
    idle = timedelta(minutes=policy.supervision.conversation_idle_minutes)
    scripts: list[Script] = []
    for start in _starts(rng, policy, day, conversations):
        if start > now - idle:
            break
        script = _script(rng, policy, team.profiles, start)
        if script.lines and script.lines[-1].at <= now - idle:
            scripts.append(script)
    stats: Counter[str] = Counter()
    sessions = session_factory(engine)
    sequence = _next_ticket_sequence(engine, day)
    for first in range(0, len(scripts), CHUNK):
        with sessions.begin() as session:
            writer = DayWriter(session, policy, team, rng, now, day, sequence)
            writer.store(scripts[first : first + CHUNK])
            sequence = writer.sequence
            stats.update(writer.stats)
    return {
        "date": day.isoformat(),
        "conversations": len(scripts),
        **{k: stats[k] for k in ("messages", "handoffs", "tickets", "kb_queries", "notices")},
        "outcomes": {
            key.removeprefix("outcome:"): n
            for key, n in stats.items()
            if key.startswith("outcome:")
        },
        "languages": dict(Counter(s.language for s in scripts)),
        "channels": dict(Counter(s.channel for s in scripts)),
        "seconds": round(clock.perf_counter() - started, 2),
    }


def generate_month(
    engine: Engine,
    policy: ServicePolicy,
    last_day: date,
    days: int = 30,
    per_day: int = 3334,
    *,
    seed: int = 7,
    now: datetime | None = None,
    agents: Sequence[str] | None = None,
) -> dict[str, Any]:
    """`generate_day` for the `days` days up to `last_day`: `per_day` on average.

    Weekends are busier (+12 %) and every day varies by up to 8 %; the month's total stays
    `days * per_day` (less what `now` leaves out).
    """
    rng = random.Random(f"kefu-daymonth:{seed}:{last_day.isoformat()}")  # noqa: S311
    dates = [last_day - timedelta(days=back) for back in range(days - 1, -1, -1)]
    weights = [(1.12 if d.weekday() >= 5 else 1.0) * rng.uniform(0.92, 1.08) for d in dates]
    scale = per_day * days / sum(weights) if weights else 0.0
    total: Counter[str] = Counter()
    for day, weight in zip(dates, weights, strict=True):
        count = round(weight * scale)
        stats = generate_day(engine, policy, day, count, seed=seed, now=now, agents=agents)
        total.update({k: v for k, v in stats.items() if isinstance(v, int | float)})
    return {"days": days, "last_day": last_day.isoformat(), **dict(total)}


def generated_conversations(
    engine: Engine, policy: ServicePolicy | None = None, day: date | None = None
) -> int:
    """How many generated conversations the database holds (started on `day`, if given)."""
    query = select(func.count()).where(Conversation.source == GENERATED)
    if policy is not None and day is not None:
        start, end = day_bounds(policy, day)
        query = query.where(Conversation.started_at >= start, Conversation.started_at < end)
    with session_factory(engine)() as session:
        return int(session.scalar(query) or 0)


def delete_day(engine: Engine, policy: ServicePolicy, day: date) -> int:
    """Removes the generated conversations started on `day` and everything made with them.

    Their messages, QA scores and findings, handoffs, tickets (history, notices, alerts,
    follow-up tasks), service records and knowledge-base queries. Returns the conversations.
    """
    start, end = day_bounds(policy, day)
    with session_factory(engine).begin() as session:
        rows = session.execute(
            select(Conversation.id, Conversation.handoff_id, Conversation.ticket_id,
                   Conversation.conversation_id).where(
                Conversation.source == GENERATED,
                Conversation.started_at >= start,
                Conversation.started_at < end,
            )
        ).all()  # fmt: skip
        pks = [row[0] for row in rows]
        handoffs = [row[1] for row in rows if row[1] is not None]
        tickets = [row[2] for row in rows if row[2] is not None]
        senders = list({row[3] for row in rows})
        records = _ids(session, select(Ticket.record_id).where(Ticket.id.in_(tickets)))
        for chunk in _chunks(pks):
            session.execute(delete(QaFinding).where(QaFinding.conversation_pk.in_(chunk)))
            session.execute(delete(QaScore).where(QaScore.conversation_pk.in_(chunk)))
            session.execute(
                delete(ConversationMessage).where(ConversationMessage.conversation_pk.in_(chunk))
            )
            session.execute(delete(Conversation).where(Conversation.id.in_(chunk)))
        for chunk in _chunks(handoffs):
            session.execute(delete(HandoffMessage).where(HandoffMessage.handoff_id.in_(chunk)))
            session.execute(delete(Handoff).where(Handoff.id.in_(chunk)))
        for chunk in _chunks(tickets):
            session.execute(delete(TicketEvent).where(TicketEvent.ticket_id.in_(chunk)))
            session.execute(delete(Notice).where(Notice.ticket_id.in_(chunk)))
            session.execute(delete(DeskAlert).where(DeskAlert.ticket_id.in_(chunk)))
            session.execute(delete(FollowupTask).where(FollowupTask.ticket_id.in_(chunk)))
            session.execute(delete(Ticket).where(Ticket.id.in_(chunk)))
        for chunk in _chunks(records):
            session.execute(delete(ServiceRecord).where(ServiceRecord.id.in_(chunk)))
        for chunk in _chunks(senders):
            session.execute(
                delete(KbQuery).where(
                    KbQuery.index_version == GENERATED, KbQuery.sender_id.in_(chunk)
                )
            )
    return len(pks)


def ensure_agents(
    engine: Engine, policy: ServicePolicy, agents: Sequence[str] | None = None
) -> Team:
    """The generated day's agents: existing accounts as they are, missing ones created disabled.

    Their team lead is `supervisor` if it exists, else the policy's default supervisor.
    """
    known = {p.username: p for p in DEFAULT_AGENTS}
    profiles = (
        tuple(known.get(name, AgentProfile(name, name)) for name in agents or list(known))
        or DEFAULT_AGENTS
    )
    store = AgentStore(engine)
    lead = next(
        (a for a in (store.get("supervisor"), _default_lead(store, policy)) if a is not None),
        None,
    )
    for profile in profiles:
        if store.get(profile.username) is None:
            store.create(
                profile.username,
                profile.display_name,
                AgentRole.agent,
                _unusable_password(),
                supervisor=lead.username if lead is not None else "",
            )
            store.set_active(profile.username, False)
    with session_factory(engine)() as session:
        ids = dict(
            session.execute(
                select(Agent.username, Agent.id).where(
                    Agent.username.in_([p.username for p in profiles])
                )
            ).all()
        )
    return Team(profiles, ids, lead.id if lead else None, lead.username if lead else None)


def _default_lead(store: AgentStore, policy: ServicePolicy) -> Agent | None:
    name = policy.service_loop.default_supervisor
    return store.get(name) if name else None


def _unusable_password() -> str:
    """A password nobody knows: the account stays disabled until someone sets one."""
    return secrets.token_urlsafe(32)


# ---------------------------------------------------------------------- the day's shape
def _starts(rng: random.Random, policy: ServicePolicy, day: date, count: int) -> list[datetime]:
    midnight = datetime.combine(day, time(0), tzinfo=policy.zone)
    hours = rng.choices(range(24), HOURLY_LOAD, k=max(count, 0))
    local = (midnight + timedelta(hours=h, seconds=rng.uniform(0, 3600)) for h in hours)
    return sorted(moment.astimezone(UTC) for moment in local)


def _script(
    rng: random.Random, policy: ServicePolicy, agents: tuple[AgentProfile, ...], start: datetime
) -> Script:
    language = "zh" if rng.random() < CHINESE_SHARE else "en"
    shares = CHANNELS[language]
    channel = rng.choices(list(shares), list(shares.values()))[0]
    script = Script(rng, material.load_material(), policy, agents, language, channel, start)
    script.sender = sender_id(rng, channel)
    return script_conversation(script)


def _next_ticket_sequence(engine: Engine, day: date) -> int:
    prefix = f"{TICKET_PREFIX}{day:%y%m%d}"
    with session_factory(engine)() as session:
        last = session.scalar(
            select(func.max(Ticket.number)).where(Ticket.number.like(f"{prefix}%"))
        )
    return int(last[len(prefix) :]) + 1 if last else 1


def _ids(session: Session, query: Any) -> list[int]:
    return [int(value) for value in session.scalars(query)]


def _chunks(values: Sequence[Any], size: int = 5000) -> Iterable[Sequence[Any]]:
    for first in range(0, len(values), size):
        yield values[first : first + size]
