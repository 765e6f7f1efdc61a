"""Bounded request bodies for the whole web service, before routing, authentication and parsing.

An ASGI middleware (`BodyLimitMiddleware`), outermost of the app's own middleware:
- a `Content-Length` above the limit is answered 413 at once, from the headers alone: the
  body is never read;
- a body without a length (chunked) is counted while the app reads it; past the limit the
  app's reading stops and the client gets 413, whatever the app was about to answer;
- the limit depends on the declared media type: forms (`application/x-www-form-urlencoded`,
  `multipart/form-data`) `max_form_bytes`, everything else `max_json_bytes` (settings).

Routes may keep smaller limits of their own (`bot.web.deps.limit_body`, the session and login
readers); this one is the ceiling every route has.
"""

from __future__ import annotations

import json
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["FORM_MEDIA_TYPES", "BodyLimitMiddleware", "BodyTooLarge"]

logger = logging.getLogger(__name__)

FORM_MEDIA_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


class BodyTooLarge(Exception):
    """Raised from `receive` when the streamed body passes the limit."""


def _media_type(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return str(value.decode("latin-1")).split(";")[0].strip().lower()
    return ""


def _content_length(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return str(value.decode("latin-1").strip())
    return None


class BodyLimitMiddleware:
    """413 for HTTP request bodies above the limit of their media type (see the module)."""

    def __init__(self, app: ASGIApp, max_json_bytes: int, max_form_bytes: int) -> None:
        self.app = app
        self.max_json_bytes = max_json_bytes
        self.max_form_bytes = max_form_bytes

    def limit_for(self, media_type: str) -> int:
        """The largest body of `media_type` the service reads."""
        return self.max_form_bytes if media_type in FORM_MEDIA_TYPES else self.max_json_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answers 413 from the headers, or runs the app with its body counted."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(_media_type(scope))
        declared = _content_length(scope)
        if declared is not None:
            if not declared.isdigit():
                await _refuse(send, 400, "The Content-Length header is not a number.")
                return
            if int(declared) > limit:
                await _refuse(send, 413, _too_large(limit))
                return
        await self._counted(scope, receive, send, limit)

    async def _counted(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Runs the app with a counting `receive` and a `send` the 413 answer can replace."""
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:  # the app answered anyway (it swallowed BodyTooLarge): 413 instead
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _refuse(send, 413, _too_large(limit))
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception as error:
            if not _is_too_large(error):
                raise
            if started:
                logger.warning("body_too_large after the answer started; connection dropped")
                return
            started = True
            await _refuse(send, 413, _too_large(limit))


def _is_too_large(error: BaseException) -> bool:
    """`BodyTooLarge`, also inside an exception group.

    Starlette's `BaseHTTPMiddleware` reads the body in a task group, which wraps it.
    """
    if isinstance(error, BodyTooLarge):
        return True
    group: tuple[BaseException, ...] = getattr(error, "exceptions", ())
    return any(_is_too_large(inner) for inner in group)


def _too_large(limit: int) -> str:
    return f"The request body is larger than {limit} bytes."


async def _refuse(send: Send, status: int, detail: str) -> None:
    """A JSON error answer `{"detail": ...}` (FastAPI's shape) that closes the connection."""
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                (b"x-content-type-options", b"nosniff"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
