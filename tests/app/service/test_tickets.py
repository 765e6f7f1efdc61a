import itertools
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from bot.core.db import (
    Base,
    ComplaintGrade,
    Ticket,
    TicketStatus,
    UrgencyTier,
    make_engine,
    upgrade,
)
from bot.service.tickets import (
    ALLOWED_TRANSITIONS,
    InvalidTransition,
    RecordNotFound,
    TicketError,
    TicketNotFound,
    TicketStore,
    summary_line,
)
from tests.app.conftest import NOW, draft
from tests.app.postgres import postgres_server, postgres_url  # noqa: F401

S = TicketStatus
TICKET_NUMBER = re.compile(r"^TK\d{12}$")

# How to reach each status from a new (open) ticket.
PATHS: dict[TicketStatus, list[TicketStatus]] = {
    S.open: [],
    S.pending_agent: [S.pending_agent],
    S.in_progress: [S.in_progress],
    S.waiting_customer: [S.in_progress, S.waiting_customer],
    S.resolved: [S.resolved],
    S.closed: [S.closed],
}


@pytest.fixture
def store(engine: Engine) -> TicketStore:
    return TicketStore(engine)


def open_ticket(store: TicketStore, customer: str = "sender-1", at: datetime = NOW) -> Ticket:
    return store.confirm(store.save_record(draft(customer)), at=at)


def test_confirm_opens_a_ticket_with_a_first_event(store: TicketStore) -> None:
    record_id = store.save_record(draft())
    ticket = store.confirm(record_id, at=NOW)
    assert TICKET_NUMBER.match(ticket.number)
    assert ticket.number == "TK202611220001"
    assert (ticket.status, ticket.record_id, ticket.customer_id) == (S.open, record_id, "sender-1")
    assert (ticket.urgency, ticket.complaint_grade) == (UrgencyTier.normal, ComplaintGrade.general)
    assert ticket.created_at == ticket.updated_at == NOW
    assert ticket.due_at == NOW + timedelta(hours=24)
    assert ticket.resolved_at is None and ticket.satisfaction is None
    assert ticket.summary == (
        "complaint · AuraSound X2 主动降噪耳机 (KF202611200001) · 左耳没有声音"
    )
    [event] = store.history(ticket.number)
    assert (event.from_status, event.to_status, event.actor, event.at) == (
        None,
        S.open,
        "customer",
        NOW,
    )
    record = store.get_record(record_id)
    assert record is not None and record.confirmed_at == NOW


def test_confirm_is_idempotent(store: TicketStore) -> None:
    record_id = store.save_record(draft())
    first = store.confirm(record_id, at=NOW)
    second = store.confirm(record_id, at=NOW + timedelta(minutes=5), actor="bot")
    assert (second.id, second.number, second.created_at) == (first.id, first.number, NOW)
    assert len(store.history(first.number)) == 1


def test_confirm_can_hand_over_at_once(store: TicketStore) -> None:
    record_id = store.save_record(draft())
    ticket = store.confirm(record_id, at=NOW, actor="bot", status=S.pending_agent)
    assert ticket.status == S.pending_agent
    assert store.history(ticket.number)[0].actor == "bot"


def test_confirm_refusals(store: TicketStore) -> None:
    with pytest.raises(RecordNotFound):
        store.confirm(999, at=NOW)
    record_id = store.save_record(draft(due_at=None))
    with pytest.raises(TicketError, match="no due time"):
        store.confirm(record_id, at=NOW)
    complete = store.save_record(draft())
    with pytest.raises(TicketError, match="timezone-aware"):
        store.confirm(complete, at=NOW.replace(tzinfo=None))
    with pytest.raises(TicketError, match="open or pending_agent"):
        store.confirm(complete, at=NOW, status=S.in_progress)
    with pytest.raises(TicketError, match="actor"):
        store.confirm(complete, at=NOW, actor="")
    assert store.find("TK202611220001") is None


@pytest.mark.parametrize(
    ("start", "to"), list(itertools.product(TicketStatus, TicketStatus)), ids=str
)
def test_transitions_follow_the_table(
    store: TicketStore, start: TicketStatus, to: TicketStatus
) -> None:
    ticket = open_ticket(store)
    for step, status in enumerate(PATHS[start], 1):
        store.transition(ticket.number, status, actor="agent:li", at=NOW + timedelta(minutes=step))
    assert store.find(ticket.number).status == start  # type: ignore[union-attr]
    at = NOW + timedelta(hours=1)
    if to in ALLOWED_TRANSITIONS[start]:
        moved = store.transition(ticket.number, to, actor="agent:li", note="n", at=at)
        assert (moved.status, moved.updated_at) == (to, at)
        last = store.history(ticket.number)[-1]
        assert (last.from_status, last.to_status, last.actor, last.note) == (
            start,
            to,
            "agent:li",
            "n",
        )
    else:
        with pytest.raises(InvalidTransition) as raised:
            store.transition(ticket.number, to, actor="agent:li", at=at)
        assert f"from {start.value} to {to.value}" in str(raised.value)
        assert (raised.value.from_status, raised.value.to_status) == (start, to)
        assert store.find(ticket.number).status == start  # type: ignore[union-attr]
        assert len(store.history(ticket.number)) == 1 + len(PATHS[start])


def test_the_transition_table_is_complete() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(TicketStatus)
    assert ALLOWED_TRANSITIONS[S.closed] == frozenset()
    assert all(status not in targets for status, targets in ALLOWED_TRANSITIONS.items())


def test_resolved_at_is_set_on_resolve_and_cleared_on_reopen(store: TicketStore) -> None:
    number = open_ticket(store).number
    resolved = store.transition(number, S.resolved, actor="agent:li", at=NOW + timedelta(hours=2))
    assert resolved.resolved_at == NOW + timedelta(hours=2)
    reopened = store.transition(number, S.in_progress, actor="customer", note="still broken")
    assert reopened.resolved_at is None
    assert reopened.updated_at.tzinfo is not None


def test_history_is_oldest_first(store: TicketStore) -> None:
    number = open_ticket(store).number
    for minutes, status in ((10, S.in_progress), (20, S.waiting_customer), (30, S.in_progress)):
        store.transition(number, status, actor="agent:li", at=NOW + timedelta(minutes=minutes))
    store.transition(number, S.resolved, actor="agent:li", at=NOW + timedelta(minutes=30))
    events = store.history(number)
    assert [e.to_status for e in events] == [
        S.open,
        S.in_progress,
        S.waiting_customer,
        S.in_progress,
        S.resolved,
    ]
    assert [e.from_status for e in events[1:]] == [e.to_status for e in events[:-1]]
    assert all(e.at.tzinfo is not None for e in events)


def test_unknown_numbers(store: TicketStore) -> None:
    with pytest.raises(TicketNotFound):
        store.history("TK209901010001")
    with pytest.raises(TicketNotFound):
        store.transition("TK209901010001", S.closed, actor="agent:li")
    with pytest.raises(TicketNotFound):
        store.rate("nonsense", 5)
    assert store.find("TK209901010001") is None


def test_find_ignores_case_and_blanks(store: TicketStore) -> None:
    number = open_ticket(store).number
    for typed in (number.lower(), f" {number} ", "tk 20261122-0001"):
        found = store.find(typed)
        assert found is not None and found.number == number


def test_rating(store: TicketStore) -> None:
    number = open_ticket(store).number
    with pytest.raises(TicketError, match="only resolved or closed"):
        store.rate(number, 5)
    store.transition(number, S.resolved, actor="agent:li", at=NOW + timedelta(hours=1))
    for bad in (0, 6, -1, True, 3.5, "5"):
        with pytest.raises(TicketError, match="1 to 5"):
            store.rate(number, bad)  # type: ignore[arg-type]
    assert store.rate(number, 4).satisfaction == 4
    store.transition(number, S.closed, actor="bot", at=NOW + timedelta(hours=2))
    assert store.rate(number, 5).satisfaction == 5
    last = store.history(number)[-1]
    assert (last.from_status, last.to_status, last.note) == (S.closed, S.closed, "satisfaction 5/5")


def test_for_customer_is_newest_first(store: TicketStore) -> None:
    numbers = [
        open_ticket(store, "alice", NOW + timedelta(hours=hours)).number for hours in (0, 2, 1)
    ]
    open_ticket(store, "bob")
    listed = [t.number for t in store.for_customer("alice")]
    assert listed == [numbers[1], numbers[2], numbers[0]]
    assert [t.number for t in store.for_customer("alice", limit=2)] == listed[:2]
    assert store.for_customer("nobody") == []


def test_daily_sequence(store: TicketStore) -> None:
    first = open_ticket(store, "a").number
    second = open_ticket(store, "b", NOW + timedelta(hours=1)).number
    # 01:00 in Beijing on the 23rd is still the 22nd in UTC.
    beijing = timezone(timedelta(hours=8))
    third = open_ticket(store, "c", datetime(2026, 11, 23, 1, 0, tzinfo=beijing)).number
    next_day = open_ticket(store, "d", NOW + timedelta(days=1)).number
    assert [first, second, third, next_day] == [
        "TK202611220001",
        "TK202611220002",
        "TK202611220003",
        "TK202611230001",
    ]


def test_summary_is_one_short_line(store: TicketStore) -> None:
    long_problem = "屏幕\n闪烁 " + "很严重" * 60
    record_id = store.save_record(draft(product=None, problem=long_problem))
    ticket = store.confirm(record_id, at=NOW)
    assert len(ticket.summary) == 120 and ticket.summary.endswith("…")
    assert ticket.summary.startswith("complaint · (KF202611200001) · 屏幕 闪烁 很严重")
    assert "\n" not in ticket.summary
    record = store.get_record(store.save_record(draft(order_number=None, problem=None)))
    assert record is not None and summary_line(record) == "complaint · AuraSound X2 主动降噪耳机"


def test_correcting_a_confirmed_record_refreshes_its_ticket(store: TicketStore) -> None:
    record_id = store.save_record(draft())
    number = store.confirm(record_id, at=NOW).number
    store.save_record(
        draft(problem="右耳也没有声音", urgency=UrgencyTier.urgent, email="li@example.com"),
        record_id,
    )
    ticket = store.find(number)
    assert ticket is not None and ticket.urgency == UrgencyTier.urgent
    assert ticket.summary.endswith("右耳也没有声音")


def run_together(count: int, work: Callable[[int], Any]) -> list[Any]:
    barrier = threading.Barrier(count)

    def task(index: int) -> Any:
        barrier.wait()
        return work(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(task, range(count)))


def test_concurrent_confirms_get_unique_numbers(store: TicketStore) -> None:
    records = [store.save_record(draft(f"c{i}")) for i in range(8)]
    tickets = run_together(8, lambda i: store.confirm(records[i], at=NOW))
    numbers = sorted(t.number for t in tickets)
    assert numbers == [f"TK20261122{n:04d}" for n in range(1, 9)]


def test_concurrent_confirms_of_one_record_open_one_ticket(
    store: TicketStore, engine: Engine
) -> None:
    record_id = store.save_record(draft())
    tickets = run_together(6, lambda _: store.confirm(record_id, at=NOW))
    assert len({t.number for t in tickets}) == 1
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 1


def test_concurrent_transitions_keep_a_consistent_history(store: TicketStore) -> None:
    number = open_ticket(store).number
    targets = [S.in_progress, S.resolved, S.closed, S.pending_agent]

    def move(index: int) -> TicketStatus | None:
        try:
            return store.transition(number, targets[index], actor=f"agent:{index}").status
        except InvalidTransition:
            return None

    run_together(len(targets), move)
    events = store.history(number)
    assert [e.from_status for e in events[1:]] == [e.to_status for e in events[:-1]]
    ticket = store.find(number)
    assert ticket is not None and ticket.status == events[-1].to_status


def test_postgresql_round_trip(postgres_url: str) -> None:  # noqa: F811
    upgrade(postgres_url)
    upgrade(postgres_url)  # idempotent
    engine = make_engine(postgres_url)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert diff == []
        store = TicketStore(engine)
        beijing = timezone(timedelta(hours=8))
        record_id = store.save_record(draft(created_at=NOW.astimezone(beijing)))
        record = store.get_record(record_id)
        assert record is not None and record.created_at == NOW
        assert record.created_at.utcoffset() == timedelta(0)
        assert record.preferences["contact_time"] == "工作日晚上"
        store.save_record(draft(correction_rounds=1, problem="右耳也坏了"), record_id)
        ticket = store.confirm(record_id, at=NOW)
        assert ticket.number == "TK202611220001"
        assert store.confirm(record_id, at=NOW).id == ticket.id
        store.transition(ticket.number, S.in_progress, actor="agent:li", at=NOW)
        store.transition(ticket.number, S.resolved, actor="agent:li", at=NOW + timedelta(hours=1))
        with pytest.raises(InvalidTransition):
            store.transition(ticket.number, S.waiting_customer, actor="agent:li")
        assert store.rate(ticket.number.lower(), 5).satisfaction == 5
        assert [e.to_status for e in store.history(ticket.number)] == [
            S.open,
            S.in_progress,
            S.resolved,
            S.resolved,
        ]
        found = store.find(ticket.number)
        assert found is not None and found.resolved_at == NOW + timedelta(hours=1)
        assert found.summary.endswith("右耳也坏了")
        # Concurrent writers: PostgreSQL does not serialise them, the unique number does.
        records = [store.save_record(draft(f"pg{i}")) for i in range(6)]
        tickets = run_together(6, lambda i: store.confirm(records[i], at=NOW))
        assert sorted(t.number for t in tickets) == [f"TK20261122{n:04d}" for n in range(2, 8)]
    finally:
        engine.dispose()
