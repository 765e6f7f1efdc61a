"""The SLA clock kept by `TicketStore`: due times, first response, resolve, close, reopen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bot.core.db import (
    Agent,
    AgentRole,
    Notice,
    NoticeStatus,
    TicketEventKind,
    TicketStatus,
)
from bot.service.outbox import CUSTOMER, NewNotice, enqueue
from bot.service.policy import ServicePolicy, load_policy
from bot.service.tickets import TicketError, TicketStore, is_human_actor
from tests.app.conftest import NOW, draft

S = TicketStatus
H = timedelta(hours=1)


@pytest.fixture(scope="module")
def policy() -> ServicePolicy:
    return load_policy()


@pytest.fixture
def store(engine: Engine, policy: ServicePolicy) -> TicketStore:
    return TicketStore(engine, policy)


def add_agent(engine: Engine, username: str, role: AgentRole = AgentRole.agent) -> int:
    with Session(engine) as session, session.begin():
        agent = Agent(
            username=username,
            display_name=username.title(),
            role=role,
            password_hash="x",
            active=True,
            created_at=NOW,
        )
        session.add(agent)
        session.flush()
        return agent.id


def test_confirm_starts_the_clock(engine: Engine, store: TicketStore) -> None:
    supervisor = add_agent(engine, "supervisor", AgentRole.supervisor)
    ticket = store.confirm(store.save_record(draft()), at=NOW)
    # normal tier, general complaint: response due in 24 h (the record), resolution in 72 h
    assert ticket.response_due_at == ticket.due_at == NOW + 24 * H
    assert ticket.resolution_due_at == NOW + 72 * H
    assert ticket.sla_check_at == NOW + 24 * H * 0.8
    assert ticket.next_progress_at == NOW + timedelta(days=3)
    assert (ticket.sla_state, ticket.reopen_count, ticket.first_responded_at) == ("ok", 0, None)
    assert ticket.supervisor_id == supervisor and ticket.assignee_id is None


def test_no_default_supervisor_account_means_none(store: TicketStore) -> None:
    ticket = store.confirm(store.save_record(draft()), at=NOW)
    assert ticket.supervisor_id is None


def test_an_agents_first_move_is_the_first_response(store: TicketStore) -> None:
    number = store.confirm(store.save_record(draft()), at=NOW).number
    bot = store.transition(number, S.pending_agent, actor="bot", at=NOW + H)
    assert bot.first_responded_at is None and bot.due_at == NOW + 24 * H
    taken = store.transition(number, S.in_progress, actor="agent:li", at=NOW + 2 * H)
    assert taken.first_responded_at == NOW + 2 * H
    assert taken.due_at == taken.resolution_due_at == NOW + 72 * H
    assert taken.sla_check_at == NOW + 72 * H * 0.8
    later = store.transition(number, S.waiting_customer, actor="agent:wang", at=NOW + 3 * H)
    assert later.first_responded_at == NOW + 2 * H  # only the first counts


def test_a_customer_move_is_no_response(store: TicketStore) -> None:
    number = store.confirm(store.save_record(draft()), at=NOW).number
    moved = store.transition(number, S.in_progress, actor="customer", at=NOW + H)
    assert moved.first_responded_at is None and moved.due_at == NOW + 24 * H


def test_mark_responded_is_idempotent_and_ignores_the_bot(store: TicketStore) -> None:
    number = store.confirm(store.save_record(draft()), at=NOW).number
    assert store.mark_responded(number, NOW + H, "bot").first_responded_at is None
    first = store.mark_responded(number, NOW + 2 * H, "li")
    assert first.first_responded_at == NOW + 2 * H and first.due_at == NOW + 72 * H
    again = store.mark_responded(number, NOW + 5 * H, "wang")
    assert again.first_responded_at == NOW + 2 * H
    assert store.find(number).status == S.open  # type: ignore[union-attr]


def test_resolving_stops_the_clock_and_cancels_progress_notices(
    engine: Engine, store: TicketStore
) -> None:
    ticket = store.confirm(store.save_record(draft()), at=NOW)
    with Session(engine) as session, session.begin():
        for kind in ("progress_notice", "progress_update"):
            enqueue(
                session,
                NewNotice(key=f"{kind}:1", kind=kind, audience=CUSTOMER, text="t", due_at=NOW,
                          ticket_id=ticket.id),
                NOW,
            )  # fmt: skip
    resolved = store.transition(ticket.number, S.resolved, actor="agent:li", at=NOW + H)
    assert resolved.resolved_at == NOW + H
    assert resolved.sla_check_at is None and resolved.next_progress_at is None
    assert resolved.first_responded_at == NOW + H  # resolving by an agent answers too
    with Session(engine) as session:
        statuses = dict(session.execute(select(Notice.kind, Notice.status)).tuples().all())
    assert statuses == {
        "progress_notice": NoticeStatus.cancelled,
        "progress_update": NoticeStatus.pending,
    }
    closed = store.transition(ticket.number, S.closed, actor="customer", at=NOW + 2 * H)
    assert closed.closed_at == NOW + 2 * H and closed.resolved_at == NOW + H


def test_reopening_starts_a_new_resolution_window(store: TicketStore) -> None:
    number = store.confirm(store.save_record(draft()), at=NOW).number
    store.transition(number, S.in_progress, actor="agent:li", at=NOW + H)
    store.transition(number, S.resolved, actor="agent:li", at=NOW + 2 * H)
    reopen_at = NOW + 30 * H
    reopened = store.transition(number, S.in_progress, actor="customer", at=reopen_at)
    assert reopened.reopen_count == 1 and reopened.resolved_at is None
    assert reopened.resolution_due_at == reopened.due_at == reopen_at + 72 * H
    assert reopened.sla_state == "ok"
    assert reopened.sla_check_at == reopen_at + 72 * H * 0.8
    assert reopened.next_progress_at == reopen_at + timedelta(days=3)


def test_a_closed_ticket_reopens_only_on_the_reopen_path(store: TicketStore) -> None:
    number = store.confirm(store.save_record(draft()), at=NOW).number
    store.transition(number, S.resolved, actor="agent:li", at=NOW + H)
    store.transition(number, S.closed, actor="customer", at=NOW + 2 * H)
    with pytest.raises(TicketError):
        store.transition(number, S.in_progress, actor="customer", at=NOW + 3 * H)
    reopened = store.transition(
        number, S.in_progress, actor="customer", at=NOW + 3 * H, reopen=True
    )
    assert (reopened.status, reopened.reopen_count, reopened.closed_at) == (S.in_progress, 1, None)
    with pytest.raises(TicketError, match="only resolved or closed"):
        store.transition(number, S.waiting_customer, actor="agent:li", reopen=True)


def test_correcting_an_unanswered_ticket_moves_its_windows(store: TicketStore) -> None:
    record_id = store.save_record(draft())
    number = store.confirm(record_id, at=NOW).number
    store.save_record(draft(due_at=NOW + 4 * H), record_id)
    ticket = store.find(number)
    assert ticket is not None
    assert ticket.due_at == ticket.response_due_at == NOW + 4 * H
    assert ticket.sla_check_at == NOW + 4 * H * 0.8
    store.mark_responded(number, NOW + H, "li")
    store.save_record(draft(due_at=NOW + 8 * H), record_id)
    answered = store.find(number)
    assert answered is not None and answered.due_at == NOW + 72 * H  # answered: unchanged


def test_events_have_kinds(store: TicketStore) -> None:
    number = store.confirm(store.save_record(draft()), at=NOW).number
    store.record_event(number, kind=TicketEventKind.customer, actor="customer", note="more info",
                       at=NOW + H, visible_to_customer=True)  # fmt: skip
    store.transition(number, S.resolved, actor="agent:li", at=NOW + 2 * H)
    store.rate(number, 4)
    kinds = [(e.kind, e.visible_to_customer) for e in store.history(number)]
    assert kinds == [
        (TicketEventKind.status, False),
        (TicketEventKind.customer, True),
        (TicketEventKind.status, False),
        (TicketEventKind.rating, False),
    ]


@pytest.mark.parametrize(
    ("actor", "human"),
    [("agent:li", True), ("li", True), ("bot", False), ("customer", False),
     ("customer:web:1", False), ("scheduler", False), ("System", False)],
)  # fmt: skip
def test_who_counts_as_a_human(actor: str, human: bool) -> None:
    assert is_human_actor(actor) is human


def test_the_policy_is_loaded_lazily(engine: Engine) -> None:
    store = TicketStore(engine)
    ticket = store.confirm(store.save_record(draft()), at=datetime(2026, 11, 22, tzinfo=UTC))
    assert ticket.resolution_due_at is not None
