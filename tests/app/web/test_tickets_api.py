"""The desk's tickets API and pages: who sees what, filters, changes, notices, alerts, follow-ups.

`CaseWork` itself is tested in tests/app/casework; here the routes around it: sessions, roles,
CSRF, bounded and checked bodies, 404 for tickets the viewer may not see, delivery of the
notices a change owes, and the live updates on the desk's WebSocket.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from bot.accounts import AgentStore
from bot.casework import CaseWork
from bot.core.db import (
    Agent,
    AgentRole,
    ComplaintGrade,
    Ticket,
    UrgencyTier,
    make_engine,
    upgrade,
)
from bot.core.settings import Settings
from bot.handoff.service import DeskService
from bot.service.outbox import raise_alert
from bot.service.policy import load_policy
from bot.service.tickets import TicketStore
from bot.web import create_app
from tests.app.conftest import draft
from tests.app.web.conftest import PASSWORD, RecordingRasa, signed_in

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
ORIGIN = {"Origin": "http://testserver"}


class RecordingDeliverer:
    """Stands in for `bot.followups.delivery.Deliverer`: keeps the notice ids it was handed."""

    def __init__(self, fail: bool = False) -> None:
        self.delivered: list[int] = []
        self.fail = fail

    async def deliver_ids(self, ids: Sequence[int], now: datetime) -> list[Any]:
        if self.fail:
            raise RuntimeError("Rasa is down")
        self.delivered += list(ids)
        return []

    async def close(self) -> None:
        """Nothing to close."""


@dataclass
class Desk:
    """The app and the tickets it was made with."""

    app: FastAPI
    late: str
    """Unassigned, urgent, a major complaint, overdue."""
    soon: str
    """Unassigned, normal, due in two hours, at risk."""
    wangs: str
    """Assigned to wang, consultation, due tomorrow."""
    agents: dict[str, Agent]

    @property
    def cases(self) -> CaseWork:
        cases: CaseWork = self.app.state.casework
        return cases

    @property
    def deliverer(self) -> RecordingDeliverer:
        deliverer: RecordingDeliverer = self.app.state.deliverer
        return deliverer


def _ticket(store: TicketStore, customer: str, due: datetime, **changes: Any) -> str:
    now = datetime.now(UTC)
    record = store.save_record(
        draft(customer, created_at=now - timedelta(hours=3), due_at=due, **changes)
    )
    return store.confirm(record, at=now - timedelta(hours=3), actor="bot").number


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    settings = Settings(var_dir=tmp_path)
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    accounts = AgentStore(engine, FAST)
    made = {
        username: accounts.create(username, title, role, PASSWORD)
        for username, title, role in (
            ("li.na", "李娜 <i>Li</i>", AgentRole.agent),
            ("wang", "王伟", AgentRole.agent),
            ("lead", "主管 Lead", AgentRole.supervisor),
            ("boss", "Boss", AgentRole.admin),
            ("editor", "Editor", AgentRole.editor),
        )
    }
    accounts.set_supervisor("wang", "lead")
    store = TicketStore(engine)
    now = datetime.now(UTC)
    late = _ticket(
        store,
        "wechat:late-customer",
        now - timedelta(hours=1),
        urgency=UrgencyTier.urgent,
        complaint_grade=ComplaintGrade.major,
    )
    soon = _ticket(store, "web:soon-customer", now + timedelta(hours=2), complaint_grade=None)
    wangs = _ticket(
        store,
        "web:wangs-customer",
        now + timedelta(days=1),
        urgency=UrgencyTier.consultation,
        complaint_grade=None,
    )
    with Session(engine) as session, session.begin():
        session.execute(update(Ticket).where(Ticket.number == soon).values(sla_state="at_risk"))
        session.execute(
            update(Ticket).where(Ticket.number == late).values(summary="<script>x</script>")
        )
    cases = CaseWork(engine, load_policy())
    cases.assign(wangs, "wang", made["boss"])
    engine.dispose()
    app = create_app(settings)
    service = DeskService.from_settings(settings, app.state.engine)
    service.rasa = RecordingRasa()  # type: ignore[assignment]
    app.state.desk_service = service
    app.state.casework = CaseWork(app.state.engine, load_policy())
    app.state.deliverer = RecordingDeliverer()
    return Desk(app, late, soon, wangs, made)


def _numbers(client: TestClient, query: str = "") -> list[str]:
    response = client.get(f"/desk/api/tickets{query}")
    assert response.status_code == 200, response.text
    return [row["number"] for row in response.json()["tickets"]]


def _post(client: TestClient, csrf: str, path: str, body: dict[str, Any]) -> Any:
    return client.post(path, json=body, headers={"X-CSRF-Token": csrf})


# ---------------------------------------------------------------------- reading
def test_agents_see_unassigned_and_their_own_tickets_supervisors_all(desk: Desk) -> None:
    li_na, _ = signed_in(desk.app, "li.na")
    wang, _ = signed_in(desk.app, "wang")
    lead, _ = signed_in(desk.app, "lead")
    assert _numbers(li_na) == [desk.late, desk.soon]  # earliest due first
    assert _numbers(wang) == [desk.late, desk.soon, desk.wangs]
    assert _numbers(lead) == [desk.late, desk.soon, desk.wangs]
    row = li_na.get("/desk/api/tickets").json()["tickets"][0]
    assert {"number", "status", "tier", "grade", "due_at", "assignee"} <= row.keys()
    assert (row["tier"], row["grade"], row["overdue"]) == ("urgent", "major", True)
    assert row["summary"] == "<script>x</script>"  # JSON text; the page renders text


def test_filters(desk: Desk) -> None:
    lead, _ = signed_in(desk.app, "lead")
    wang, _ = signed_in(desk.app, "wang")
    assert _numbers(lead, "?overdue=true") == [desk.late]
    assert _numbers(lead, "?at_risk=true") == [desk.soon]
    assert _numbers(lead, "?tier=consultation") == [desk.wangs]
    assert _numbers(lead, "?grade=major") == [desk.late]
    assert _numbers(lead, "?assignee=wang") == [desk.wangs]
    assert _numbers(lead, "?assignee=none") == [desk.late, desk.soon]
    assert _numbers(wang, "?assignee=me") == [desk.wangs]
    assert _numbers(lead, "?status=in_progress") == []
    assert _numbers(lead, "?status=all") == [desk.late, desk.soon, desk.wangs]
    assert _numbers(lead, "?status=active&tier=urgent") == [desk.late]
    for bad in ("?status=bogus", "?tier=x", "?limit=0", "?limit=9999", "?assignee=nobody"):
        response = lead.get(f"/desk/api/tickets{bad}")
        assert response.status_code == 422, bad
        assert response.json()["detail"], bad


def test_a_ticket_the_viewer_may_not_see_is_not_found(desk: Desk) -> None:
    li_na, _ = signed_in(desk.app, "li.na")
    lead, _ = signed_in(desk.app, "lead")
    hidden = li_na.get(f"/desk/api/tickets/{desk.wangs}")
    unknown = li_na.get("/desk/api/tickets/TK209901019999")
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json()["detail"] == f"No ticket {desk.wangs!r}."
    assert unknown.json()["detail"] == "No ticket 'TK209901019999'."
    assert li_na.get("/desk/api/tickets/999").status_code == 404  # malformed: the same
    assert li_na.get(f"/desk/api/tickets/{'9' * 5000}").status_code in (404, 414)
    detail = lead.get(f"/desk/api/tickets/{desk.wangs}").json()
    assert detail["assignee"] == "wang" and detail["supervisor"] == "lead"
    assert detail["record"]["problem"] == "左耳没有声音"
    assert [e["kind"] for e in detail["history"]][-1] == "assignment"
    assert {"handoffs", "notices", "followups", "allowed_statuses"} <= detail.keys()


# ---------------------------------------------------------------------- changes
def test_changes_need_the_csrf_token_and_checked_bodies(desk: Desk) -> None:
    li_na, csrf = signed_in(desk.app, "li.na")
    url = f"/desk/api/tickets/{desk.late}/notes"
    assert li_na.post(url, json={"text": "x"}).status_code == 403
    assert _post(li_na, "wrong", url, {"text": "x"}).status_code == 403
    for body in ({}, {"text": ""}, {"text": "   "}, {"text": "x" * 2001}, {"text": "x", "y": 1}):
        assert _post(li_na, csrf, url, body).status_code == 422, body
    status_url = f"/desk/api/tickets/{desk.late}/status"
    no_reason = _post(li_na, csrf, status_url, {"status": "in_progress", "reason": ""})
    assert no_reason.status_code == 422 and "reason" in str(no_reason.json()["detail"])
    bogus = _post(li_na, csrf, status_url, {"status": "bogus", "reason": "x"})
    assert bogus.status_code == 422
    resolve_url = f"/desk/api/tickets/{desk.late}/resolve"
    assert _post(li_na, csrf, resolve_url, {"result": "", "improvement": ""}).status_code == 422
    huge = li_na.post(
        url, content=b'{"text": "' + b"x" * 20000 + b'"}', headers={"X-CSRF-Token": csrf}
    )
    assert huge.status_code == 413


def test_agents_act_on_their_own_and_unassigned_tickets_only(desk: Desk) -> None:
    li_na, csrf = signed_in(desk.app, "li.na")
    for action, body in (
        ("notes", {"text": "内部"}),
        ("updates", {"text": "进展"}),
        ("status", {"status": "in_progress", "reason": "working"}),
        ("resolve", {"result": "done", "improvement": ""}),
        ("reopen", {"reason": "again"}),
        ("assign", {"username": "li.na", "note": ""}),
    ):
        refused = _post(li_na, csrf, f"/desk/api/tickets/{desk.wangs}/{action}", body)
        assert refused.status_code == 404, action  # wang's: as if it did not exist
    given = _post(li_na, csrf, f"/desk/api/tickets/{desk.late}/assign", {"username": "wang"})
    assert given.status_code in (403, 409), given.text  # agents only take tickets themselves
    taken = _post(li_na, csrf, f"/desk/api/tickets/{desk.late}/assign", {"username": "li.na"})
    assert taken.status_code == 200, taken.text
    assert taken.json()["ticket"]["assignee"] == "li.na"
    wang, _ = signed_in(desk.app, "wang")
    assert wang.get(f"/desk/api/tickets/{desk.late}").status_code == 404  # now li.na's
    assert desk.late not in _numbers(wang)


def test_the_working_loop_delivers_what_the_customer_is_owed(desk: Desk) -> None:
    li_na, csrf = signed_in(desk.app, "li.na")
    base = f"/desk/api/tickets/{desk.soon}"
    assert _post(li_na, csrf, f"{base}/assign", {"username": "li.na"}).status_code == 200
    noted = _post(li_na, csrf, f"{base}/notes", {"text": "客户很着急"})
    assert noted.status_code == 200 and noted.json()["notices"] == []
    assert desk.deliverer.delivered == []  # an internal note owes the customer nothing
    moved = _post(li_na, csrf, f"{base}/status", {"status": "in_progress", "reason": "开始处理"})
    assert moved.status_code == 200 and moved.json()["ticket"]["status"] == "in_progress"
    update_ = _post(li_na, csrf, f"{base}/updates", {"text": "已联系仓库，明天发出"})
    assert update_.status_code == 200
    assert update_.json()["notices"] and desk.deliverer.delivered == update_.json()["notices"]
    resolved = _post(
        li_na, csrf, f"{base}/resolve", {"result": "已补发", "improvement": "加固包装"}
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["ticket"]["status"] == "resolved"
    assert len(resolved.json()["notices"]) == 2  # the result and the CSAT question
    assert desk.deliverer.delivered[-2:] == resolved.json()["notices"]
    again = _post(li_na, csrf, f"{base}/resolve", {"result": "x", "improvement": ""})
    assert again.status_code == 409 and again.json()["detail"]
    detail = li_na.get(base).json()
    assert (detail["result"], detail["improvement"]) == ("已补发", "加固包装")
    kinds = [n["kind"] for n in detail["notices"]]
    assert {"progress_update", "result", "csat"} <= set(kinds)
    history = detail["history"]
    note = next(e for e in history if e["kind"] == "note")
    assert note["visible_to_customer"] is False
    assert any(e["kind"] == "progress" and e["visible_to_customer"] for e in history)
    reopened = _post(li_na, csrf, f"{base}/reopen", {"reason": "客户说还没收到"})
    assert reopened.status_code == 200 and reopened.json()["ticket"]["status"] == "in_progress"


def test_a_failed_delivery_does_not_fail_the_change(desk: Desk) -> None:
    desk.app.state.deliverer = RecordingDeliverer(fail=True)
    lead, csrf = signed_in(desk.app, "lead")
    sent = _post(lead, csrf, f"/desk/api/tickets/{desk.late}/updates", {"text": "在处理"})
    assert sent.status_code == 200 and sent.json()["notices"]  # left pending for the scheduler


# ---------------------------------------------------------------------- follow-ups and alerts
def test_followups_are_for_supervisors(desk: Desk) -> None:
    cases = desk.cases
    cases.resolve(desk.wangs, "换货", "", desk.agents["boss"])
    cases.rate(desk.wangs, 2)
    lead, csrf = signed_in(desk.app, "lead")
    wang, wang_csrf = signed_in(desk.app, "wang")
    assert wang.get("/desk/api/followups").status_code == 403
    tasks = lead.get("/desk/api/followups").json()["tasks"]
    assert [(t["ticket"], t["score"], t["assignee"]) for t in tasks] == [(desk.wangs, 2, "lead")]
    url = f"/desk/api/followups/{tasks[0]['id']}/outcome"
    assert _post(wang, wang_csrf, url, {"outcome": "solved"}).status_code == 403
    assert _post(lead, csrf, url, {"outcome": "maybe"}).status_code == 422
    assert _post(
        lead, csrf, "/desk/api/followups/999/outcome", {"outcome": "solved"}
    ).status_code == (404)
    done = _post(lead, csrf, url, {"outcome": "solved", "note": "客户满意了"})
    assert done.status_code == 200 and done.json()["outcome"] == "solved"
    assert _post(lead, csrf, url, {"outcome": "solved"}).status_code == 409
    assert lead.get("/desk/api/followups").json()["tasks"] == []
    assert len(lead.get("/desk/api/followups?done=true").json()["tasks"]) == 1


def _alert(desk: Desk, key: str, number: str, agent: str | None = None) -> int:
    with Session(desk.app.state.engine) as session, session.begin():
        ticket_id = session.query(Ticket.id).filter(Ticket.number == number).scalar()
        alert = raise_alert(
            session,
            key=key,
            kind="sla_at_risk",
            severity="warning",
            text=f"SLA at risk: {number}",
            now=datetime.now(UTC),
            ticket_id=ticket_id,
            agent_id=desk.agents[agent].id if agent else None,
        )
        assert alert is not None
        session.flush()
        return alert.id


def test_alerts_reach_whom_they_concern_and_are_acknowledged(desk: Desk) -> None:
    wangs_alert = _alert(desk, "a:1", desk.wangs)
    lis_alert = _alert(desk, "a:2", desk.late, agent="li.na")
    li_na, csrf = signed_in(desk.app, "li.na")
    lead, _ = signed_in(desk.app, "lead")
    assert [a["id"] for a in li_na.get("/desk/api/alerts").json()["alerts"]] == [lis_alert]
    assert [a["id"] for a in lead.get("/desk/api/alerts").json()["alerts"]] == [
        wangs_alert,
        lis_alert,
    ]
    assert _post(li_na, csrf, f"/desk/api/alerts/{wangs_alert}/ack", {}).status_code == 404
    assert _post(li_na, csrf, "/desk/api/alerts/999/ack", {}).status_code == 404
    assert li_na.post(f"/desk/api/alerts/{lis_alert}/ack").status_code == 403  # no CSRF
    acked = _post(li_na, csrf, f"/desk/api/alerts/{lis_alert}/ack", {})
    assert acked.status_code == 200 and acked.json()["acknowledged_by"] == "li.na"
    assert li_na.get("/desk/api/alerts").json()["alerts"] == []
    everything = li_na.get("/desk/api/alerts?acknowledged=true").json()["alerts"]
    assert [a["id"] for a in everything] == [lis_alert]
    assert lead.get("/desk/api/alerts?after=-1").status_code == 422


def test_assignees_are_the_accounts_that_serve(desk: Desk) -> None:
    lead, _ = signed_in(desk.app, "lead")
    people = {p["username"]: p["role"] for p in lead.get("/desk/api/assignees").json()}
    assert people == {"li.na": "agent", "wang": "agent", "lead": "supervisor", "boss": "admin"}


# ---------------------------------------------------------------------- pages
def test_the_pages(desk: Desk) -> None:
    li_na, _ = signed_in(desk.app, "li.na")
    page = li_na.get("/desk/tickets")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert re.search(r'<meta name="csrf-token" content="[^"]+">', page.text)
    assert 'id="tickets"' in page.text and 'id="alerts"' in page.text
    assert 'id="followups"' not in page.text  # supervisors only
    assert "<script>" not in page.text  # no inline code
    assert "李娜 &lt;i&gt;Li&lt;/i&gt;" in page.text  # names escaped
    mine = li_na.get(f"/desk/tickets/{desk.late}")
    assert mine.status_code == 200 and f'data-number="{desk.late}"' in mine.text
    for hidden in (desk.wangs, "TK209901019999", "<b>x"):
        refused = li_na.get(f"/desk/tickets/{hidden}")
        assert refused.status_code == 404 and 'id="ticket-missing"' in refused.text
        assert "<b>x" not in refused.text
    lead, _ = signed_in(desk.app, "lead")
    assert 'id="followups"' in lead.get("/desk/tickets").text
    assert lead.get("/desk").headers["location"] == "/desk/dashboard"
    assert lead.get(f"/desk/tickets/{desk.wangs}").status_code == 200
    editor, _ = signed_in(desk.app, "editor")
    assert editor.get("/desk/tickets").headers["location"] == "/desk/review"
    assert editor.get("/desk/api/tickets").status_code == 403
    anonymous = TestClient(desk.app, follow_redirects=False)
    assert anonymous.get("/desk/tickets").headers["location"] == "/desk/login"
    assert anonymous.get("/desk/api/tickets").status_code == 401


# ---------------------------------------------------------------------- live updates
def _until_pong(socket: Any) -> list[dict[str, Any]]:
    socket.send_json({"type": "ping"})
    seen = []
    while (event := socket.receive_json())["type"] != "pong":
        seen.append(event)
    return seen


def test_the_websocket_carries_only_tickets_and_alerts_the_agent_may_see(desk: Desk) -> None:
    li_na, _ = signed_in(desk.app, "li.na")
    lead, csrf = signed_in(desk.app, "lead")
    with (
        li_na.websocket_connect("/desk/ws", headers=ORIGIN) as agent_socket,
        lead.websocket_connect("/desk/ws", headers=ORIGIN) as lead_socket,
    ):
        assert _until_pong(agent_socket) == _until_pong(lead_socket) == []  # both listening
        for number in (desk.wangs, desk.late):
            body = {"text": f"note on {number}"}
            assert _post(lead, csrf, f"/desk/api/tickets/{number}/notes", body).status_code == 200
        assigned = _post(lead, csrf, f"/desk/api/tickets/{desk.late}/assign", {"username": "wang"})
        assert assigned.status_code == 200
        assert _post(lead, csrf, f"/desk/api/tickets/{desk.late}/notes", {"text": "x"}).is_success
        agent_seen = [e["ticket"]["number"] for e in _until_pong(agent_socket)]
        lead_seen = [e["ticket"]["number"] for e in _until_pong(lead_socket)]
    # li.na: the unassigned one, then once more as it left her (the page drops it), then nothing
    assert agent_seen == [desk.late, desk.late]
    assert lead_seen == [desk.wangs, desk.late, desk.late, desk.late]


def test_the_watcher_broadcasts_new_alerts_and_changed_tickets_once(desk: Desk) -> None:
    from bot.web.live import TicketWatcher

    watcher = TicketWatcher(desk.app.state.engine, desk.cases, desk.app.state.desk_service.hub)
    now = datetime.now(UTC)
    watcher.start(now)
    assert watcher.poll(now) == []
    alert_id = _alert(desk, "w:1", desk.wangs)
    desk.cases.add_note(desk.soon, "changed elsewhere", desk.agents["lead"])
    payloads = watcher.poll(datetime.now(UTC))
    assert (payloads[0]["type"], payloads[0]["alert"]["id"]) == ("alert", alert_id)
    assert [p["ticket"]["number"] for p in payloads if p["type"] == "ticket"] == [desk.soon]
    assert watcher.poll(datetime.now(UTC)) == []  # each change once
