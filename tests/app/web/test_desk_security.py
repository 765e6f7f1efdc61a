"""The desk's defences: roles on every route, per-handoff access, the WebSocket's session
watch, login throttling by client address, and password changes ending sessions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute, Mount
from starlette.websockets import WebSocketDisconnect

from bot.accounts import AgentStore
from bot.core.db import (
    Agent,
    AgentRole,
    DeskSession,
    HandoffStatus,
    TicketStatus,
    make_engine,
    upgrade,
)
from bot.core.settings import Settings
from bot.handoff.service import DeskService
from bot.handoff.store import HandoffStore
from bot.service.records import RecordDraft
from bot.web import create_app
from bot.web.deps import client_address
from bot.web.routes import handoffs as handoffs_routes
from tests.app.conftest import KeywordEncoder
from tests.app.web.conftest import PASSWORD, RecordingRasa, signed_in

pytestmark = pytest.mark.usefixtures("project_data_untouched")

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
ORIGIN = {"Origin": "http://testserver"}


def _open(handoffs: HandoffStore, conversation: str) -> int:
    now = datetime.now(UTC)
    record = handoffs.tickets.save_record(
        RecordDraft(customer_id=conversation, channel="socketio", language="zh",
                    category="problem", problem="坏了", created_at=now, due_at=now,
                    confirmation_due_at=now)
    )  # fmt: skip
    ticket = handoffs.tickets.confirm(
        record, at=now, actor="bot", status=TicketStatus.pending_agent
    )
    handoff, _ = handoffs.open(
        conversation_id=conversation, channel="socketio", language="zh",
        reason="explicit_request", ticket_id=ticket.id,
        packet={"customer": {"name": conversation}}, due_at=ticket.due_at,
    )  # fmt: skip
    return handoff.id


def _make_app(settings: Settings) -> FastAPI:
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    agents = AgentStore(engine, FAST)
    made: dict[str, Agent] = {}
    for username, role in (
        ("li.na", AgentRole.agent),
        ("wang", AgentRole.agent),
        ("editor", AgentRole.editor),
        ("boss", AgentRole.admin),
        ("lead", AgentRole.supervisor),
    ):
        made[username] = agents.create(username, username.title(), role, PASSWORD)
    handoffs = HandoffStore(engine)
    queued = _open(handoffs, "c-queued")
    wangs = _open(handoffs, "c-wang")
    handoffs.claim(wangs, made["wang"])
    ended = _open(handoffs, "c-ended")
    handoffs.claim(ended, made["wang"])
    handoffs.end(ended, HandoffStatus.resolved, made["wang"])
    assert (queued, wangs, ended) == (1, 2, 3)
    engine.dispose()
    app = create_app(settings)
    service = DeskService.from_settings(settings, app.state.engine)
    service.rasa = RecordingRasa()  # type: ignore[assignment]
    app.state.desk_service = service
    app.state.review_encoder = KeywordEncoder()
    return app


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return _make_app(settings)


QUEUED, WANGS, ENDED = 1, 2, 3


# ---------------------------------------------------------------------- roles on every route
PUBLIC = "public"
ANY = frozenset({"agent", "editor", "supervisor", "admin"})
CONSOLE = frozenset({"agent", "admin"})
DESK = frozenset({"agent", "supervisor", "admin"})
"""Tickets, alerts and the live WebSocket."""
LEADS = frozenset({"supervisor", "admin"})
EDITORS = frozenset({"editor", "admin"})
RULES: dict[tuple[str, str], str | frozenset[str]] = {
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/"): PUBLIC,
    ("POST", "/chat/session"): PUBLIC,
    ("MOUNT", "/static"): PUBLIC,
    ("MOUNT", "/vendor/webchat"): PUBLIC,
    ("GET", "/desk/login"): PUBLIC,
    ("POST", "/desk/login"): PUBLIC,
    ("POST", "/desk/logout"): ANY,
    ("GET", "/desk/api/me"): ANY,
    ("POST", "/desk/api/me/password"): ANY,
    ("GET", "/desk"): CONSOLE,
    ("GET", "/desk/api/agents"): CONSOLE,
    ("GET", "/desk/api/handoffs"): CONSOLE,
    ("GET", "/desk/api/handoffs/{handoff_id}"): CONSOLE,
    ("POST", "/desk/api/handoffs/{handoff_id}/claim"): CONSOLE,
    ("POST", "/desk/api/handoffs/{handoff_id}/assign"): CONSOLE,
    ("POST", "/desk/api/handoffs/{handoff_id}/transfer"): CONSOLE,
    ("POST", "/desk/api/handoffs/{handoff_id}/messages"): CONSOLE,
    ("POST", "/desk/api/handoffs/{handoff_id}/notes"): CONSOLE,
    ("POST", "/desk/api/handoffs/{handoff_id}/resolve"): CONSOLE,
    ("POST", "/desk/api/handoffs/{handoff_id}/hand-back"): CONSOLE,
    ("GET", "/desk/api/handoffs/{handoff_id}/assist"): CONSOLE,
    ("GET", "/desk/api/canned-replies"): CONSOLE,
    ("WS", "/desk/ws"): DESK,
    ("GET", "/desk/tickets"): DESK,
    ("GET", "/desk/tickets/{number}"): DESK,
    ("GET", "/desk/api/tickets"): DESK,
    ("GET", "/desk/api/tickets/{number}"): DESK,
    ("GET", "/desk/api/assignees"): DESK,
    ("POST", "/desk/api/tickets/{number}/assign"): DESK,
    ("POST", "/desk/api/tickets/{number}/status"): DESK,
    ("POST", "/desk/api/tickets/{number}/notes"): DESK,
    ("POST", "/desk/api/tickets/{number}/updates"): DESK,
    ("POST", "/desk/api/tickets/{number}/resolve"): DESK,
    ("POST", "/desk/api/tickets/{number}/reopen"): DESK,
    ("GET", "/desk/api/alerts"): DESK,
    ("POST", "/desk/api/alerts/{alert_id}/ack"): DESK,
    ("GET", "/desk/api/followups"): LEADS,
    ("POST", "/desk/api/followups/{task_id}/outcome"): LEADS,
    ("GET", "/desk/review"): EDITORS,
    ("GET", "/desk/api/review"): EDITORS,
    ("POST", "/desk/api/review/collect"): EDITORS,
    ("POST", "/desk/api/review/groups/{group_id}/approve"): EDITORS,
    ("POST", "/desk/api/review/groups/{group_id}/merge"): EDITORS,
    ("POST", "/desk/api/review/groups/{group_id}/examples"): EDITORS,
    ("POST", "/desk/api/review/groups/{group_id}/reject"): EDITORS,
    ("GET", "/desk/dashboard"): LEADS,
    ("GET", "/desk/api/dashboard/live"): LEADS,
    ("GET", "/desk/api/dashboard/day"): LEADS,
    ("GET", "/desk/dashboard/charts/{name}.svg"): LEADS,
    ("GET", "/desk/conversations"): DESK,
    ("GET", "/desk/conversations/{pk}"): DESK,
    ("GET", "/desk/api/conversations"): DESK,
    ("GET", "/desk/api/conversations.csv"): DESK,
    ("GET", "/desk/api/conversations/{pk}"): DESK,
    ("GET", "/desk/quality"): DESK,
    ("GET", "/desk/api/quality/findings"): DESK,
    ("POST", "/desk/api/quality/findings/{finding_id}/appeal"): DESK,
    ("POST", "/desk/api/quality/findings/{finding_id}/decision"): LEADS,
    ("GET", "/desk/review-list"): ANY,
    ("GET", "/desk/api/review-list"): ANY,
    ("POST", "/desk/api/review-list"): LEADS,
    ("PATCH", "/desk/api/review-list/{item_id}"): ANY,
    ("GET", "/desk/reports/{kind}/{period}"): LEADS,
    ("GET", "/desk/reports/{kind}/{period}/{path:path}"): LEADS,
}
"""Who may use each route. A route the app gains without a rule here fails the tests."""
PAGES = {
    "/desk",
    "/desk/review",
    "/desk/tickets",
    "/desk/tickets/{number}",
    "/desk/dashboard",
    "/desk/conversations",
    "/desk/conversations/{pk}",
    "/desk/quality",
    "/desk/review-list",
    "/desk/reports/{kind}/{period}",
}
"""Pages: without a session they redirect to the login form."""
ELSEWHERE = {
    ("/desk", "editor"): "/desk/review",
    ("/desk", "supervisor"): "/desk/dashboard",
    ("/desk/tickets", "editor"): "/desk/review",
    ("/desk/tickets/{number}", "editor"): "/desk/review",
    ("/desk/dashboard", "agent"): "/desk/quality",
    ("/desk/dashboard", "editor"): "/desk/review",
    ("/desk/conversations", "editor"): "/desk/review",
    ("/desk/conversations/{pk}", "editor"): "/desk/review",
    ("/desk/quality", "editor"): "/desk/review",
    ("/desk/reports/{kind}/{period}", "agent"): "/desk/quality",
    ("/desk/reports/{kind}/{period}", "editor"): "/desk/review",
}
"""Pages that send a role without access on to its own page."""
USERS = {"agent": "li.na", "editor": "editor", "supervisor": "lead", "admin": "boss"}


def _routes(routes: list[BaseRoute]) -> Iterator[tuple[str, str]]:
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:  # FastAPI's included routers
            yield from _routes(included.routes)
        elif isinstance(route, Mount):
            yield ("MOUNT", route.path)
        elif hasattr(route, "methods") and route.methods is not None:
            for method in sorted(route.methods - {"HEAD"}):
                yield (method, getattr(route, "path", ""))
        else:
            yield ("WS", getattr(route, "path", ""))


def test_every_route_has_a_role_rule(app: FastAPI) -> None:
    found = set(_routes(app.routes))
    assert found - RULES.keys() == set(), "routes without a rule in RULES"
    assert RULES.keys() - found == set(), "rules for routes the app no longer has"


def _call(client: TestClient, method: str, path: str, csrf: str) -> tuple[int, str]:
    url = re.sub(r"\{[a-z_]+(:path)?\}", "999", path)
    if method == "GET":
        response = client.get(url)
    else:
        response = client.request(method, url, json={}, headers={"X-CSRF-Token": csrf})
    return response.status_code, response.headers.get("location", "")


def _ws_close_code(client: TestClient) -> int | None:
    """The close code the desk's WebSocket answers with; None when it is accepted."""
    try:
        with client.websocket_connect("/desk/ws", headers=ORIGIN) as socket:
            socket.send_json({"type": "ping"})
            assert socket.receive_json() == {"type": "pong"}
    except WebSocketDisconnect as closed:
        return closed.code
    return None


def test_every_route_enforces_its_roles(app: FastAPI) -> None:
    clients = {role: signed_in(app, username) for role, username in USERS.items()}
    anonymous = TestClient(app, follow_redirects=False)
    checked = 0
    for (method, path), rule in RULES.items():
        if rule == PUBLIC or path == "/desk/logout":
            continue  # logout ends the session: checked below
        assert isinstance(rule, frozenset)
        if method == "WS":
            assert _ws_close_code(anonymous) == 4401
            for role, (client, _) in clients.items():
                assert _ws_close_code(client) == (None if role in rule else 4403), role
            checked += 1
            continue
        expected_anonymous = 303 if path in PAGES else 401
        assert _call(anonymous, method, path, "")[0] == expected_anonymous, (method, path)
        for role, (client, csrf) in clients.items():
            status, location = _call(client, method, path, csrf)
            where = (method, path, role, status)
            if role in rule:
                assert status not in (401, 403) and status < 500, where
            elif (path, role) in ELSEWHERE:
                assert (status, location) == (303, ELSEWHERE[path, role]), where
            else:
                assert status == 403, where
            checked += 1
    assert checked > 100
    for client, csrf in clients.values():
        assert client.post("/desk/logout", data={"csrf_token": csrf}).status_code == 303
        assert client.get("/desk/api/me").status_code == 401


def test_the_editors_desk_page_is_the_review_queue(app: FastAPI) -> None:
    editor, _ = signed_in(app, "editor")
    assert editor.get("/desk").headers["location"] == "/desk/review"
    assert editor.get("/desk/api/handoffs/1").status_code == 403


# ---------------------------------------------------------------------- per-handoff access
def test_agents_see_the_queue_and_their_own_handoffs_only(app: FastAPI) -> None:
    li_na, li_csrf = signed_in(app, "li.na")
    wang, wang_csrf = signed_in(app, "wang")
    boss, boss_csrf = signed_in(app, "boss")
    assert [h["id"] for h in li_na.get("/desk/api/handoffs").json()] == [QUEUED]
    assert sorted(h["id"] for h in wang.get("/desk/api/handoffs").json()) == [QUEUED, WANGS]
    assert sorted(h["id"] for h in boss.get("/desk/api/handoffs").json()) == [QUEUED, WANGS]

    assert li_na.get(f"/desk/api/handoffs/{QUEUED}").status_code == 200
    for handoff_id in (WANGS, ENDED, 999):  # another's and an unknown one look the same
        response = li_na.get(f"/desk/api/handoffs/{handoff_id}")
        assert response.status_code == 404, handoff_id
        assert response.json() == {"detail": f"No handoff {handoff_id}."}
        assert li_na.get(f"/desk/api/handoffs/{handoff_id}/assist").status_code == 404
    assert wang.get(f"/desk/api/handoffs/{ENDED}").status_code == 200  # their own, ended
    assert boss.get(f"/desk/api/handoffs/{ENDED}").status_code == 200

    def note(client: TestClient, csrf: str, handoff_id: int) -> Any:
        return client.post(
            f"/desk/api/handoffs/{handoff_id}/notes",
            json={"text": "内部备注"},
            headers={"X-CSRF-Token": csrf},
        )

    assert note(li_na, li_csrf, WANGS).status_code == 404
    assert note(li_na, li_csrf, ENDED).status_code == 404
    assert note(li_na, li_csrf, QUEUED).status_code == 409  # claim it first
    assert note(wang, wang_csrf, ENDED).status_code == 409  # ended
    assert note(wang, wang_csrf, WANGS).status_code == 200
    assert note(boss, boss_csrf, WANGS).status_code == 200
    for action in ("resolve", "hand-back"):
        refused = li_na.post(
            f"/desk/api/handoffs/{WANGS}/{action}", json={}, headers={"X-CSRF-Token": li_csrf}
        )
        assert refused.status_code == 404
    taken = li_na.post(
        f"/desk/api/handoffs/{WANGS}/transfer",
        json={"agent": "li.na"},
        headers={"X-CSRF-Token": li_csrf},
    )
    assert taken.status_code == 409
    to_editor = boss.post(
        f"/desk/api/handoffs/{QUEUED}/assign",
        json={"agent": "editor"},
        headers={"X-CSRF-Token": boss_csrf},
    )
    assert to_editor.status_code == 409  # editors serve no customers


def test_the_websocket_forwards_only_what_the_agent_may_see(app: FastAPI) -> None:
    li_na, _ = signed_in(app, "li.na")
    boss, boss_csrf = signed_in(app, "boss")
    with li_na.websocket_connect("/desk/ws", headers=ORIGIN) as socket:
        for handoff_id, text in ((WANGS, "wang's secret"), (QUEUED, "for everyone")):
            sent = boss.post(
                f"/desk/api/handoffs/{handoff_id}/notes",
                json={"text": text},
                headers={"X-CSRF-Token": boss_csrf},
            )
            assert sent.status_code == 200
        event = socket.receive_json()
        assert event["handoff_id"] == QUEUED and event["message"]["text"] == "for everyone"
        boss.post(  # the queued one goes to wang: li.na hears it left, then nothing more
            f"/desk/api/handoffs/{QUEUED}/assign",
            json={"agent": "wang"},
            headers={"X-CSRF-Token": boss_csrf},
        )
        boss.post(
            f"/desk/api/handoffs/{QUEUED}/notes",
            json={"text": "now wang's"},
            headers={"X-CSRF-Token": boss_csrf},
        )
        seen = []
        socket.send_json({"type": "ping"})
        while (event := socket.receive_json())["type"] != "pong":
            seen.append(event)
    queue_events = [e for e in seen if e["type"] == "queue"]
    assert queue_events and queue_events[-1]["handoff"]["agent"]["username"] == "wang"
    assert all(e.get("message", {}).get("text") != "now wang's" for e in seen)


# ---------------------------------------------------------------------- the WebSocket's watch
@pytest.fixture
def quick_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handoffs_routes, "SESSION_CHECK_SECONDS", 0.05)


def _closed_without_a_message(socket: Any) -> int:
    with pytest.raises(WebSocketDisconnect) as closed:
        socket.receive_json()
    return closed.value.code


def _second_client(app: FastAPI, client: TestClient) -> TestClient:
    other = TestClient(app, follow_redirects=False)
    other.cookies.set("kefu_desk_session", client.cookies["kefu_desk_session"], path="/desk")
    return other


@pytest.mark.usefixtures("quick_watch")
def test_the_websocket_closes_after_a_logout_elsewhere(app: FastAPI) -> None:
    client, csrf = signed_in(app, "li.na")
    other = _second_client(app, client)
    with client.websocket_connect("/desk/ws", headers=ORIGIN) as socket:
        assert other.post("/desk/logout", data={"csrf_token": csrf}).status_code == 303
        assert _closed_without_a_message(socket) == 4401


@pytest.mark.usefixtures("quick_watch")
def test_the_websocket_closes_when_the_account_is_disabled(app: FastAPI) -> None:
    client, _ = signed_in(app, "li.na")
    with client.websocket_connect("/desk/ws", headers=ORIGIN) as socket:
        AgentStore(app.state.engine).set_active("li.na", False)
        assert _closed_without_a_message(socket) == 4401


@pytest.mark.usefixtures("quick_watch")
def test_the_websocket_closes_when_the_session_expires(app: FastAPI) -> None:
    client, _ = signed_in(app, "li.na")
    with client.websocket_connect("/desk/ws", headers=ORIGIN) as socket:
        with Session(app.state.engine) as session, session.begin():
            session.execute(
                update(DeskSession).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert _closed_without_a_message(socket) == 4401


@pytest.mark.usefixtures("quick_watch")
def test_a_password_change_closes_the_other_sessions_websockets(app: FastAPI) -> None:
    elsewhere, _ = signed_in(app, "li.na")
    here, csrf = signed_in(app, "li.na")
    with (
        elsewhere.websocket_connect("/desk/ws", headers=ORIGIN) as theirs,
        here.websocket_connect("/desk/ws", headers=ORIGIN) as mine,
    ):
        changed = here.post(
            "/desk/api/me/password",
            json={"current_password": PASSWORD, "new_password": "a brand new password"},
            headers={"X-CSRF-Token": csrf},
        )
        assert changed.status_code == 200
        assert _closed_without_a_message(theirs) == 4401
        mine.send_json({"type": "ping"})
        assert mine.receive_json() == {"type": "pong"}  # the session that changed it stays
    assert elsewhere.get("/desk/api/me").status_code == 401
    assert here.get("/desk/api/me").status_code == 200


def test_password_changes_are_checked(app: FastAPI) -> None:
    client, csrf = signed_in(app, "li.na")
    headers = {"X-CSRF-Token": csrf}
    url = "/desk/api/me/password"
    body = {"current_password": PASSWORD, "new_password": "a brand new password"}
    assert client.post(url, json=body).status_code == 403  # no CSRF token
    wrong = client.post(url, json={**body, "current_password": "not it at all"}, headers=headers)
    assert wrong.status_code == 403 and "current password" in wrong.json()["detail"]
    short = client.post(url, json={**body, "new_password": "short"}, headers=headers)
    assert short.status_code == 422 and "at least 10" in short.json()["detail"]
    assert client.post(url, json={"x": 1}, headers=headers).status_code == 422
    assert client.post(url, json=body, headers=headers).status_code == 200
    assert client.get("/desk/api/me").status_code == 200


# ---------------------------------------------------------------------- login throttling
def _login(client: TestClient, username: str, password: str, forwarded: str = "") -> int:
    form = client.get("/desk/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    data = {"csrf_token": csrf.group(1), "username": username, "password": password}
    return client.post("/desk/login", data=data, headers=headers).status_code


def test_behind_a_trusted_proxy_the_forwarded_client_is_throttled(settings: Settings) -> None:
    app = _make_app(settings.model_copy(update={"trusted_proxies": "testclient, 10.0.0.2"}))
    client = TestClient(app, follow_redirects=False)
    attacker = "198.51.100.7, 10.0.0.2"  # through two proxies, both trusted
    for _ in range(5):
        assert _login(client, "li.na", "not the password", attacker) == 401
    assert _login(client, "li.na", PASSWORD, attacker) == 429
    assert _login(client, "li.na", PASSWORD, "203.0.113.9") == 303  # li.na elsewhere
    assert _login(client, "wang", PASSWORD, attacker) == 303  # other users from there
    spoofed = "203.0.113.9, 198.51.100.7"  # a forged left-most entry changes nothing
    assert _login(client, "li.na", PASSWORD, spoofed) == 429


def test_forwarded_for_from_an_untrusted_peer_is_ignored(app: FastAPI) -> None:
    client = TestClient(app, follow_redirects=False)
    for number in range(5):
        assert _login(client, "li.na", "not the password", f"203.0.113.{number}") == 401
    assert _login(client, "li.na", PASSWORD, "192.0.2.200") == 429
    assert _login(client, "wang", PASSWORD, "192.0.2.200") == 303


def _connection(settings: Settings, peer: str, forwarded: list[str]) -> HTTPConnection:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]

    class _App:
        class state:
            pass

    _App.state.settings = settings  # type: ignore[attr-defined]
    scope = {"type": "http", "client": (peer, 1234), "headers": headers, "app": _App}
    return HTTPConnection(scope)


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded", "expected"),
    [
        ("", "192.0.2.1", ["10.9.9.9"], "192.0.2.1"),
        ("10.0.0.1", "192.0.2.1", ["10.9.9.9"], "192.0.2.1"),
        ("10.0.0.1", "10.0.0.1", ["198.51.100.7"], "198.51.100.7"),
        ("10.0.0.1", "10.0.0.1", ["1.1.1.1, 198.51.100.7"], "198.51.100.7"),
        ("10.0.0.1,10.0.0.2", "10.0.0.1", ["198.51.100.7, 10.0.0.2"], "198.51.100.7"),
        ("10.0.0.1", "10.0.0.1", ["1.1.1.1", "198.51.100.7"], "198.51.100.7"),
        ("10.0.0.1", "10.0.0.1", [], "10.0.0.1"),
        ("10.0.0.1", "10.0.0.1", ["10.0.0.1"], "10.0.0.1"),
        ("::1", "::1", ["2001:db8::7"], "2001:db8::7"),
        ("10.0.0.1", "10.0.0.1", ["198.51.100.7:4711"], "198.51.100.7"),
    ],
)
def test_client_address(trusted: str, peer: str, forwarded: list[str], expected: str) -> None:
    settings = Settings(trusted_proxies=trusted)
    assert client_address(_connection(settings, peer, forwarded)) == expected
