"""The action server (`/webhook`): only Rasa, with the action token, in bounded plain JSON.

Findings: anyone who could reach the action server could run any action with a tracker of
their making (another customer's order, slots set at will); a deflate body was inflated
without limit (a zip bomb); any body size and content type were parsed; an unknown action
name was logged through masking regexes that backtracked on long Chinese text.
"""

from __future__ import annotations

import json
import time
import uuid
import zlib
from typing import Any

import httpx
import pytest

from bot.core.settings import Settings
from tests.security.raw_http import raw_request

pytestmark = pytest.mark.e2e

VICTIM_ORDER = "KF202611200001"
VICTIM_DETAILS = ("SF1400007919", "13800000001", "899.00", "AuraSound", "顺丰")
"""The demo order's tracking number, phone, amount, product and carrier."""


def webhook(stack: Settings) -> str:
    return f"http://{stack.host}:{stack.actions_port}/webhook"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def action_call(name: str, sender: str = "web:" + "0" * 32, **slots: Any) -> dict[str, Any]:
    """What Rasa posts to the action server, with a tracker of the caller's making."""
    latest = {
        "text": VICTIM_ORDER,
        "intent": {"name": "order_status", "confidence": 1.0},
        "entities": [],
    }
    return {
        "next_action": name,
        "sender_id": sender,
        "version": "3.6.21",
        "domain": {},
        "tracker": {
            "sender_id": sender,
            "slots": {"language": "zh", **slots},
            "latest_message": latest,
            "latest_event_time": time.time(),
            "followup_action": None,
            "paused": False,
            "events": [{"event": "user", "text": VICTIM_ORDER, "parse_data": latest}],
            "latest_input_channel": "socketio",
            "active_loop": {},
            "latest_action": {"action_name": "action_listen"},
            "latest_action_name": "action_listen",
        },
    }


def test_webhook_without_token_is_refused(stack: Settings) -> None:
    response = httpx.post(webhook(stack), json=action_call("action_session_start"), timeout=10)
    assert response.status_code in (401, 403), response.text
    assert httpx.get(webhook(stack).replace("/webhook", "/health")).status_code == 200


def test_webhook_with_forged_tracker_is_refused(stack: Settings) -> None:
    forged = action_call("action_order_status", order_number=VICTIM_ORDER)
    for headers in ({}, bearer("forged-token"), bearer(stack.action_token + "x")):
        response = httpx.post(webhook(stack), json=forged, headers=headers, timeout=10)
        assert response.status_code in (401, 403), (headers, response.text)
        assert not [fact for fact in VICTIM_DETAILS if fact in response.text], response.text


def test_webhook_refuses_text_plain_body(stack: Settings) -> None:
    body = json.dumps(action_call("action_session_start"))
    response = httpx.post(
        webhook(stack),
        content=body.encode(),
        headers={**bearer(stack.action_token), "Content-Type": "text/plain"},
        timeout=10,
    )
    assert response.status_code == 415, response.text


def test_webhook_refuses_deflate_body(stack: Settings) -> None:
    # a deflate bomb: 50 MB of spaces inside a JSON string, about 50 KB on the wire
    inflated = b'{"next_action": "action_session_start", "pad": "' + b" " * 50_000_000 + b'"}'
    bomb = zlib.compress(inflated, 9)
    started = time.monotonic()
    response = raw_request(
        webhook(stack),
        bomb,
        headers={
            **bearer(stack.action_token),
            "Content-Type": "application/json",
            "Content-Encoding": "deflate",
        },
    )
    assert response.status == 415, response
    assert time.monotonic() - started < 3


def test_webhook_refuses_a_2_mb_body(stack: Settings) -> None:
    call = action_call("action_session_start")
    call["pad"] = "x" * (2 * 1024 * 1024)
    response = raw_request(
        webhook(stack),
        json.dumps(call).encode(),
        headers={**bearer(stack.action_token), "Content-Type": "application/json"},
    )
    assert response.status == 413, response
    assert response.elapsed < 3


def test_unknown_action_with_2000_chinese_characters_answers_fast(stack: Settings) -> None:
    name = "市" * 2000
    started = time.monotonic()
    response = httpx.post(
        webhook(stack), json=action_call(name), headers=bearer(stack.action_token), timeout=30
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 404, response.text
    assert elapsed < 1.5, f"{elapsed:.2f} s for an unknown action name"
    # and the server still answers at once afterwards
    started = time.monotonic()
    assert httpx.get(webhook(stack).replace("/webhook", "/health")).status_code == 200
    assert time.monotonic() - started < 1


def test_customer_message_of_2000_chinese_characters_answers_fast(stack: Settings) -> None:
    # the same text from a customer passes the masking of every server's logs
    started = time.monotonic()
    response = httpx.post(
        f"{stack.rasa_url}/webhooks/rest/webhook",
        json={"sender": f"sec-city-{uuid.uuid4().hex[:8]}", "message": "市" * 2000},
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert elapsed < 15, f"{elapsed:.1f} s for one message"
