"""The agent desk: sessions end everywhere at once, roles and ownership on every route.

Findings: a desk WebSocket stayed open after logout (the session was only re-checked on a
ping); editors reached conversations, packets and the WebSocket; any agent could read any
handoff by id, ended ones included, and add notes to others' handoffs; the login lockout
believed any X-Forwarded-For and counted per username, so anyone could lock every agent out;
a password change left the old sessions working.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import ClientConnection, connect

from bot.accounts import AgentStore
from bot.core.db import AgentRole, make_engine
from bot.core.settings import PROJECT_ROOT, Settings
from tests.e2e.chat_client import Chat
from tests.e2e.desk_client import open_handoff_with

pytestmark = pytest.mark.e2e

SESSION_COOKIE = "kefu_desk_session"
PASSWORD = "security-suite-password-1"
CLOSE_WITHIN = 10.0
"""Seconds within which a desk WebSocket must close once its session ended."""


def ensure_account(stack: Settings, role: AgentRole, prefix: str) -> str:
    """A fresh account of `role` with `PASSWORD`; returns its username."""
    username = f"{prefix}.{uuid.uuid4().hex[:6]}"
    engine = make_engine(stack.database_url)
    try:
        AgentStore(engine).create(username, f"{prefix} {role.value}", role, PASSWORD)
    finally:
        engine.dispose()
    return username


class Desk:
    """One browser's desk session: login form with its CSRF token, API calls, the WebSocket."""

    def __init__(self, stack: Settings, local_address: str | None = None) -> None:
        self.stack = stack
        transport = httpx.HTTPTransport(local_address=local_address) if local_address else None
        self.http = httpx.Client(
            base_url=f"http://{stack.host}:{stack.web_port}", timeout=30, transport=transport
        )
        self.csrf = ""

    def login(self, username: str, password: str, **headers: str) -> httpx.Response:
        form = self.http.get("/desk/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token, form[:300]
        response = self.http.post(
            "/desk/login",
            data={"csrf_token": token.group(1), "username": username, "password": password},
            headers=headers,
        )
        if response.status_code == 303:
            page = self.http.get("/desk").text
            meta = re.search(r'name="csrf-token" content="([^"]+)"', page)
            self.csrf = meta.group(1) if meta else ""
        return response

    def signed_in(self, username: str, password: str = PASSWORD) -> Desk:
        response = self.login(username, password)
        assert response.status_code == 303, response.text[:300]
        return self

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path)

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.http.post(path, json=body or {}, headers={"X-CSRF-Token": self.csrf})

    def logout(self) -> httpx.Response:
        return self.http.post("/desk/logout", data={"csrf_token": self.csrf})

    def websocket(self) -> ClientConnection:
        token = self.http.cookies.get(SESSION_COOKIE) or ""
        url = f"ws://{self.stack.host}:{self.stack.web_port}/desk/ws"
        return connect(url, additional_headers={"Cookie": f"{SESSION_COOKIE}={token}"})

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def desks(stack: Settings) -> Iterator[Any]:
    opened: list[Desk] = []

    def open_desk(local_address: str | None = None) -> Desk:
        opened.append(Desk(stack, local_address))
        return opened[-1]

    yield open_desk
    for desk in opened:
        desk.close()


def closes_within(socket: ClientConnection, seconds: float) -> float | None:
    """Seconds until the server closed `socket` (frames before that are read and dropped)."""
    started = time.monotonic()
    deadline = started + seconds
    try:
        while time.monotonic() < deadline:
            try:
                socket.recv(timeout=max(0.05, deadline - time.monotonic()))
            except TimeoutError:
                break
    except ConnectionClosed:
        return time.monotonic() - started
    return None


def frames_within(socket: ClientConnection, seconds: float) -> list[str]:
    """Text frames received within `seconds` (until the socket closes)."""
    frames: list[str] = []
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            frame = socket.recv(timeout=max(0.05, deadline - time.monotonic()))
            frames.append(frame if isinstance(frame, str) else frame.decode("utf-8", "replace"))
    except (TimeoutError, ConnectionClosed):
        pass
    return frames


def websocket_refused(desk: Desk) -> bool:
    """The desk WebSocket is refused at the handshake or closed at once, with nothing sent."""
    try:
        socket = desk.websocket()
    except InvalidHandshake:
        return True
    with socket:
        try:
            socket.recv(timeout=5)
        except ConnectionClosed:
            return True
        except TimeoutError:
            return False
    return False


def handoff_for(stack: Settings) -> int:
    """A new queued handoff (a REST customer asked for a person); returns its id."""
    marker = f"耳机{uuid.uuid4().hex[:6]}"
    chat = Chat(stack.rasa_url, f"sec-desk-{uuid.uuid4().hex[:10]}")
    chat.say(f"我的{marker}左耳没声音")
    chat.say("转人工")
    return open_handoff_with(stack, marker).id


# ---------------------------------------------------------------- sessions
def test_desk_websocket_is_closed_within_seconds_of_logout(stack: Settings, desks: Any) -> None:
    username = ensure_account(stack, AgentRole.agent, "sec-logout")
    desk = desks().signed_in(username)
    with desk.websocket() as socket:
        assert closes_within(socket, 1) is None  # open while signed in
        assert desk.logout().status_code == 303
        took = closes_within(socket, CLOSE_WITHIN)
        assert took is not None, f"still open {CLOSE_WITHIN:.0f} s after logout"
    assert desk.get("/desk/api/me").status_code == 401


def test_password_change_ends_old_sessions(stack: Settings, desks: Any) -> None:
    username = ensure_account(stack, AgentRole.agent, "sec-password")
    old = desks().signed_in(username)
    current = desks().signed_in(username)
    new_password = "security-suite-new-password-2"
    with old.websocket() as socket:
        response = current.post(
            "/desk/api/me/password",
            {"current_password": PASSWORD, "new_password": new_password},
        )
        assert response.status_code == 200, response.text
        took = closes_within(socket, CLOSE_WITHIN)
        assert took is not None, "the old session's WebSocket stayed open"
    assert old.get("/desk/api/me").status_code == 401
    assert current.get("/desk/api/me").status_code == 200  # the session that changed it
    assert desks().login(username, PASSWORD).status_code == 401
    assert desks().login(username, new_password).status_code == 303


def test_password_reset_from_the_cli_ends_every_session(stack: Settings, desks: Any) -> None:
    username = ensure_account(stack, AgentRole.agent, "sec-reset")
    desk = desks().signed_in(username)
    kefu = stack.app_python.parent / "kefu"
    with desk.websocket() as socket:
        done = subprocess.run(
            [str(kefu), "agents", "password", username, "--password-stdin"],
            input="security-suite-reset-password-3\n",
            capture_output=True,
            text=True,
            cwd=PROJECT_ROOT,
            env={**os.environ, **stack.as_environment()},
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert closes_within(socket, CLOSE_WITHIN) is not None, "the WebSocket stayed open"
    assert desk.get("/desk/api/me").status_code == 401


# ---------------------------------------------------------------- roles
def test_editor_is_refused_conversations_and_the_websocket(stack: Settings, desks: Any) -> None:
    handoff_id = handoff_for(stack)
    editor = desks().signed_in(ensure_account(stack, AgentRole.editor, "sec-editor"))
    me = editor.get("/desk/api/me")
    assert me.status_code == 200 and me.json()["role"] == "editor"
    for path in (
        "/desk/api/handoffs",
        f"/desk/api/handoffs/{handoff_id}",
        f"/desk/api/handoffs/{handoff_id}/assist",
    ):
        response = editor.get(path)
        assert response.status_code == 403, (path, response.status_code, response.text[:200])
    for action, body in (
        ("claim", {}),
        ("notes", {"text": "editor note"}),
        ("messages", {"text": "editor reply"}),
    ):
        response = editor.post(f"/desk/api/handoffs/{handoff_id}/{action}", body)
        assert response.status_code == 403, (action, response.status_code, response.text[:200])
    assert websocket_refused(editor)


# ---------------------------------------------------------------- ownership
def test_agent_cannot_read_or_annotate_another_agents_handoff(stack: Settings, desks: Any) -> None:
    handoff_id = handoff_for(stack)
    owner = desks().signed_in(ensure_account(stack, AgentRole.agent, "sec-owner"))
    other = desks().signed_in(ensure_account(stack, AgentRole.agent, "sec-other"))
    assert owner.post(f"/desk/api/handoffs/{handoff_id}/claim").status_code == 200
    with other.websocket() as other_socket:
        closes_within(other_socket, 0.5)  # drop the greeting frames
        # the other agent's note on an active handoff that is not theirs
        intruder_note = f"intruder-note-{uuid.uuid4().hex[:6]}"
        response = other.post(f"/desk/api/handoffs/{handoff_id}/notes", {"text": intruder_note})
        assert response.status_code in (403, 404, 409), response.text
        assert other.get(f"/desk/api/handoffs/{handoff_id}").status_code in (403, 404)
        # what the owner writes does not reach the other agent's console either
        owner_note = f"owner-note-{uuid.uuid4().hex[:6]}"
        assert owner.post(f"/desk/api/handoffs/{handoff_id}/notes", {"text": owner_note}).is_success
        frames = frames_within(other_socket, 3)
        assert not [frame for frame in frames if owner_note in frame], frames
    texts = [m["text"] for m in owner.get(f"/desk/api/handoffs/{handoff_id}").json()["messages"]]
    assert owner_note in texts and intruder_note not in texts
    # once ended, the handoff stays the owner's
    assert owner.post(f"/desk/api/handoffs/{handoff_id}/resolve").status_code == 200
    response = other.get(f"/desk/api/handoffs/{handoff_id}")
    assert response.status_code in (403, 404), response.text[:300]
    assert owner_note not in response.text
    response = other.post(f"/desk/api/handoffs/{handoff_id}/notes", {"text": intruder_note})
    assert response.status_code in (403, 404, 409), response.text
    assert owner.get(f"/desk/api/handoffs/{handoff_id}").status_code == 200


# ---------------------------------------------------------------- login throttling
def test_spoofed_forwarded_for_neither_evades_the_lockout_nor_locks_others_out(
    stack: Settings, desks: Any
) -> None:
    victim = ensure_account(stack, AgentRole.agent, "sec-victim")
    attacker_address, victim_address = "127.0.0.3", "127.0.0.2"
    attacker = desks(attacker_address)
    statuses = []
    for attempt in range(stack.desk_login_max_failures + 3):
        spoofed = victim_address if attempt % 2 else f"198.51.100.{attempt + 1}"
        response = attacker.login(victim, "wrong-password", **{"X-Forwarded-For": spoofed})
        statuses.append(response.status_code)
    assert set(statuses) <= {401, 429}, statuses
    assert statuses[-1] == 429, f"rotating X-Forwarded-For evaded the lockout: {statuses}"
    # the victim, at the address the attacker claimed to be, still signs in
    response = desks(victim_address).login(victim, PASSWORD)
    assert response.status_code == 303, response.text[:300]
    # and so does anyone else from this machine's usual address
    assert desks().login(victim, PASSWORD).status_code == 303
