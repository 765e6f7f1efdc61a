"""The customer web chat page (rasa-webchat widget on Rasa's socket.io channel)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from bot.core.settings import Settings
from bot.web.deps import app_settings
from bot.web.pages import templates

router = APIRouter(tags=["chat"])


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
