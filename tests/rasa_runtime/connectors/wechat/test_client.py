"""The customer-service API path: token cache, retries, undelivered records, output channels."""

import json
import multiprocessing
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.channel_state import SqliteChannelState
from connectors.wechat.client import ChannelStateSession, KefuWeChatClient
from connectors.wechat.sending import CustomerServiceSender, WeChatOutput, options_key
from connectors.wechat.text import MAX_TEXT_BYTES, OPTIONS_HINT, utf8_len
from fakes.wechat_api import FakeWeChatAPI

APP_ID = "wx49f0ab532d5d035a"
SECRET = "kefu-test-secret"
OPENID = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
FAST = (0.01, 0.01, 0.01)


@pytest.fixture
def api() -> Iterator[FakeWeChatAPI]:
    with FakeWeChatAPI(APP_ID, SECRET) as fake:
        yield fake


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "channels.db"


def make_sender(
    api_url: str, db: Path, secret: str = SECRET, delays: tuple[float, ...] = FAST
) -> CustomerServiceSender:
    state = SqliteChannelState(db)
    client = KefuWeChatClient(APP_ID, secret, api_url, session=ChannelStateSession(state))
    return CustomerServiceSender(client, state, delays)


def test_the_client_honours_the_api_base_url(api: FakeWeChatAPI, db: Path) -> None:
    client = make_sender(api.url + "/", db).client
    assert client.api_base_url == api.url  # the trailing slash is dropped
    assert f"{api.url}/cgi-bin/" == client.API_BASE_URL
    client.message.send_text(OPENID, "你好")
    assert api.token_requests == 1
    assert api.texts_to(OPENID) == ["你好"]


async def test_a_text_is_delivered(api: FakeWeChatAPI, db: Path) -> None:
    assert await make_sender(api.url, db).send_text(OPENID, "您好")
    assert api.texts_to(OPENID) == ["您好"]
    message = api.sent[0]
    assert message["touser"] == OPENID and message["msgtype"] == "text"


async def test_the_token_is_shared_through_the_channel_state(api: FakeWeChatAPI, db: Path) -> None:
    assert await make_sender(api.url, db).send_text(OPENID, "one")
    assert await make_sender(api.url, db).send_text(OPENID, "two")  # another state object
    assert api.token_requests == 1
    assert SqliteChannelState(db).get(f"wechat:session:{APP_ID}_access_token")


def _send_in_child(api_url: str, db: str) -> None:
    sender = make_sender(api_url, Path(db))
    sender.client.message.send_text(OPENID, "from another process")


def test_another_process_reuses_the_token(api: FakeWeChatAPI, db: Path) -> None:
    make_sender(api.url, db).client.message.send_text(OPENID, "from this process")
    child = multiprocessing.get_context("spawn").Process(
        target=_send_in_child, args=(api.url, str(db))
    )
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert api.texts_to(OPENID) == ["from this process", "from another process"]
    assert api.token_requests == 1


def test_tokens_expire_early_in_the_state(db: Path) -> None:
    session = ChannelStateSession(SqliteChannelState(db), early_expiry_seconds=300)
    session.set("k", "v", 7200)
    assert session.get("k") == "v"
    session.set("k", "v", 10)  # never a negative or zero lifetime
    assert session.get("k") == "v"
    session.delete("k")
    assert session.get("k", "default") == "default"


async def test_an_invalidated_token_is_fetched_again(api: FakeWeChatAPI, db: Path) -> None:
    sender = make_sender(api.url, db)
    assert await sender.send_text(OPENID, "one")
    api.expire_tokens()
    assert await sender.send_text(OPENID, "two")
    assert api.token_requests == 2
    assert api.texts_to(OPENID) == ["one", "two"]


async def test_system_busy_is_retried(api: FakeWeChatAPI, db: Path) -> None:
    api.fail_next(1, errcode=-1)
    assert await make_sender(api.url, db).send_text(OPENID, "您好")
    assert [attempt["errcode"] for attempt in api.attempts] == [-1, 0]
    assert api.texts_to(OPENID) == ["您好"]


async def test_http_5xx_is_retried(api: FakeWeChatAPI, db: Path) -> None:
    api.fail_next(2, errcode=-1, http_status=502)
    assert await make_sender(api.url, db).send_text(OPENID, "您好")
    assert [attempt["status"] for attempt in api.attempts] == [502, 502, 200]


async def test_persistent_failures_are_recorded_after_the_retries(
    api: FakeWeChatAPI, db: Path
) -> None:
    api.fail_next(10, errcode=-1)
    assert not await make_sender(api.url, db, delays=(0.01, 0.01)).send_text(OPENID, "您好")
    assert len(api.attempts) == 3
    (record,) = SqliteChannelState(db).undelivered()
    assert record["errcode"] == -1 and record["text"] == "您好"


async def test_a_closed_48_hour_window_is_recorded_not_retried(
    api: FakeWeChatAPI, db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    api.expire(OPENID)
    assert not await make_sender(api.url, db).send_text(OPENID, "您的退款已到账")
    assert len(api.attempts) == 1
    (record,) = SqliteChannelState(db).undelivered()
    assert record == {
        "channel": "wechat",
        "recipient": OPENID,
        "text": "您的退款已到账",
        "errcode": 45015,
        "errmsg": "response out of time limit or subscription is canceled",
        "reason": "48-hour window closed: follow up another way",
        "recorded_at": record["recorded_at"],
    }
    assert OPENID not in caplog.text and "退款" not in caplog.text
    assert "wechat_undelivered" in caplog.text


async def test_the_quota_is_recorded_not_retried(api: FakeWeChatAPI, db: Path) -> None:
    api.fail_next(1, errcode=45047)
    assert not await make_sender(api.url, db).send_text(OPENID, "hi")
    assert len(api.attempts) == 1
    assert "quota" in SqliteChannelState(db).undelivered()[0]["reason"]


async def test_a_wrong_secret_is_recorded(api: FakeWeChatAPI, db: Path) -> None:
    assert not await make_sender(api.url, db, secret="wrong").send_text(OPENID, "hi")
    assert SqliteChannelState(db).undelivered()[0]["errcode"] == 40125


async def test_network_errors_are_retried_then_recorded(db: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sender = make_sender(f"http://127.0.0.1:{port}", db, delays=(0.01,))
    assert not await sender.send_text(OPENID, "hi")
    assert SqliteChannelState(db).undelivered()[0]["reason"] == "network error"


async def test_long_texts_are_split(api: FakeWeChatAPI, db: Path) -> None:
    text = "您的订单已发货，预计三天内送达。" * 200
    assert await make_sender(api.url, db).send_text(OPENID, text)
    texts = api.texts_to(OPENID)
    assert len(texts) == 5  # 9,600 bytes
    assert all(utf8_len(part) <= MAX_TEXT_BYTES for part in texts)
    assert "".join(texts) == text


async def test_a_failure_midway_records_the_rest(api: FakeWeChatAPI, db: Path) -> None:
    text = "您的订单已发货，预计三天内送达。" * 200
    sender = make_sender(api.url, db)
    original = sender._send_part
    calls = 0

    async def second_fails(openid: str, part: str):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 2:
            return (45015, "expired", "48-hour window closed: follow up another way")
        return await original(openid, part)

    sender._send_part = second_fails  # type: ignore[method-assign]
    assert not await sender.send_text(OPENID, text)
    assert len(api.texts_to(OPENID)) == 1
    record = SqliteChannelState(db).undelivered()[0]
    assert api.texts_to(OPENID)[0] + record["text"].replace("\n\n", "") == text


# ---------------------------------------------------------------- the output channel


def make_output(api: FakeWeChatAPI, db: Path) -> WeChatOutput:
    sender = make_sender(api.url, db)
    return WeChatOutput(sender, sender.state)


async def test_buttons_are_numbered_and_remembered(api: FakeWeChatAPI, db: Path) -> None:
    output = make_output(api, db)
    buttons = [
        {"title": "查订单", "payload": "/order_status"},
        {"title": "开发票", "payload": "/invoice"},
    ]
    await output.send_response(OPENID, {"text": "请选择：", "buttons": buttons})
    assert api.texts_to(OPENID) == [f"请选择：\n1. 查订单\n2. 开发票\n{OPTIONS_HINT}"]
    stored = SqliteChannelState(db).get(options_key(OPENID))
    assert stored is not None and json.loads(stored) == ["/order_status", "/invoice"]


async def test_images_custom_json_and_attachments_become_text(api: FakeWeChatAPI, db: Path) -> None:
    output = make_output(api, db)
    await output.send_response(OPENID, {"image": "https://example.com/a.png"})
    await output.send_custom_json(OPENID, {"text": "custom text"})
    await output.send_custom_json(OPENID, {"blocks": []})  # nothing to say: skipped
    await output.send_attachment(OPENID, "https://example.com/a.pdf")
    await output.send_text_message(OPENID, "   ")  # blank: skipped
    assert api.texts_to(OPENID) == [
        "https://example.com/a.png",
        "custom text",
        "https://example.com/a.pdf",
    ]
    assert output.name() == "wechat"


async def test_the_rasa_sender_wechat_openid_reaches_the_bare_openid(
    api: FakeWeChatAPI, db: Path
) -> None:
    """Rasa's sender is `wechat:<openid>` (also for agent replies through Rasa's API)."""
    output = make_output(api, db)
    buttons = [{"title": "查订单", "payload": "/order_status"}]
    await output.send_text_message(f"wechat:{OPENID}", "您好")
    await output.send_response(f"wechat:{OPENID}", {"text": "请选择：", "buttons": buttons})
    assert api.texts_to(OPENID) == ["您好", f"请选择：\n1. 查订单\n{OPTIONS_HINT}"]
    assert SqliteChannelState(db).get(options_key(OPENID)) is not None  # keyed by the openid
