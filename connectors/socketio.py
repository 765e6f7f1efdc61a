"""The web chat's socket.io channel: Rasa's protocol, hardened against malformed events."""

from __future__ import annotations

import inspect
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketBlueprint, SocketIOInput, SocketIOOutput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

from connectors.messages import announcing_truncation, is_valid_sender_id, prepare_text

logger = logging.getLogger(__name__)


def _metadata(data: dict[str, Any], key: str | None) -> dict[str, Any]:
    """The client's metadata object (a JSON string is accepted); anything else is dropped."""
    metadata = data.get(key) if key is not None else None
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return {}
    return metadata if isinstance(metadata, dict) else {}


class KefuSocketIOInput(SocketIOInput):
    """`SocketIOInput` that ignores malformed events instead of raising in the handler.

    It also joins the session room correctly with any python-socketio version
    (Rasa 3.6 calls `enter_room` without awaiting it).
    """

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Builds the socket.io server and its `/socket.io` blueprint."""
        on_new_message = announcing_truncation(on_new_message)
        sio = AsyncServer(async_mode="sanic", cors_allowed_origins=[])
        # Rasa types the path Optional but passes it on as a str, as its own channel does.
        socketio_webhook = SocketBlueprint(
            sio,
            self.socketio_path,  # type: ignore[arg-type]
            "socketio_webhook",
            __name__,
        )
        self.sio = sio

        @socketio_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @sio.on("session_request", namespace=self.namespace)
        async def session_request(sid: str, data: Any) -> None:
            requested = data.get("session_id") if isinstance(data, dict) else None
            session_id = requested if is_valid_sender_id(requested) else uuid.uuid4().hex
            if self.session_persistence:
                entered = sio.enter_room(sid, session_id, namespace=self.namespace)
                if inspect.isawaitable(entered):
                    await entered
            await sio.emit("session_confirm", session_id, room=sid, namespace=self.namespace)

        @sio.on(self.user_message_evt, namespace=self.namespace)
        async def handle_message(sid: str, data: Any) -> None:
            if not isinstance(data, dict) or not isinstance(data.get("message", ""), str):
                logger.warning("Ignored a malformed socket.io message from %s.", sid)
                return
            if self.session_persistence:
                sender_id = data.get("session_id")
                if not is_valid_sender_id(sender_id):
                    logger.warning("Ignored a message without a valid session_id.")
                    return
            else:
                sender_id = sid
            prepared = prepare_text(data.get("message", ""))
            await on_new_message(
                UserMessage(
                    prepared.text,
                    SocketIOOutput(sio, self.bot_message_evt),
                    sender_id,
                    input_channel=self.name(),
                    metadata=prepared.metadata(_metadata(data, self.metadata_key)),
                )
            )

        return socketio_webhook
