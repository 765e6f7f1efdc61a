"""`CaseWork` on a real SQLite database: who sees what, agents' and customers' operations."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bot.casework import CaseError, CaseForbidden, CaseNotFound, CaseWork, may_see
from bot.core.db import (
    Agent,
    AgentRole,
    DeskAlert,
    FollowupOutcome,
    FollowupTask,
    Notice,
    NoticeStatus,
    Ticket,
    TicketEventKind,
    TicketStatus,
    UrgencyTier,
)
from bot.customers.directory import CustomerDirectory
from bot.service.policy import ServicePolicy, load_policy
from tests.app.conftest import NOW, draft

S = TicketStatus
H = timedelta(hours=1)


class Clock:
    """A settable clock."""

    def __init__(self) -> None:
        self.now = NOW + H

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def policy() -> ServicePolicy:
    return load_policy()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def work(engine: Engine, policy: ServicePolicy, clock: Clock) -> CaseWork:
    return CaseWork(engine, policy, CustomerDirectory(engine), clock=clock)


def add_agent(
    engine: Engine, username: str, role: AgentRole = AgentRole.agent, supervisor: int | None = None
) -> Agent:
    with Session(engine, expire_on_commit=False) as session, session.begin():
        agent = Agent(
            username=username,
            display_name=username.title(),
            role=role,
            password_hash="x",
            active=True,
            created_at=NOW,
            supervisor_id=supervisor,
        )
        session.add(agent)
    return agent


@pytest.fixture
def team(engine: Engine) -> dict[str, Agent]:
    boss = add_agent(engine, "supervisor", AgentRole.supervisor)
    lead = add_agent(engine, "lead", AgentRole.supervisor)
    return {
        "boss": boss,
        "lead": lead,
        "li": add_agent(engine, "li", supervisor=lead.id),
        "wang": add_agent(engine, "wang"),
        "editor": add_agent(engine, "ed", AgentRole.editor),
        "admin": add_agent(engine, "root", AgentRole.admin),
    }


def open_ticket(work: CaseWork, customer: str = "web:alice", **changes: object) -> str:
    store = work.store
    return store.confirm(store.save_record(draft(customer, **changes)), at=NOW).number


def notices_of(engine: Engine) -> dict[str, Notice]:
    with Session(engine) as session:
        return {n.key: n for n in session.scalars(select(Notice))}


def test_visibility_follows_roles(work: CaseWork, team: dict[str, Agent]) -> None:
    mine, theirs, free = (open_ticket(work, f"web:{n}") for n in ("a", "b", "c"))
    work.assign(mine, "li", team["li"])
    work.assign(theirs, "wang", team["wang"])
    seen = {name: {row["number"] for row in work.list(team[name])} for name in team}
    assert seen["li"] == {mine, free} and seen["wang"] == {theirs, free}
    assert seen["boss"] == seen["admin"] == {mine, theirs, free}
    assert seen["editor"] == set()
    with pytest.raises(CaseNotFound):
        work.detail(theirs, team["li"])
    with pytest.raises(CaseNotFound):
        work.add_note(theirs, "peek", team["li"])
    with pytest.raises(CaseNotFound):
        work.detail(mine, team["editor"])
    with pytest.raises(CaseNotFound):
        work.detail("TK209901010001", team["admin"])


def test_the_row_view(work: CaseWork, team: dict[str, Agent]) -> None:
    number = open_ticket(work, "wechat:o6aBcdefgh12XY")
    work.assign(number, "li", team["boss"])
    [row] = work.list(team["li"], now=NOW + 2 * H)
    assert row["number"] == number and row["status"] == "open"
    assert (row["tier"], row["grade"], row["assignee"], row["assignee_name"]) == (
        "normal", "general", "li", "Li",
    )  # fmt: skip
    assert row["supervisor"] == "lead"  # the assignee's supervisor
    assert row["customer"] == "wechat:o6a***XY"
    assert row["due_at"] == (NOW + 24 * H).isoformat() and row["due_at"].endswith("+00:00")
    assert (row["at_risk"], row["overdue"], row["escalated"]) == (False, False, False)
    [late] = work.list(team["li"], now=NOW + 25 * H)
    assert late["overdue"] is True


def test_list_filters_and_order(engine: Engine, work: CaseWork, team: dict[str, Agent]) -> None:
    late = open_ticket(work, "web:a", due_at=NOW + 2 * H)
    soon = open_ticket(work, "web:b", due_at=NOW + 5 * H)
    urgent = open_ticket(work, "web:c", due_at=NOW + 9 * H, urgency=UrgencyTier.urgent,
                         complaint_grade=None)  # fmt: skip
    with Session(engine) as session, session.begin():
        session.execute(
            Ticket.__table__.update().where(Ticket.number == soon).values(sla_state="at_risk")
        )
    boss, now = team["boss"], NOW + 3 * H
    assert [r["number"] for r in work.list(boss, now=now)] == [late, soon, urgent]
    assert [r["number"] for r in work.list(boss, overdue=True, now=now)] == [late]
    assert [r["number"] for r in work.list(boss, at_risk=True, now=now)] == [soon]
    assert [r["number"] for r in work.list(boss, tier="urgent")] == [urgent]
    assert [r["number"] for r in work.list(boss, grade="none")] == [urgent]
    assert [r["number"] for r in work.list(boss, grade="general")] == [late, soon]
    work.assign(soon, "wang", boss)
    assert [r["number"] for r in work.list(boss, assignee="wang")] == [soon]
    assert [r["number"] for r in work.list(team["wang"], assignee="me")] == [soon]
    assert [r["number"] for r in work.list(boss, assignee="none")] == [late, urgent]
    work.resolve(late, "已换新", "", boss)
    assert late not in [r["number"] for r in work.list(boss)]
    assert [r["number"] for r in work.list(boss, status="resolved")] == [late]
    assert len(work.list(boss, status="all")) == 3
    for bad in ({"status": "done"}, {"tier": "vip"}, {"grade": "huge"}, {"assignee": "nobody"}):
        with pytest.raises(CaseError):
            work.list(boss, **bad)  # type: ignore[arg-type]


def test_assign_rules(engine: Engine, work: CaseWork, team: dict[str, Agent]) -> None:
    number = open_ticket(work)
    with pytest.raises(CaseForbidden):
        work.assign(number, "wang", team["li"])  # agents take for themselves only
    taken = work.assign(number, "li", team["li"], note="mine")
    assert taken.ticket["assignee"] == "li" and taken.notice_ids == []
    with pytest.raises(CaseNotFound):
        work.assign(number, "wang", team["wang"])  # not visible to wang any more
    with pytest.raises(CaseError, match="No active"):
        work.assign(number, "ed", team["boss"])  # editors take no tickets
    moved = work.assign(number, "wang", team["boss"])
    assert moved.ticket["assignee"] == "wang"
    assert moved.ticket["supervisor"] == "lead"  # kept: wang has no supervisor of his own
    released = work.assign(number, "", team["wang"])
    assert released.ticket["assignee"] is None
    history = work.detail(number, team["boss"])["history"]
    notes = [e["note"] for e in history if e["kind"] == "assignment"]
    assert notes == ["assigned to li: mine", "assigned to wang", "unassigned"]


def test_status_changes_need_a_reason_and_an_allowed_move(
    work: CaseWork, team: dict[str, Agent]
) -> None:
    number = open_ticket(work)
    li = team["li"]
    with pytest.raises(CaseError, match="reason"):
        work.set_status(number, "in_progress", "  ", li)
    with pytest.raises(CaseError, match="resolve"):
        work.set_status(number, "resolved", "done", li)
    with pytest.raises(CaseError, match="cannot go from open to waiting_customer"):
        work.set_status(number, "waiting_customer", "need info", li)
    with pytest.raises(CaseError, match="Unknown status"):
        work.set_status(number, "finished", "x", li)
    change = work.set_status(number, "in_progress", "looking", li)
    assert change.ticket["status"] == "in_progress"
    assert change.ticket["first_responded_at"] == (NOW + H).isoformat()
    detail = work.detail(number, li)
    assert detail["history"][-1]["actor"] == "agent:li"
    assert detail["allowed_statuses"] == ["open", "pending_agent", "resolved", "waiting_customer"]
    assert detail["record"]["problem"] == "左耳没有声音"
    assert detail["record"]["problem_since"] == "2026-11-20"


def test_progress_update_is_sent_and_resets_the_progress_clock(
    engine: Engine, work: CaseWork, team: dict[str, Agent], clock: Clock
) -> None:
    number = open_ticket(work)
    work.add_note(number, "内部：仓库缺货", team["li"])
    change = work.post_progress(number, "已联系仓库调货", team["li"])
    [notice_id] = change.notice_ids
    notice = notices_of(engine)
    [(key, row)] = [(k, n) for k, n in notice.items() if n.id == notice_id]
    assert key.startswith("update:") and row.kind == "progress_update"
    assert row.text == f"工单 {number} 进展：已联系仓库调货"
    assert (row.conversation_id, row.channel, row.audience) == ("web:alice", "rest", "customer")
    assert row.due_at == clock.now and row.status is NoticeStatus.pending
    ticket = work.store.find(number)
    assert ticket is not None and ticket.last_progress_at == clock.now
    assert ticket.next_progress_at == clock.now + timedelta(days=3)
    assert ticket.first_responded_at == clock.now
    history = work.detail(number, team["li"])["history"]
    assert [(e["kind"], e["visible_to_customer"]) for e in history[1:]] == [
        ("note", False), ("progress", True),
    ]  # fmt: skip
    with pytest.raises(CaseError, match="required"):
        work.post_progress(number, "", team["li"])


def test_resolve_sends_result_and_csat_once(
    engine: Engine, work: CaseWork, team: dict[str, Agent]
) -> None:
    number = open_ticket(work)
    with pytest.raises(CaseError, match="result"):
        work.resolve(number, " ", "", team["li"])
    change = work.resolve(number, "已寄出新耳机", "加强出厂检测", team["li"])
    assert change.ticket["status"] == "resolved" and len(change.notice_ids) == 2
    ticket = work.store.find(number)
    assert ticket is not None
    sent = notices_of(engine)
    result, csat = sent[f"result:{ticket.id}:0"], sent[f"csat:{ticket.id}:0"]
    assert "已寄出新耳机" in result.text and "加强出厂检测" in result.text
    assert csat.slots == {"rating_ticket": number} and csat.buttons is not None
    assert len(csat.buttons) == 5
    with pytest.raises(CaseError, match="already resolved"):
        work.resolve(number, "again", "", team["li"])
    work.reopen(number, "客户说没好", team["li"])
    again = work.resolve(number, "再次换新", "", team["li"])
    assert len(again.notice_ids) == 2 and f"csat:{ticket.id}:1" in notices_of(engine)


def test_resolving_a_waiting_handoff_ticket_takes_it_first(
    work: CaseWork, team: dict[str, Agent]
) -> None:
    store = work.store
    record = store.save_record(draft())
    number = store.confirm(record, at=NOW, actor="bot", status=S.pending_agent).number
    work.resolve(number, "done", "", team["boss"])
    statuses = [e["to"] for e in work.detail(number, team["boss"])["history"]]
    assert statuses == ["pending_agent", "in_progress", "resolved"]


def test_low_rating_opens_a_second_followup(
    engine: Engine, work: CaseWork, team: dict[str, Agent], clock: Clock
) -> None:
    number = open_ticket(work)
    work.assign(number, "li", team["boss"])  # supervisor: lead
    work.resolve(number, "done", "", team["li"])
    happy = work.rate(number, 5)
    assert happy.notice_ids == [] and happy.ticket["satisfaction"] == 5
    unhappy = work.rate(number, 2)
    assert len(unhappy.notice_ids) == 2
    with Session(engine) as session:
        [task] = session.scalars(select(FollowupTask))
        alert = session.scalars(select(DeskAlert)).one()
    assert task.assignee_id == team["lead"].id and task.due_at == clock.now + 48 * H
    assert alert.key == f"followup:{task.id}" and alert.agent_id == team["lead"].id
    sent = {n.kind: n for n in notices_of(engine).values()}
    assert sent["followup_task"].recipient_agent_id == team["lead"].id
    assert "48 小时内" in sent["second_followup"].text
    assert work.rate(number, 1).notice_ids == []  # one follow-up per round
    with pytest.raises(CaseError):
        work.rate(number, 9)
    # the task
    assert [t["ticket"] for t in work.followup_tasks(team["lead"])] == [number]
    assert work.followup_tasks(team["li"]) == []
    with pytest.raises(CaseForbidden):
        work.record_followup(task.id, "solved", "", team["li"])
    with pytest.raises(CaseError, match="Unknown outcome"):
        work.record_followup(task.id, "maybe", "", team["lead"])
    done = work.record_followup(task.id, FollowupOutcome.solved, "called back", team["lead"])
    assert done["outcome"] == "solved" and done["done_by"] == "lead"
    assert work.followup_tasks(team["lead"]) == []
    with pytest.raises(CaseError, match="already done"):
        work.record_followup(task.id, "solved", "", team["lead"])
    assert work.alerts(team["lead"]) == []  # acknowledged with the outcome
    history = work.detail(number, team["lead"])["history"]
    assert history[-1]["note"] == "second follow-up: solved — called back"


def test_customer_operations(
    engine: Engine, work: CaseWork, team: dict[str, Agent], clock: Clock
) -> None:
    number = open_ticket(work, "web:alice")
    other = open_ticket(work, "web:bob")
    directory = CustomerDirectory(engine)
    directory.customer_for("web:alice")
    directory.link_shop_login("web:alice", "shop:alice")
    rows = work.customer_tickets("shop:alice")
    assert [r["number"] for r in rows] == [number]
    assert rows[0]["next_step"] == "等待客服接手" and rows[0]["actions"] == ["add_info"]
    with pytest.raises(CaseNotFound):
        work.customer_add_info(other, "web:alice", "hi")
    work.assign(number, "li", team["li"])
    work.set_status(number, "in_progress", "looking", team["li"])
    work.set_status(number, "waiting_customer", "need the receipt", team["li"])
    back = work.customer_add_info(number, "shop:alice", "发票在附件")
    assert back.ticket["status"] == "in_progress"
    [alert] = work.alerts(team["li"])
    assert alert["kind"] == "customer_message" and alert["ticket"] == number
    assert work.alerts(team["wang"]) == []
    with pytest.raises(CaseError, match="only a resolved"):
        work.customer_confirm_fixed(number, "web:alice")
    work.resolve(number, "done", "", team["li"])
    assert work.customer_tickets("web:alice")[0]["actions"] == ["confirm", "reopen"]
    closed = work.customer_confirm_fixed(number, "web:alice")
    assert closed.ticket["status"] == "closed"
    reopened = work.customer_reopen(number, "web:alice", "又坏了")
    assert reopened.ticket["status"] == "in_progress"
    alerts = {a["kind"]: a for a in work.alerts(team["li"])}
    assert alerts["reopened"]["severity"] == "warning"
    work.resolve(number, "done again", "", team["li"])
    clock.now += timedelta(days=8)
    with pytest.raises(CaseError, match="within 7 days"):
        work.customer_reopen(number, "web:alice", "again")
    assert work.customer_tickets("web:alice")[0]["actions"] == ["confirm"]


def test_alerts_are_filtered_and_acknowledged(
    engine: Engine, work: CaseWork, team: dict[str, Agent]
) -> None:
    number = open_ticket(work)
    work.assign(number, "li", team["li"])
    with Session(engine) as session, session.begin():
        ticket_id = session.scalar(select(Ticket.id).where(Ticket.number == number))
        for key, agent in (("a", None), ("b", team["wang"].id)):
            session.add(DeskAlert(key=key, kind="sla_at_risk", severity="warning", text=key,
                                  ticket_id=ticket_id, agent_id=agent, created_at=NOW))  # fmt: skip
    assert [a["key"] for a in work.alerts(team["li"])] == ["a"]
    assert [a["key"] for a in work.alerts(team["wang"])] == ["b"]
    assert [a["key"] for a in work.alerts(team["boss"])] == ["a", "b"]
    assert work.alerts(team["editor"]) == []
    first = work.alerts(team["boss"])[0]["id"]
    assert [a["key"] for a in work.alerts(team["boss"], after_id=first)] == ["b"]
    with pytest.raises(CaseNotFound):
        work.acknowledge_alert(first, team["wang"])
    acked = work.acknowledge_alert(first, team["li"])
    assert acked["acknowledged_by"] == "li"
    assert [a["key"] for a in work.alerts(team["boss"])] == ["b"]
    assert len(work.alerts(team["boss"], include_acknowledged=True)) == 2


def test_may_see_refuses_inactive_accounts(team: dict[str, Agent]) -> None:
    ticket = Ticket(assignee_id=None)
    assert may_see(ticket, team["li"])
    team["li"].active = False
    assert not may_see(ticket, team["li"])


def test_detail_lists_notices_and_history_kinds(work: CaseWork, team: dict[str, Agent]) -> None:
    number = open_ticket(work)
    work.resolve(number, "done", "", team["boss"])
    detail = work.detail(number, team["boss"])
    assert [n["kind"] for n in detail["notices"]] == ["result", "csat"]
    assert {n["status"] for n in detail["notices"]} == {"pending"}
    assert detail["result"] == "done" and detail["reopen_count"] == 0
    assert detail["handoffs"] == [] and detail["followups"] == []
    assert TicketEventKind.status.value in {e["kind"] for e in detail["history"]}


def test_agents_see_the_sla_alerts_of_unassigned_tickets(
    engine: Engine, work: CaseWork, team: dict[str, Agent]
) -> None:
    free, taken = open_ticket(work, "web:free"), open_ticket(work, "web:taken")
    work.assign(taken, "li", team["li"])
    with Session(engine) as session, session.begin():
        ids = dict(session.execute(select(Ticket.number, Ticket.id)).tuples().all())
        for key, number in (("free", free), ("taken", taken)):
            session.add(DeskAlert(key=key, kind="sla_at_risk", severity="warning", text=key,
                                  ticket_id=ids[number], created_at=NOW))  # fmt: skip
        session.add(DeskAlert(key="none", kind="undeliverable", severity="warning", text="x",
                              created_at=NOW))  # fmt: skip
    # whoever may pick the unassigned ticket up is warned; another agent's ticket is theirs
    assert [a["key"] for a in work.alerts(team["wang"])] == ["free"]
    assert [a["key"] for a in work.alerts(team["li"])] == ["free", "taken"]
    assert [a["key"] for a in work.alerts(team["boss"])] == ["free", "taken", "none"]
