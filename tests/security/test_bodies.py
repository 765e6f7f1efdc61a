"""Bounded bodies: the web service and Rasa refuse large bodies before reading or authenticating.

Findings: the web service read any body into memory before authentication (a 1 GB upload to a
desk route), Rasa's Sanic took bodies up to its 100 MB default on every route, and REST
`metadata` was stored in the tracker store and the event broker exactly as the caller sent it.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid

import httpx
import pytest

from bot.core.settings import Settings
from tests.security.raw_http import raw_request

pytestmark = pytest.mark.e2e

TEN_MB = 10 * 1024 * 1024


def web(stack: Settings, path: str) -> str:
    return f"http://{stack.host}:{stack.web_port}{path}"


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/desk/api/handoffs/1/notes", "application/json"),  # needs a session: 413 first
        ("/desk/login", "application/x-www-form-urlencoded"),
        ("/chat/session", "application/json"),
        ("/desk/api/review/collect", "application/json"),
    ],
)
def test_web_service_refuses_a_declared_10_mb_body_before_auth(
    stack: Settings, path: str, content_type: str
) -> None:
    # the body is never sent: the answer must come from the headers alone, at once
    response = raw_request(
        web(stack, path), content_length=TEN_MB, headers={"Content-Type": content_type}
    )
    assert response.status == 413, response
    assert response.elapsed < 2, f"{response.elapsed:.1f} s"
    assert response.body_bytes_sent == 0
    assert "application/json" in response.headers.get("content-type", ""), response.headers
    assert json.loads(response.body), response.body  # a clear message, not an empty page


@pytest.mark.parametrize(
    ("path", "content_type", "refusals"),
    [
        ("/chat/session", "application/json", {413}),
        ("/desk/login", "application/x-www-form-urlencoded", {413}),
        # needs a session: refusing it unread (401) or without a length (411) is as good
        ("/desk/api/handoffs/1/notes", "application/json", {401, 411, 413}),
    ],
)
def test_web_service_refuses_a_streamed_body_while_it_streams(
    stack: Settings, path: str, content_type: str, refusals: set[int]
) -> None:
    # no Content-Length: chunked, up to 8 MB at 64 KB per 20 ms; the refusal must come after
    # the first few chunks, long before the end
    response = raw_request(
        web(stack, path),
        b"x" * (8 * 1024 * 1024),
        chunked=True,
        pace=0.02,
        headers={"Content-Type": content_type},
    )
    assert response.status in refusals, response
    assert response.body_bytes_sent <= 1024 * 1024, response.body_bytes_sent
    assert response.elapsed < 5


@pytest.mark.parametrize("channel", ["rest", "telegram", "wechat"])
def test_rasa_channel_refuses_a_body_over_64_kb(stack: Settings, channel: str) -> None:
    body = json.dumps(
        {"sender": f"sec-big-{uuid.uuid4().hex[:8]}", "message": "你好", "pad": "x" * 70_000}
    ).encode()
    response = raw_request(
        f"{stack.rasa_url}/webhooks/{channel}/webhook",
        body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 413, response
    assert response.elapsed < 3


def stored_events(stack: Settings, sender: str) -> list[str]:
    """The `data` of every event of `sender` in the tracker store and the event broker."""
    rows: list[str] = []
    for url in (stack.tracker_store_url, stack.event_broker_url):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            rows += [
                str(row[0])
                for row in db.execute("SELECT data FROM events WHERE sender_id = ?", (sender,))
            ]
    return rows


def post_rest(stack: Settings, body: dict[str, object]) -> httpx.Response:
    return httpx.post(f"{stack.rasa_url}/webhooks/rest/webhook", json=body, timeout=30)


def test_rest_metadata_of_100_kb_is_not_stored(stack: Settings) -> None:
    sender = f"sec-meta-{uuid.uuid4().hex[:10]}"
    marker = f"meta{uuid.uuid4().hex[:8]}"
    response = post_rest(
        stack,
        {"sender": sender, "message": "你好", "metadata": {"note": marker * (100_000 // 12)}},
    )
    assert response.status_code in (400, 413), response.text
    time.sleep(0.5)
    assert not any(marker in data for data in stored_events(stack, sender))


def test_rest_metadata_is_whitelisted_and_capped(stack: Settings) -> None:
    sender = f"sec-meta-{uuid.uuid4().hex[:10]}"
    marker = f"meta{uuid.uuid4().hex[:8]}"
    # under Rasa's 64 KB body limit, but far over the 1 KB metadata cap
    big = post_rest(
        stack, {"sender": sender, "message": "你好", "metadata": {"note": marker * 4000}}
    )
    assert big.status_code in (200, 400, 413), big.text
    # small, but keys the bot does not use (the desk trusts `kefu` on events)
    small = post_rest(
        stack,
        {
            "sender": sender,
            "message": "你好",
            "metadata": {"kefu": {"agent": marker}, "evil": marker, "channel": "web"},
        },
    )
    assert small.status_code == 200, small.text
    time.sleep(0.5)
    events = stored_events(stack, sender)
    assert events, "the small message was not stored at all"
    leaked = [data[:200] for data in events if marker in data]
    assert not leaked, leaked
    assert sum(len(data) for data in events) < 64_000
