"""The console's API and WebSocket: sessions, CSRF, bad input, ownership, what reaches Rasa.

Rasa itself is exercised end to end in tests/e2e/test_handoff.py; here its client records
the events the desk would append.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketDisconnect

from bot.accounts import AgentStore
from bot.core.db import AgentRole, TicketStatus, make_engine, upgrade
from bot.core.db import engine as engine_module
from bot.core.settings import Settings
from bot.handoff.service import DeskService
from bot.handoff.store import HandoffStore
from bot.service.records import RecordDraft
from bot.web import create_app
from bot.web.deps import get_review
from tests.app.web.conftest import PASSWORD, RecordingRasa, signed_in


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    settings = Settings(var_dir=tmp_path)
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    agents = AgentStore(engine)
    agents.create("li.na", "李娜", AgentRole.agent, PASSWORD)
    agents.create("wang", "王伟", AgentRole.agent, PASSWORD)
    handoffs = HandoffStore(engine)
    now = datetime.now(UTC)
    record = handoffs.tickets.save_record(
        RecordDraft(customer_id="c1", channel="socketio", language="zh", category="problem",
                    problem="坏了", created_at=now, due_at=now, confirmation_due_at=now)
    )  # fmt: skip
    ticket = handoffs.tickets.confirm(
        record, at=now, actor="bot", status=TicketStatus.pending_agent
    )
    handoffs.open(
        conversation_id="c1", channel="socketio", language="zh", reason="explicit_request",
        ticket_id=ticket.id, packet={"customer": {"name": "<b>张三</b>"}}, due_at=ticket.due_at,
    )  # fmt: skip
    app = create_app(settings)
    service = DeskService.from_settings(settings, app.state.engine)
    service.rasa = RecordingRasa()  # type: ignore[assignment]
    app.state.desk_service = service
    return app


def test_the_queue_and_the_claim(app: FastAPI) -> None:
    client, csrf = signed_in(app)
    queue = client.get("/desk/api/handoffs").json()
    assert [(h["status"], h["queue_position"], h["customer_name"]) for h in queue] == [
        ("queued", 1, "<b>张三</b>")  # JSON keeps it as text; the console renders it as text
    ]
    handoff_id = queue[0]["id"]
    assert client.post(f"/desk/api/handoffs/{handoff_id}/claim").status_code == 403  # no CSRF
    claimed = client.post(
        f"/desk/api/handoffs/{handoff_id}/claim", headers={"X-CSRF-Token": csrf}
    ).json()
    assert claimed["status"] == "active" and claimed["agent"]["username"] == "li.na"
    rasa: RecordingRasa = app.state.desk_service.rasa
    conversation, events = rasa.appended[-1]
    assert conversation == "c1" and "李娜 已接入" in events[0]["text"]
    assert events[0]["metadata"]["kefu"]["agent"] == "li.na"

    other, other_csrf = signed_in(app, "wang")
    refused = other.post(
        f"/desk/api/handoffs/{handoff_id}/claim", headers={"X-CSRF-Token": other_csrf}
    )
    assert refused.status_code == 409 and "Another agent" in refused.json()["detail"]
    reply = other.post(
        f"/desk/api/handoffs/{handoff_id}/messages",
        json={"text": "hi"},
        headers={"X-CSRF-Token": other_csrf},
    )
    assert reply.status_code == 404  # another agent's conversation: not even its existence


@pytest.mark.parametrize(
    "body",
    [{}, {"text": ""}, {"text": "   "}, {"text": "x" * 2001}, {"text": 5}, {"text": "hi", "x": 1}],
)
def test_bad_replies_are_refused_with_a_message(app: FastAPI, body: dict[str, Any]) -> None:
    client, csrf = signed_in(app)
    response = client.post(
        "/desk/api/handoffs/1/messages", json=body, headers={"X-CSRF-Token": csrf}
    )
    assert response.status_code == 422
    assert response.json()["detail"]


def test_unknown_handoffs_and_agents_are_4xx(app: FastAPI) -> None:
    client, csrf = signed_in(app)
    headers = {"X-CSRF-Token": csrf}
    assert client.get("/desk/api/handoffs/999").status_code == 404
    assert client.post("/desk/api/handoffs/999/claim", headers=headers).status_code == 404
    assert client.get("/desk/api/handoffs/abc").status_code == 422
    missing = client.post("/desk/api/handoffs/1/assign", json={"agent": "nobody"}, headers=headers)
    assert missing.status_code == 409 and "nobody" in missing.json()["detail"]
    not_json = client.post(
        "/desk/api/handoffs/1/notes",
        content=b"\xff\xfe",
        headers={**headers, "Content-Type": "application/json"},
    )
    assert not_json.status_code == 422


def test_reply_resolve_and_rating_question(app: FastAPI) -> None:
    client, csrf = signed_in(app)
    headers = {"X-CSRF-Token": csrf}
    client.post("/desk/api/handoffs/1/claim", headers=headers)
    note = client.post("/desk/api/handoffs/1/notes", json={"text": "内部"}, headers=headers)
    assert note.json()["kind"] == "note"
    reply = client.post("/desk/api/handoffs/1/messages", json={"text": " 您好 "}, headers=headers)
    assert reply.status_code == 200 and reply.json()["text"] == "您好"
    rasa: RecordingRasa = app.state.desk_service.rasa
    assert rasa.appended[-1][1] == [
        {
            "event": "bot",
            "text": "您好",
            "metadata": {
                "kefu": {
                    "handoff_id": 1,
                    "agent": "li.na",
                    "agent_name": "李娜",
                    "message_id": reply.json()["id"],
                }
            },
        }
    ]
    assert all("内部" not in e.get("text", "") for _, es in rasa.appended for e in es)
    resolved = client.post("/desk/api/handoffs/1/resolve", headers=headers).json()
    assert resolved["status"] == "resolved"
    events = rasa.appended[-1][1]
    assert events[0] == {"event": "resume"}
    assert events[1]["name"] == "rating_ticket" and events[1]["value"].startswith("TK")
    assert len(events[2]["data"]["buttons"]) == 5
    assert events[3] == {"event": "action", "name": "action_listen"}  # rules see a fresh turn
    assert client.get("/desk/api/handoffs").json() == []
    again = client.post("/desk/api/handoffs/1/hand-back", headers=headers)
    assert again.status_code == 409


def test_canned_replies_and_agents(app: FastAPI) -> None:
    client, _ = signed_in(app)
    library = client.get("/desk/api/canned-replies").json()
    assert [level["key"] for level in library["levels"]] == ["basic", "advanced", "special"]
    agents = client.get("/desk/api/agents").json()
    assert {a["username"] for a in agents} == {"li.na", "wang"}


def test_the_websocket_needs_a_session_and_the_same_origin(app: FastAPI) -> None:
    anonymous = TestClient(app)
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        anonymous.websocket_connect("/desk/ws") as s,
    ):
        s.receive_json()
    assert refused.value.code == 4401
    client, _ = signed_in(app)
    evil = {"Origin": "http://evil.example"}
    with (
        pytest.raises(WebSocketDisconnect) as foreign,
        client.websocket_connect("/desk/ws", headers=evil) as s,
    ):
        s.receive_json()
    assert foreign.value.code == 4403


def test_the_websocket_carries_live_updates(app: FastAPI) -> None:
    client, csrf = signed_in(app)
    with client.websocket_connect("/desk/ws", headers={"Origin": "http://testserver"}) as socket:
        socket.send_json({"type": "ping"})
        assert socket.receive_json() == {"type": "pong"}
        client.post("/desk/api/handoffs/1/claim", headers={"X-CSRF-Token": csrf})
        kinds = [socket.receive_json()["type"] for _ in range(3)]
        assert kinds == ["message", "message", "queue"]  # joined (system), notice, queue


def test_the_websocket_closes_once_the_agent_signs_out(app: FastAPI) -> None:
    client, csrf = signed_in(app)
    with client.websocket_connect("/desk/ws", headers={"Origin": "http://testserver"}) as socket:
        client.post("/desk/logout", data={"csrf_token": csrf})
        socket.send_json({"type": "ping"})
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
    assert closed.value.code == 4401


def test_the_websocket_ignores_garbage_and_keeps_working(app: FastAPI) -> None:
    client, _ = signed_in(app)
    with client.websocket_connect("/desk/ws", headers={"Origin": "http://testserver"}) as socket:
        socket.send_bytes(b"\xff\x00binary")
        socket.send_text("not json")
        socket.send_text("[1, 2]")
        socket.send_text('{"type": "x"}')
        socket.send_text("x" * 100_000)
        socket.send_json({"type": "ping"})
        assert socket.receive_json() == {"type": "pong"}


def test_a_huge_body_is_refused_before_it_is_parsed(app: FastAPI) -> None:
    client, csrf = signed_in(app)
    response = client.post(
        "/desk/api/handoffs/1/notes",
        content=b'{"text": "' + b"x" * 100_000 + b'"}',
        headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"},
    )
    assert response.status_code == 413


def test_the_app_uses_its_one_engine_and_one_for_the_broker(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stores and services share `app.state.engine`; the lifespan adds the broker's engine."""
    made: list[str] = []
    create_engine = engine_module.create_engine

    def recording(url: str, **options: Any) -> Any:
        made.append(url)
        return create_engine(url, **options)

    monkeypatch.setattr(engine_module, "create_engine", recording)
    del app.state.desk_service  # the lifespan makes the app's own
    client, _ = signed_in(app)
    with client:
        assert client.get("/desk/api/handoffs").status_code == 200
        assert client.get("/desk/api/me").json()["username"] == "li.na"
        get_review(HTTPConnection({"type": "http", "app": app}))
    assert made == [app.state.settings.event_broker_url]
