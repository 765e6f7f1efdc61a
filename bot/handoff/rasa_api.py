"""Rasa's authenticated HTTP API, as the desk uses it during a handoff.

Agent replies are appended as `BotUttered` events with `output_channel=latest` and
`execute_side_effects=true`: Rasa delivers them on the customer's own channel and the
tracker keeps the whole conversation. Ending a handoff appends `ConversationResumed`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from bot.core.settings import Settings


class RasaApiError(RuntimeError):
    """Rasa refused or did not answer; the message says which."""


def bot_event(
    text: str, metadata: dict[str, Any], buttons: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    """A `BotUttered` event; `metadata["kefu"]` marks it as the desk's."""
    event: dict[str, Any] = {"event": "bot", "text": text, "metadata": metadata}
    if buttons:
        event["data"] = {"buttons": buttons}
    return event


def slot_event(name: str, value: Any) -> dict[str, Any]:
    """A `SlotSet` event."""
    return {"event": "slot", "name": name, "value": value}


RESUME_EVENT: dict[str, Any] = {"event": "resume"}
LISTEN_EVENT: dict[str, Any] = {"event": "action", "name": "action_listen"}
"""Ends what the desk appends when the bot resumes: Rasa's rules expect a customer message
to follow `action_listen`, not the `action_handoff` that paused the conversation."""


class RasaClient:
    """Appends events to conversations through Rasa's HTTP API (one pooled HTTP client)."""

    def __init__(self, base_url: str, token: str, timeout: float = 10.0) -> None:
        self._token = token
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout)

    @classmethod
    def from_settings(cls, settings: Settings) -> RasaClient:
        """The client of the Rasa server `settings` name."""
        return cls(settings.rasa_url, settings.rasa_token)

    async def append(self, conversation_id: str, events: list[dict[str, Any]]) -> None:
        """Appends `events` and delivers their messages on the customer's latest channel."""
        # ':' and '@' stay as they are: Rasa's Sanic does not decode %3A in the path
        path = f"/conversations/{quote(conversation_id, safe=':@')}/tracker/events"
        params = {
            "token": self._token,
            "output_channel": "latest",
            "execute_side_effects": "true",
        }
        try:
            response = await self._client.post(path, params=params, json=events)
        except httpx.HTTPError as error:
            raise RasaApiError(f"Rasa did not answer: {error}") from error
        if response.status_code >= 400:
            raise RasaApiError(
                f"Rasa refused the events ({response.status_code}): {response.text[:200]}"
            )

    async def tracker(self, conversation_id: str) -> dict[str, Any]:
        """The conversation's tracker with all its events (`include_events=ALL`).

        Raises `RasaApiError` when Rasa refuses or does not answer.
        """
        path = f"/conversations/{quote(conversation_id, safe=':@')}/tracker"
        params = {"token": self._token, "include_events": "ALL"}
        try:
            response = await self._client.get(path, params=params)
        except httpx.HTTPError as error:
            raise RasaApiError(f"Rasa did not answer: {error}") from error
        if response.status_code >= 400:
            raise RasaApiError(
                f"Rasa refused the tracker request ({response.status_code}): {response.text[:200]}"
            )
        try:
            body = response.json()
        except ValueError as error:
            raise RasaApiError(f"Rasa sent a tracker that is not JSON: {error}") from error
        if not isinstance(body, dict):
            raise RasaApiError("Rasa sent a tracker that is not a JSON object.")
        return body

    async def close(self) -> None:
        """Closes the HTTP connections."""
        await self._client.aclose()
