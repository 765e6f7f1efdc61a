"""The customer web chat page (rasa-webchat widget on Rasa's socket.io channel).

`POST /chat/session` issues the customer's session token; the page hands it to the widget as
its session id and Rasa's socket.io channel verifies it (`kefu_shared.customer_session`).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse

from bot.core.settings import Settings
from bot.customers import CustomerDirectory
from bot.web.deps import app_engine, app_settings
from bot.web.pages import templates
from kefu_shared import customer_session

router = APIRouter(tags=["chat"])

MAX_SESSION_BODY_BYTES = 2048
"""`POST /chat/session` takes at most a token or a user id and its hash."""


def widget_config(settings: Settings) -> dict[str, object]:
    """The widget's options: where Rasa's socket.io channel is, texts, storage."""
    return {
        "socketUrl": settings.rasa_public_url,
        "socketPath": "/socket.io/",
        "title": "Kefu 客服",
        "subtitle": "智能客服 · AI assistant",
        "inputTextFieldHint": "请输入您的问题 / Type your question…",
        "embedded": True,
        "initPayload": "/greet",  # an embedded widget sends this on open; greet the customer
        "showMessageDate": True,
        "customData": {"channel": "web"},
        "params": {"storage": "session"},
    }


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def chat_page(request: Request) -> HTMLResponse:
    """The shop's help page with the chat widget embedded."""
    settings = app_settings(request)
    response = templates.TemplateResponse(
        request,
        "chat.html",
        {"widget_config": json.dumps(widget_config(settings), ensure_ascii=False)},
    )
    rasa = settings.rasa_public_url
    websocket = rasa.replace("http://", "ws://").replace("https://", "wss://")
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        f"img-src 'self' data:; connect-src 'self' {rasa} {websocket}; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )
    return response


async def _session_body(request: Request) -> dict[str, Any]:
    """The optional JSON object of `POST /chat/session` (413 when too large, 400 when bad)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_SESSION_BODY_BYTES):
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"The session request is larger than {MAX_SESSION_BODY_BYTES} bytes.",
        )
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_SESSION_BODY_BYTES:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE,
                f"The session request is larger than {MAX_SESSION_BODY_BYTES} bytes.",
            )
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, "The body must be a JSON object (UTF-8)."
        ) from error
    if not isinstance(body, dict):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            'The body must be a JSON object: {}, {"token": ...} or {"user_id": ..., '
            '"user_hash": ...}.',
        )
    return body


def _requested_sender(body: dict[str, Any], settings: Settings, now: float) -> str:
    """The sender the new token carries: shop user, renewed session or a fresh web id."""
    if "user_id" in body or "user_hash" in body:
        user_id, user_hash = body.get("user_id"), body.get("user_hash")
        if not customer_session.is_shop_user_id(user_id) or not isinstance(user_hash, str):
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST,
                "'user_id' must be 1-64 letters, digits or _@- and 'user_hash' its hex "
                "HMAC-SHA256 (both are required).",
            )
        if not settings.shop_identity_secret:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, "Shop identities are not enabled on this service."
            )
        sender = customer_session.shop_sender(user_id, user_hash, settings.shop_identity_secret)
        if sender is None:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                "'user_hash' does not match 'user_id': not signed by the shop.",
            )
        return sender
    if "token" in body:
        token = body["token"]
        if not isinstance(token, str) or len(token) > customer_session.MAX_TOKEN_CHARS:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "'token' must be a session token.")
        sender = customer_session.verify(token, settings.customer_session_secret, now)
        if sender is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "The session token is invalid or expired: ask for a new session without it.",
            )
        return sender
    return customer_session.new_web_sender()


def _earlier_web_sender(body: dict[str, Any], settings: Settings, now: float) -> str | None:
    """The anonymous `web:` sender of a still-valid token sent along with a shop login."""
    token = body.get("token")
    if not isinstance(token, str) or len(token) > customer_session.MAX_TOKEN_CHARS:
        return None
    sender = customer_session.verify(token, settings.customer_session_secret, now)
    return sender if sender and sender.startswith("web:") else None


@router.post("/chat/session")
async def chat_session(request: Request) -> JSONResponse:
    """A web chat session token: `{"token", "sender", "expires_at"}`.

    Body (optional JSON): nothing or `{}` for a new anonymous `web:` session; `{"token": ...}`
    to renew a still-valid session (same sender); `{"user_id": ..., "user_hash": ...}` for a
    shop's logged-in user (`user_hash` = hex HMAC-SHA256(shop identity secret, user_id)). A
    shop login that also sends the browser's still-valid anonymous token links that earlier
    session to the shop user's customer record: both are proven (the session signature and the
    shop's), so what the customer said before signing in follows them.
    """
    settings = app_settings(request)
    body = await _session_body(request)
    now = time.time()
    sender = _requested_sender(body, settings, now)
    earlier = _earlier_web_sender(body, settings, now) if sender.startswith("shop:") else None
    if earlier is not None:
        directory = CustomerDirectory(app_engine(request))
        await asyncio.to_thread(directory.link_shop_login, earlier, sender)
    token = customer_session.issue(
        sender, settings.customer_session_secret, settings.customer_session_hours * 3600, now
    )
    return JSONResponse(
        {"token": token, "sender": sender, "expires_at": customer_session.expiry(token)},
        headers={"Cache-Control": "no-store"},
    )
