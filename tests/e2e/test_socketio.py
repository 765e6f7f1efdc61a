"""The web chat's socket.io channel: verified sessions, malformed events, a raw bad packet."""

from __future__ import annotations

import queue
import time
import uuid
from typing import Any

import httpx
import pytest
import socketio

from bot.core.settings import Settings
from tests.e2e.chat_client import web_chat_session

pytestmark = pytest.mark.e2e

SESSION_ERROR_EVENT = "session_error"  # connectors.socketio (the Rasa runtime) emits it


class SocketClient:
    """A python-socketio client recording replies, confirmations and refusals."""

    def __init__(self, stack: Settings) -> None:
        self.sio = socketio.Client(reconnection=False)
        self.replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self.confirmed: queue.Queue[Any] = queue.Queue()
        self.refused: queue.Queue[Any] = queue.Queue()
        self.sio.on("bot_uttered", self.replies.put)
        self.sio.on("session_confirm", self.confirmed.put)
        self.sio.on(SESSION_ERROR_EVENT, self.refused.put)
        self.sio.connect(stack.rasa_url, socketio_path="/socket.io", transports=["polling"])


@pytest.fixture
def web(stack: Settings) -> str:
    return f"http://{stack.host}:{stack.web_port}"


@pytest.fixture
def clients(stack: Settings):  # type: ignore[no-untyped-def]
    made: list[SocketClient] = []

    def make() -> SocketClient:
        made.append(SocketClient(stack))
        return made[-1]

    yield make
    for client in made:
        if client.sio.connected:
            client.sio.disconnect()


def test_session_and_bilingual_replies(clients, web: str) -> None:  # type: ignore[no-untyped-def]
    client = clients()
    session = web_chat_session(web)
    assert session["sender"].startswith("web:")
    client.sio.emit("session_request", {"session_id": session["token"]})
    confirmed = client.confirmed.get(timeout=10)
    assert confirmed == {"session_id": session["sender"], "sender": session["sender"]}
    client.sio.emit(
        "user_uttered", {"message": "你好", "session_id": session["token"], "customData": {}}
    )
    assert "您好" in client.replies.get(timeout=30)["text"]


@pytest.mark.parametrize(
    "request_data",
    [
        "not a dict",
        {},
        {"session_id": uuid.uuid4().hex},  # a client-chosen id, as before issue 18
        {"session_id": f"web:{uuid.uuid4().hex}"},
        {"session_id": f"v1.web:{uuid.uuid4().hex}.9999999999.{'0' * 64}"},  # forged
    ],
)
def test_no_valid_token_no_session(clients, request_data: Any) -> None:  # type: ignore[no-untyped-def]
    client = clients()
    client.sio.emit("session_request", request_data)
    assert client.refused.get(timeout=10)["error"] in {"missing_token", "invalid_token"}
    with pytest.raises(queue.Empty):
        client.confirmed.get(timeout=1)


def test_a_client_cannot_talk_as_or_listen_to_another_customer(  # type: ignore[no-untyped-def]
    clients, web: str, stack: Settings
) -> None:
    alice, mallory = clients(), clients()
    alice_session, mallory_session = web_chat_session(web), web_chat_session(web)
    alice.sio.emit("session_request", {"session_id": alice_session["token"]})
    mallory.sio.emit("session_request", {"session_id": mallory_session["token"]})
    alice.confirmed.get(timeout=10)
    mallory.confirmed.get(timeout=10)
    # Mallory names Alice's sender: the message is still Mallory's
    mallory.sio.emit("user_uttered", {"message": "hello", "session_id": alice_session["sender"]})
    assert mallory.replies.get(timeout=30)["text"]
    time.sleep(1)
    while not mallory.replies.empty():
        mallory.replies.get_nowait()
    alice.sio.emit("user_uttered", {"message": "你好", "session_id": alice_session["token"]})
    assert "您好" in alice.replies.get(timeout=30)["text"]
    with pytest.raises(queue.Empty):
        mallory.replies.get(timeout=2)  # Alice's answers never reach Mallory's socket
    tracker = httpx.get(
        f"{stack.rasa_url}/conversations/{alice_session['sender']}/tracker",
        params={"token": stack.rasa_token},
    ).json()
    said = [event.get("text") for event in tracker["events"] if event["event"] == "user"]
    assert said == ["你好"]  # Mallory's "hello" is in Mallory's conversation, not Alice's


def test_malformed_events_are_ignored_and_the_channel_keeps_working(  # type: ignore[no-untyped-def]
    clients, web: str
) -> None:
    client = clients()
    token = web_chat_session(web)["token"]
    for bad in ["text", [1, 2], {"message": 5, "session_id": token}]:
        client.sio.emit("user_uttered", bad)  # before any session: ignored too
    client.sio.emit("session_request", {"session_id": token})
    client.confirmed.get(timeout=10)
    for bad in ["text", [1, 2], {"message": 5, "session_id": token}]:
        client.sio.emit("user_uttered", bad)
    client.sio.emit(
        "user_uttered", {"message": "hello", "session_id": token, "customData": "{bad json"}
    )
    reply = client.replies.get(timeout=30)["text"]
    assert "Hi" in reply or "Hello" in reply
    with pytest.raises(queue.Empty):
        client.replies.get(timeout=2)  # nothing answered the malformed events


def test_a_garbage_polling_packet_is_a_client_error(stack: Settings) -> None:
    handshake = httpx.get(
        f"{stack.rasa_url}/socket.io/", params={"EIO": "4", "transport": "polling"}
    )
    assert handshake.status_code == 200
    response = httpx.post(
        f"{stack.rasa_url}/socket.io/",
        params={"EIO": "4", "transport": "polling", "sid": "nonexistent"},
        content=b"\xff\xfe garbage",
    )
    assert 400 <= response.status_code < 500
