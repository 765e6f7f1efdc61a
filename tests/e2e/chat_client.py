"""A tiny REST client for the live bot."""

from __future__ import annotations

import uuid
from typing import Any

import httpx


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
