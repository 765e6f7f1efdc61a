"""The web chat (socket.io): a socket speaks only as the customer its session token names.

Findings: the client chose its own `session_id`, which was also the Rasa sender and the
socket.io room, so anyone who learned a customer's id could read that customer's
conversation (order details, agents' replies) and write into it.

A session token is `v1.<sender>.<expiry>.<hex HMAC-SHA256(secret, "v1.<sender>.<expiry>")>`,
issued by the web service (`POST /chat/session`); Rasa's channel refuses anything else.
"""

from __future__ import annotations

import hashlib
import hmac
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import socketio

from bot.core.settings import Settings

pytestmark = pytest.mark.e2e

QUIET = 3.0
"""Seconds to wait for something that must not come."""


def make_token(sender: str, secret: str, expiry: int) -> str:
    payload = f"v1.{sender}.{expiry}"
    mac = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return f"{payload}.{mac}"


def new_session(stack: Settings) -> dict[str, Any]:
    response = httpx.post(f"http://{stack.host}:{stack.web_port}/chat/session", timeout=10)
    assert response.status_code == 200, response.text
    session = response.json()
    assert session["sender"].startswith("web:") and session["token"], session
    return dict(session)


class Socket:
    """A socket.io client of the web chat channel, recording what the server sends."""

    def __init__(self, stack: Settings) -> None:
        self.sio = socketio.Client(reconnection=False)
        self.replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self.confirmed: queue.Queue[Any] = queue.Queue()
        self.errors: queue.Queue[Any] = queue.Queue()
        self.disconnected = threading.Event()
        self.answered = threading.Event()
        """Set by the server's answer to a session request: confirm, error or disconnect."""
        self.sio.on("bot_uttered", self.replies.put)
        self.sio.on("session_confirm", lambda data: self._answer(self.confirmed, data))
        self.sio.on("session_error", lambda data: self._answer(self.errors, data))
        self.sio.on("disconnect", lambda *_: (self.disconnected.set(), self.answered.set()))
        self.sio.connect(stack.rasa_url, socketio_path="/socket.io", transports=["polling"])
        self.session_id: Any = None

    def _answer(self, into: queue.Queue[Any], data: Any) -> None:
        into.put(data)
        self.answered.set()

    def request(self, session_id: Any, timeout: float = QUIET) -> Any:
        """Sends `session_request`; the confirmation, or None when refused (or unanswered)."""
        self.answered.clear()
        self.sio.emit("session_request", {"session_id": session_id})
        self.answered.wait(timeout)
        try:
            confirmed = self.confirmed.get(timeout=0.2)
        except queue.Empty:
            return None
        self.session_id = confirmed.get("session_id") if isinstance(confirmed, dict) else confirmed
        return confirmed

    def say(self, text: str, session_id: Any = None, **extra: Any) -> None:
        if self.disconnected.is_set():
            return  # the server has closed this socket: nothing can be sent
        sid = self.session_id if session_id is None else session_id
        self.sio.emit("user_uttered", {"message": text, "session_id": sid, **extra})

    def hear(self, timeout: float = 30) -> dict[str, Any]:
        return self.replies.get(timeout=timeout)

    def hears_nothing(self, timeout: float = QUIET) -> bool:
        try:
            self.replies.get(timeout=timeout)
        except queue.Empty:
            return True
        return False

    def close(self) -> None:
        # abort: do not wait for the long-polling request in flight (up to 25 s)
        self.sio.eio.disconnect(abort=True)


@pytest.fixture
def sockets(stack: Settings) -> Iterator[Any]:
    opened: list[Socket] = []

    def open_socket() -> Socket:
        opened.append(Socket(stack))
        return opened[-1]

    yield open_socket
    for sock in opened:
        sock.close()


def stored_anywhere(stack: Settings, marker: str) -> list[str]:
    """Senders of tracker-store events that contain `marker`."""
    with sqlite3.connect(stack.tracker_store_url.removeprefix("sqlite:///")) as db:
        rows = db.execute(
            "SELECT DISTINCT sender_id FROM events WHERE data LIKE ?", (f"%{marker}%",)
        )
        return [str(row[0]) for row in rows]


def refused(sock: Socket, confirmed: Any) -> bool:
    """No session was confirmed, and the server said so or closed the socket."""
    if confirmed is not None:
        return False
    sock.disconnected.wait(QUIET)
    return sock.disconnected.is_set() or not sock.errors.empty()


def victim_in_conversation(stack: Settings, sockets: Any) -> tuple[dict[str, Any], Socket]:
    session = new_session(stack)
    victim = sockets()
    assert victim.request(session["token"], timeout=10) is not None, "a valid token is refused"
    victim.say("你好")
    assert "您好" in victim.hear()["text"]
    return session, victim


def test_session_with_another_customers_id_is_refused(stack: Settings, sockets: Any) -> None:
    session, victim = victim_in_conversation(stack, sockets)
    sender = session["sender"]
    for claimed in (sender, sender.removeprefix("web:")):
        attacker = sockets()
        confirmed = attacker.request(claimed)
        assert refused(attacker, confirmed), (claimed, confirmed)
        marker = f"intruder{uuid.uuid4().hex[:8]}"
        attacker.say(f"我是{marker}", session_id=claimed)
        assert attacker.hears_nothing()
        assert stored_anywhere(stack, marker) == []
    assert victim.hears_nothing(1)


def test_forged_token_is_refused(stack: Settings, sockets: Any) -> None:
    session, _ = victim_in_conversation(stack, sockets)
    sender = session["sender"]
    expiry = int(time.time()) + 3600
    _, _, _, real_mac = session["token"].split(".")
    mine = new_session(stack)
    forgeries = {
        "wrong key": make_token(sender, "not-the-secret-" + "x" * 20, expiry),
        "another sender, same signature": f"v1.{sender}.{mine['token'].split('.')[2]}."
        + mine["token"].split(".")[3],
        "longer expiry, same signature": f"v1.{sender}.{expiry + 10**6}.{real_mac}",
        "no signature": f"v1.{sender}.{expiry}.",
        "unsigned version": f"v0.{sender}.{expiry}.{real_mac}",
    }
    for name, forged in forgeries.items():
        attacker = sockets()
        confirmed = attacker.request(forged)
        assert refused(attacker, confirmed), (name, confirmed)
        marker = f"forger{uuid.uuid4().hex[:8]}"
        attacker.say(marker, session_id=forged)
        assert attacker.hears_nothing(1), name
        assert stored_anywhere(stack, marker) == [], name


def test_expired_token_is_refused(stack: Settings, sockets: Any) -> None:
    sender = f"web:{uuid.uuid4().hex}"
    secret = stack.customer_session_secret
    # control: the same construction with a future expiry is accepted (the format is right)
    control = sockets()
    assert control.request(make_token(sender, secret, int(time.time()) + 600), 10) is not None
    control.close()
    attacker = sockets()
    expired = make_token(sender, secret, int(time.time()) - 60)
    confirmed = attacker.request(expired)
    assert refused(attacker, confirmed), confirmed
    marker = f"expired{uuid.uuid4().hex[:8]}"
    attacker.say(marker, session_id=expired)
    assert attacker.hears_nothing()
    assert stored_anywhere(stack, marker) == []
    # the web service does not renew an expired token either
    renewal = httpx.post(
        f"http://{stack.host}:{stack.web_port}/chat/session", json={"token": expired}, timeout=10
    )
    assert renewal.status_code in (400, 401, 403), renewal.text


def test_joining_another_customers_room_is_refused(stack: Settings, sockets: Any) -> None:
    session, victim = victim_in_conversation(stack, sockets)
    sender = session["sender"]
    attacker = sockets()
    assert attacker.request(new_session(stack)["token"], 10) is not None
    # with a session of its own, the attacker asks for the victim's room and speaks as the victim
    attacker.sio.emit("session_request", {"session_id": sender})
    attacker.sio.emit("session_request", {"session_id": None, "customData": {"token": sender}})
    marker = f"roomjoin{uuid.uuid4().hex[:8]}"
    attacker.say(f"我的订单 {marker}", session_id=sender, customData={"session_id": sender})
    time.sleep(2)
    assert sender not in stored_anywhere(stack, marker)
    # an agent's message to the victim (Rasa's API, as the desk sends it) reaches only the victim
    text = f"客服回复 {uuid.uuid4().hex[:8]}"
    response = httpx.post(
        f"{stack.rasa_url}/conversations/{sender}/tracker/events",
        params={
            "token": stack.rasa_token,
            "output_channel": "latest",
            "execute_side_effects": "true",
        },
        json=[{"event": "bot", "text": text}],
        timeout=30,
    )
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and victim.hear(10)["text"] != text:
        pass
    while True:
        try:
            heard = attacker.replies.get(timeout=QUIET)
        except queue.Empty:
            break
        assert heard.get("text") != text, "the attacker received the victim's message"


def test_shop_identity_without_the_shops_signature_is_refused(stack: Settings) -> None:
    # a `shop:` sender needs user_hash = HMAC-SHA256(shop secret, user id), made by the shop
    url = f"http://{stack.host}:{stack.web_port}/chat/session"
    for body in (
        {"user_id": "alice", "user_hash": "0" * 64},
        {"user_id": "alice", "user_hash": hmac.new(b"", b"alice", hashlib.sha256).hexdigest()},
        {"user_id": "alice"},
    ):
        response = httpx.post(url, json=body, timeout=10)
        assert response.status_code in (400, 401, 403), (body, response.text)
        assert "token" not in response.json(), response.text  # {"detail": ...} only
