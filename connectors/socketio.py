"""The web chat's socket.io channel: Rasa's protocol, verified sessions, malformed events ignored.

A socket gets a session only with a valid customer session token (issued by the web service's
`POST /chat/session`, verified by `kefu_shared.customer_session`): the token is the widget's
`session_id` in `session_request` (or `customData.token`). The socket then joins the room of
the token's sender alone, and every `user_uttered` it sends is the token's sender's: a client
cannot name another sender or join another conversation's room.

With `redis_url` set (credentials.yml: `KEFU_SOCKETIO_REDIS_URL`), every Rasa instance's
socket.io server shares emits through Redis (`connectors.socketio_redis`, JSON only), so a
reply sent by one instance reaches a customer whose socket is connected to another.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketBlueprint, SocketIOInput, SocketIOOutput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

from connectors.messages import (
    MAX_METADATA_BYTES,
    MetadataTooLarge,
    allowed_metadata,
    announcing_truncation,
    prepare_text,
)
from kefu_shared import customer_session

logger = logging.getLogger(__name__)

SESSION_ERROR_EVENT = "session_error"
"""Emitted (then the socket is disconnected) when a session request carries no valid token."""
SESSION_KEY = "kefu_session"


def _metadata(data: dict[str, Any], key: str | None) -> dict[str, Any]:
    """The client's whitelisted metadata (a JSON string is accepted); anything else is dropped."""
    metadata = data.get(key) if key is not None else None
    if isinstance(metadata, str):
        if len(metadata) > MAX_METADATA_BYTES:
            return {}
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return {}
    if not isinstance(metadata, dict):
        return {}
    try:
        return allowed_metadata(metadata)
    except MetadataTooLarge:
        logger.warning("Dropped oversized socket.io metadata.")
        return {}


def _requested_token(data: Any) -> Any:
    """The token of a `session_request`: its `session_id`, else `customData.token`."""
    if not isinstance(data, dict):
        return None
    token = data.get("session_id")
    custom = data.get("customData")
    if not isinstance(token, str) and isinstance(custom, dict):
        token = custom.get("token")
    return token


class KefuSocketIOInput(SocketIOInput):
    """`SocketIOInput` with verified customer sessions; malformed events are ignored.

    It also joins the session room correctly with any python-socketio version
    (Rasa 3.6 calls `enter_room` without awaiting it).
    """

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> SocketIOInput:
        """Rasa's options plus `session_secret` (the customer session signing key)."""
        credentials = credentials or {}
        channel = super().from_credentials(credentials)
        assert isinstance(channel, KefuSocketIOInput)  # cls is this class
        channel.session_secret = str(credentials.get("session_secret") or "")
        if not channel.session_secret:
            logger.error("socketio_no_session_secret: every web chat session is refused.")
        channel.redis_url = str(credentials.get("redis_url") or "").strip()
        return channel

    session_secret: str = ""
    redis_url: str = ""
    """Redis shared by the instances' socket.io servers; empty: this process alone."""

    def verified_sender(self, token: Any, now: float | None = None) -> str | None:
        """The sender of a valid, unexpired session token, else None."""
        return customer_session.verify(
            token, self.session_secret, time.time() if now is None else now
        )

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Builds the socket.io server and its `/socket.io` blueprint."""
        on_new_message = announcing_truncation(on_new_message)
        manager = None
        if self.redis_url:
            from connectors.socketio_redis import JsonRedisManager

            manager = JsonRedisManager(self.redis_url)
        sio = AsyncServer(async_mode="sanic", cors_allowed_origins=[], client_manager=manager)
        # Rasa types the path Optional but passes it on as a str, as its own channel does.
        socketio_webhook = SocketBlueprint(
            sio,
            self.socketio_path,  # type: ignore[arg-type]
            "socketio_webhook",
            __name__,
        )
        self.sio = sio
        namespace = self.namespace

        @socketio_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        if manager is not None:
            shared = manager

            @socketio_webhook.listener("after_server_start")
            async def listen_to_other_instances(*_: Any) -> None:
                shared.start_listening()
                try:
                    await asyncio.wait_for(shared.subscribed.wait(), 5)
                except asyncio.TimeoutError:
                    logger.warning(
                        "socketio_redis_not_listening: replies from other instances wait"
                    )

        async def refuse(sid: str, reason: str) -> None:
            logger.info("socketio_session_refused reason=%s", reason)
            await sio.emit(
                SESSION_ERROR_EVENT,
                {"error": reason, "message": "A valid chat session token is required."},
                room=sid,
                namespace=namespace,
            )
            await sio.disconnect(sid, namespace=namespace)

        @sio.on("session_request", namespace=namespace)
        async def session_request(sid: str, data: Any = None) -> None:
            token = _requested_token(data)
            sender = self.verified_sender(token)
            if sender is None:
                await refuse(sid, "missing_token" if token is None else "invalid_token")
                return
            session = await sio.get_session(sid, namespace=namespace)
            previous = session.get(SESSION_KEY)
            if previous is not None and previous["sender"] != sender:
                await refuse(sid, "sender_changed")  # one socket, one customer
                return
            session[SESSION_KEY] = {"sender": sender, "expires": customer_session.expiry(token)}
            await sio.save_session(sid, session, namespace=namespace)
            entered = sio.enter_room(sid, sender, namespace=namespace)
            if inspect.isawaitable(entered):
                await entered
            # The confirmed session id is the sender: rasa-webchat greets a session id it did
            # not send (a new conversation); the chat page then gives it the token again.
            await sio.emit(
                "session_confirm",
                {"session_id": sender, "sender": sender},
                room=sid,
                namespace=namespace,
            )

        async def session_sender(sid: str, data: dict[str, Any]) -> str | None:
            """The socket's verified sender; an expired session is renewed by a newer token."""
            session = await sio.get_session(sid, namespace=namespace)
            verified = session.get(SESSION_KEY)
            if verified is None:
                return None
            if verified["expires"] <= time.time():
                token = data.get("session_id")
                if not isinstance(token, str) or self.verified_sender(token) != verified["sender"]:
                    await refuse(sid, "expired_token")
                    return None
                verified["expires"] = customer_session.expiry(token)
                await sio.save_session(sid, session, namespace=namespace)
            return str(verified["sender"])

        @sio.on(self.user_message_evt, namespace=namespace)
        async def handle_message(sid: str, data: Any = None) -> None:
            if not isinstance(data, dict) or not isinstance(data.get("message", ""), str):
                logger.warning("Ignored a malformed socket.io message from %s.", sid)
                return
            sender_id = await session_sender(sid, data)
            if sender_id is None:
                logger.warning("Ignored a socket.io message from a socket without a session.")
                return
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
