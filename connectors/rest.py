"""Rasa's REST channel with request validation: malformed requests get a 400, never a 500."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint
from sanic.exceptions import InvalidUsage as BadRequest
from sanic.request import Request

from connectors.messages import announcing_truncation, is_valid_sender_id, prepare_text


def _body(request: Request) -> dict[str, Any]:
    """The JSON object of the request body (400 for anything else)."""
    try:
        body = request.json
    except Exception as error:  # sanic raises its own error types for bad JSON
        raise BadRequest("The body must be a JSON object (UTF-8).") from error
    if not isinstance(body, dict):
        raise BadRequest('The body must be a JSON object: {"sender": ..., "message": ...}.')
    return body


class KefuRestInput(RestInput):
    """`POST /webhooks/rest/webhook` with `{"sender": str, "message": str, "metadata"?: {}}`."""

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[None]]) -> Blueprint:
        """Rasa's REST routes; cut messages are announced before the bot's answer."""
        return super().blueprint(announcing_truncation(on_new_message))

    async def _extract_sender(self, req: Request) -> str | None:
        sender = _body(req).get("sender")
        if not is_valid_sender_id(sender):
            raise BadRequest("'sender' must be 1-128 characters of letters, digits or _.:@-")
        return str(sender)

    def _extract_message(self, req: Request) -> str | None:
        message = _body(req).get("message")
        if not isinstance(message, str):
            raise BadRequest("'message' must be a string.")
        return prepare_text(message).text

    def _extract_input_channel(self, req: Request) -> str:
        return self.name()

    def get_metadata(self, request: Request) -> dict[str, Any] | None:
        """Client metadata (a JSON object) plus Kefu's truncation marker."""
        body = _body(request)
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise BadRequest("'metadata' must be a JSON object.")
        return prepare_text(str(body.get("message", ""))).metadata(metadata)
