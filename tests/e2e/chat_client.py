"""A tiny REST client for the live bot."""

from __future__ import annotations

import queue
import threading
import time
import uuid
from typing import Any

import httpx
import socketio

from bot.core.settings import Settings


class Chat:
    """One conversation over Rasa's REST channel."""

    def __init__(self, rasa_url: str, sender: str | None = None) -> None:
        self.url = f"{rasa_url}/webhooks/rest/webhook"
        self.sender = sender or f"test-{uuid.uuid4().hex[:12]}"

    def send(self, text: str) -> list[dict[str, Any]]:
        """Sends `text` and returns the bot's messages."""
        response = httpx.post(self.url, json={"sender": self.sender, "message": text}, timeout=30)
        response.raise_for_status()
        return list(response.json())

    def say(self, text: str) -> str:
        """Sends `text` and returns the bot's texts joined by newlines."""
        return "\n".join(m.get("text", "") for m in self.send(text))

    def say_all(self, text: str) -> str:
        """Sends `text` and returns the bot's texts and button titles joined by newlines.

        A knowledge-base question is answered, or (when the bot is not sure enough) offered
        as buttons; either way the topic shows up here.
        """
        messages = self.send(text)
        parts = [m.get("text", "") for m in messages]
        parts += [b.get("title", "") for m in messages for b in m.get("buttons") or []]
        return "\n".join(parts)


def web_chat_session(web_url: str, **body: Any) -> dict[str, Any]:
    """A web chat session from the web service, as the chat page gets one.

    `{"token", "sender", "expires_at"}`; the token is the widget's socket.io `session_id`.
    """
    response = httpx.post(f"{web_url}/chat/session", json=body, timeout=10)
    response.raise_for_status()
    return dict(response.json())


class Customer:
    """A web-chat customer over the real socket.io channel."""

    def __init__(self, stack: Settings) -> None:
        session = web_chat_session(f"http://{stack.host}:{stack.web_port}")
        self.session_id, self.token = session["sender"], session["token"]
        self.replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self.sio = socketio.Client(reconnection=False)
        confirmed: queue.Queue[dict[str, str]] = queue.Queue()
        self.sio.on("bot_uttered", self.replies.put)
        self.sio.on("session_confirm", confirmed.put)
        self.sio.connect(stack.rasa_url, socketio_path="/socket.io", transports=["polling"])
        self.sio.emit("session_request", {"session_id": self.token})
        assert confirmed.get(timeout=10)["sender"] == self.session_id

    def close(self) -> None:
        """Disconnects in the background (a polling disconnect waits for the next ping)."""
        threading.Thread(target=self.sio.disconnect, daemon=True).start()

    def say(self, text: str) -> None:
        self.sio.emit("user_uttered", {"message": text, "session_id": self.token})

    def hear(self, containing: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            reply = self.replies.get(timeout=max(0.1, deadline - time.monotonic()))
            buttons = reply.get("quick_replies") or reply.get("buttons") or []
            said = [reply.get("text") or "", *(b.get("title") or "" for b in buttons)]
            if any(containing in part for part in said):  # an answer or the buttons offered
                return reply
