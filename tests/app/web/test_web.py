import asyncio
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot.core.db import make_engine, upgrade
from bot.core.settings import Settings
from bot.customers import CustomerDirectory
from bot.web import create_app
from kefu_shared.customer_session import issue, shop_user_hash, verify


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    (tmp_path / "webchat").mkdir()
    (tmp_path / "webchat" / "webchat.js").write_text("window.WebChat = {};")
    return TestClient(
        create_app(Settings(var_dir=tmp_path, rasa_public_url="http://bot.example:5005"))
    )


def test_health(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_chat_page_points_the_widget_at_rasa(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "http://bot.example:5005" in page.text
    assert "/vendor/webchat/webchat.js" in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "http://bot.example:5005" in policy
    assert page.headers["x-frame-options"] == "DENY"


def test_widget_and_own_assets_are_served_locally(client: TestClient) -> None:
    assert client.get("/vendor/webchat/webchat.js").status_code == 200
    assert client.get("/static/chat.js").status_code == 200
    assert client.get("/static/../settings.py").status_code == 404


def test_unknown_routes_are_404(client: TestClient) -> None:
    assert client.get("/nope").status_code == 404
    assert client.post("/healthz").status_code == 405


# ------------------------------------------------------------------ chat sessions
SHOP_SECRET = "shop-identity-secret-0123456789"


def session_client(tmp_path: Path, **settings: object) -> TestClient:
    (tmp_path / "webchat").mkdir(exist_ok=True)
    return TestClient(create_app(Settings(var_dir=tmp_path, **settings)))  # type: ignore[arg-type]


def test_a_new_chat_session_is_a_signed_web_sender(client: TestClient) -> None:
    answer = client.post("/chat/session")
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    session = answer.json()
    assert re.fullmatch(r"web:[0-9a-f]{32}", session["sender"])
    secret = Settings().customer_session_secret
    assert verify(session["token"], secret, time.time()) == session["sender"]
    assert abs(session["expires_at"] - (time.time() + 24 * 3600)) < 60
    assert client.post("/chat/session", json={}).json()["sender"] != session["sender"]


def test_a_valid_token_is_renewed_for_the_same_sender(client: TestClient) -> None:
    first = client.post("/chat/session").json()
    renewed = client.post("/chat/session", json={"token": first["token"]}).json()
    assert renewed["sender"] == first["sender"]


@pytest.mark.parametrize(
    "token",
    [
        "v1.web:0123456789abcdef0123456789abcdef.9999999999." + "0" * 64,  # forged
        issue("web:0123456789abcdef0123456789abcdef", "kefu-local-customer-sessions", 1, 0),
        "garbage",
    ],
)
def test_an_invalid_or_expired_token_is_not_renewed(client: TestClient, token: str) -> None:
    answer = client.post("/chat/session", json={"token": token})
    assert answer.status_code == 401 and "new session" in answer.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        b"[1]",
        b"not json",
        b"\xff\xfe",
        b'{"token": 5}',
        b'{"user_id": "u1"}',
        b'{"user_id": "a.b", "user_hash": "00"}',
        b'{"user_id": 7, "user_hash": "00"}',
    ],
)
def test_malformed_session_requests_are_400(client: TestClient, body: bytes) -> None:
    answer = client.post(
        "/chat/session", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 400, answer.text


def test_large_session_requests_are_413(client: TestClient) -> None:
    answer = client.post("/chat/session", json={"token": "x" * 5000})
    assert answer.status_code == 413


def test_a_shop_user_needs_the_shops_hash(tmp_path: Path) -> None:
    shop = session_client(tmp_path, shop_identity_secret=SHOP_SECRET)
    user_hash = shop_user_hash("user-7", SHOP_SECRET)
    answer = shop.post("/chat/session", json={"user_id": "user-7", "user_hash": user_hash})
    assert answer.status_code == 200 and answer.json()["sender"] == "shop:user-7"
    wrong = shop.post("/chat/session", json={"user_id": "user-8", "user_hash": user_hash})
    assert wrong.status_code == 403 and "user_hash" in wrong.json()["detail"]


def test_shop_identities_are_refused_when_not_configured(client: TestClient) -> None:
    user_hash = shop_user_hash("user-7", SHOP_SECRET)
    answer = client.post("/chat/session", json={"user_id": "user-7", "user_hash": user_hash})
    assert answer.status_code == 403 and "not enabled" in answer.json()["detail"]


def test_the_chat_page_script_asks_for_a_session(client: TestClient) -> None:
    script = client.get("/static/chat.js").text
    assert "/chat/session" in script and "chat_session" in script


# ------------------------------------------------------------------ bounded bodies (limits.py)
def chunks(size: int, chunk: int = 1024) -> Iterator[bytes]:
    """A body without a Content-Length (sent chunked), `size` bytes of 'x'."""
    for start in range(0, size, chunk):
        yield b"x" * min(chunk, size - start)


def assert_too_large(answer: Any) -> None:
    assert answer.status_code == 413, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert "larger than" in answer.json()["detail"]


def test_a_json_body_over_the_limit_is_413_before_auth(client: TestClient) -> None:
    big = b'{"text": "' + b"x" * 70_000 + b'"}'
    headers = {"Content-Type": "application/json"}
    assert_too_large(client.post("/desk/api/handoffs/1/notes", content=big, headers=headers))
    assert_too_large(client.post("/desk/api/review/collect", content=big, headers=headers))
    # under the limit, the same route asks for a session as before
    small = client.post("/desk/api/handoffs/1/notes", json={"text": "hi"})
    assert small.status_code in (401, 403), small.text


def test_a_body_over_the_limit_is_413_before_routing(tmp_path: Path) -> None:
    small = session_client(tmp_path, max_json_bytes=100, max_form_bytes=50)
    assert_too_large(small.post("/healthz", content=b"x" * 101))  # 405 otherwise
    assert_too_large(small.post("/nope", json={"pad": "x" * 200}))  # 404 otherwise
    assert small.post("/healthz", content=b"x" * 100).status_code == 405


def test_forms_have_their_own_smaller_limit(tmp_path: Path) -> None:
    small = session_client(tmp_path, max_json_bytes=1000, max_form_bytes=50)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert_too_large(small.post("/desk/login", content=b"a=" + b"x" * 60, headers=form))
    multipart = {"Content-Type": "multipart/form-data; boundary=b"}
    assert_too_large(small.post("/desk/login", content=b"x" * 60, headers=multipart))
    assert small.post("/nope", content=b"x" * 60).status_code == 404  # JSON/other: 1000


def test_a_streamed_body_is_cut_at_the_limit(client: TestClient) -> None:
    json_type = {"Content-Type": "application/json"}
    assert_too_large(client.post("/chat/session", content=chunks(200_000), headers=json_type))
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert_too_large(client.post("/desk/login", content=chunks(20_000), headers=form))


def test_a_bad_content_length_is_400(client: TestClient) -> None:
    from bot.web.limits import BodyLimitMiddleware

    sent: list[dict[str, Any]] = []

    async def never_called(*_: Any) -> None:
        raise AssertionError("the app must not run")

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    middleware = BodyLimitMiddleware(never_called, max_json_bytes=10, max_form_bytes=10)
    scope = {"type": "http", "headers": [(b"content-length", b"-1")]}
    asyncio.run(middleware(scope, receive, send))
    assert sent[0]["status"] == 400


def echo_app(swallow: bool = False) -> TestClient:
    """A bare app behind the middleware (limit 100) that answers the length of its body."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from bot.web.limits import BodyLimitMiddleware, BodyTooLarge

    async def echo(request: Request) -> JSONResponse:
        try:
            return JSONResponse({"length": len(await request.body())})
        except BodyTooLarge:
            if not swallow:
                raise
            return JSONResponse({"oops": "read what I could"}, status_code=400)

    app = Starlette(routes=[Route("/", echo, methods=["POST"])])
    app.add_middleware(BodyLimitMiddleware, max_json_bytes=100, max_form_bytes=10)
    return TestClient(app)


def test_bodies_up_to_the_limit_pass_whole() -> None:
    client = echo_app()
    assert client.post("/", content=b"x" * 100).json() == {"length": 100}
    assert client.post("/", content=chunks(100, 7)).json() == {"length": 100}
    assert_too_large(client.post("/", content=b"x" * 101))
    assert_too_large(client.post("/", content=chunks(101, 7)))


def test_an_app_that_swallows_the_refusal_still_answers_413() -> None:
    assert_too_large(echo_app(swallow=True).post("/", content=chunks(500, 10)))


def test_the_service_keeps_rasa_urls_with_tokens_out_of_its_logs(tmp_path: Path) -> None:
    (tmp_path / "webchat").mkdir()
    logging.getLogger("httpx").setLevel(logging.INFO)
    with TestClient(create_app(Settings(var_dir=tmp_path))):
        # httpx logs every URL it calls at INFO: the desk's calls to Rasa carry ?token=
        for name in ("httpx", "httpcore"):
            assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING


def test_signing_in_links_the_earlier_anonymous_session_to_the_shop_user(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, shop_identity_secret=SHOP_SECRET)
    upgrade(settings.database_url)
    (tmp_path / "webchat").mkdir(exist_ok=True)
    shop = TestClient(create_app(settings))
    anonymous = shop.post("/chat/session").json()
    other = shop.post("/chat/session").json()
    user_hash = shop_user_hash("user-7", SHOP_SECRET)
    signed_in = shop.post(
        "/chat/session",
        json={"user_id": "user-7", "user_hash": user_hash, "token": anonymous["token"]},
    )
    assert signed_in.status_code == 200 and signed_in.json()["sender"] == "shop:user-7"
    directory = CustomerDirectory(make_engine(settings.database_url))
    assert directory.same_customer(anonymous["sender"], "shop:user-7")
    assert not directory.same_customer(other["sender"], "shop:user-7")
    third = shop.post("/chat/session").json()
    forged = third["token"][:-4] + ("0000" if not third["token"].endswith("0000") else "1111")
    shop.post("/chat/session", json={"user_id": "user-7", "user_hash": user_hash, "token": forged})
    assert not directory.same_customer(third["sender"], "shop:user-7")
