"""The webhook logic without Sanic: routing, dedup, the 5-second rule, options, settings."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rasa.core.channels.channel import UserMessage

from connectors.channel_state import SqliteChannelState
from connectors.logs import mask_user_id
from connectors.messages import announcing_truncation
from connectors.wechat.channel import WeChatInput, WeChatSettings
from connectors.wechat.text import (
    MAX_TEXT_BYTES,
    OPTIONS_HINT,
    SYSTEM_BUSY,
    UNHEARD_VOICE,
    UNKNOWN_MENU_ITEM,
    UNSUPPORTED_MESSAGE,
    utf8_len,
)
from connectors.wechat.webhook import SUCCESS, WeChatWebhook
from fakes.wechat_api import FakeWeChatAPI
from fakes.wechat_user import WeChatUser

TOKEN = "kefu-unit-token"
APP_ID = "wx49f0ab532d5d035a"
SECRET = "kefu-unit-secret"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
OPENID = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
MENU = {"ORDER_STATUS": "/order_status"}
BUTTONS = [
    {"title": "查订单", "payload": "/order_status"},
    {"title": "开发票", "payload": "/invoice"},
]


class FakeBot:
    """Rasa's `on_new_message`: answers each text with scripted messages, after `delay` s."""

    def __init__(self) -> None:
        self.received: list[UserMessage] = []
        self.delay = 0.0
        self.finished = 0
        self.answers: dict[str, list[Any]] = {}
        self.error: Exception | None = None

    @property
    def texts(self) -> list[str]:
        return [message.text or "" for message in self.received]

    async def __call__(self, message: UserMessage) -> None:
        self.received.append(message)
        await asyncio.sleep(self.delay)
        if self.error:
            raise self.error
        for answer in self.answers.get(message.text or "", [f"echo: {message.text}"]):
            if isinstance(answer, dict):
                await message.output_channel.send_response(message.sender_id, dict(answer))
            else:
                await message.output_channel.send_text_message(message.sender_id, answer)
        self.finished += 1


@pytest.fixture
def api() -> Iterator[FakeWeChatAPI]:
    with FakeWeChatAPI(APP_ID, SECRET) as fake:
        yield fake


@pytest.fixture
def bot() -> FakeBot:
    return FakeBot()


Make = Callable[..., WeChatWebhook]


@pytest.fixture
async def make(tmp_path: Path, api: FakeWeChatAPI, bot: FakeBot) -> AsyncIterator[Make]:
    webhooks: list[WeChatWebhook] = []

    def build(aes_key: str = "", passive_reply_seconds: float = 1.0) -> WeChatWebhook:
        settings = WeChatSettings(
            token=TOKEN,
            app_id=APP_ID,
            app_secret=SECRET,
            encoding_aes_key=aes_key,
            api_base_url=api.url,
            passive_reply_seconds=passive_reply_seconds,
            menu=MENU,
        )
        channel = WeChatInput(
            settings, state=SqliteChannelState(tmp_path / "channels.db"), retry_delays=(0.01,)
        )
        webhook = channel.webhook(announcing_truncation(bot))
        webhooks.append(webhook)
        return webhook

    yield build
    for webhook in webhooks:
        await webhook.drain()


def user(aes_key: str | None = None) -> WeChatUser:
    return WeChatUser(TOKEN, APP_ID, aes_key, OPENID)


async def post(
    webhook: WeChatWebhook, xml: str, customer: WeChatUser | None = None
) -> tuple[int, dict[str, str] | None]:
    customer = customer or user()
    query, body = customer.signed_query(xml)
    reply = await webhook.receive(query, body, str(len(body)))
    if reply.status != 200:
        return reply.status, None
    return 200, customer.read_reply(reply.body.encode(), query)


# ---------------------------------------------------------------- the 5-second rule


@pytest.mark.parametrize("aes_key", ["", AES_KEY], ids=["plain", "aes"])
async def test_a_quick_answer_is_the_passive_reply(make: Make, bot: FakeBot, aes_key: str) -> None:
    bot.answers["怎么开发票"] = ["您可以在订单页申请电子发票。"]
    status, reply = await post(
        make(aes_key=aes_key), user(aes_key).text_xml("怎么开发票", 1), user(aes_key)
    )
    assert status == 200 and reply is not None
    assert reply["MsgType"] == "text" and reply["Content"] == "您可以在订单页申请电子发票。"
    assert reply["ToUserName"] == OPENID and reply["FromUserName"] == "gh_kefu"
    (message,) = bot.received
    assert message.sender_id == f"wechat:{OPENID}" and message.input_channel == "wechat"
    assert message.message_id == "1"


async def test_several_messages_are_joined_with_a_blank_line(make: Make, bot: FakeBot) -> None:
    bot.answers["你好"] = ["您好！", "请问有什么可以帮您？"]
    _, reply = await post(make(), user().text_xml("你好", 1))
    assert reply is not None and reply["Content"] == "您好！\n\n请问有什么可以帮您？"


async def test_a_slow_answer_is_acknowledged_then_pushed(
    make: Make, bot: FakeBot, api: FakeWeChatAPI
) -> None:
    bot.delay = 0.5
    bot.answers["你好"] = ["您好！", "请问有什么可以帮您？"]
    webhook = make(passive_reply_seconds=0.1)
    started = asyncio.get_running_loop().time()
    status, reply = await post(webhook, user().text_xml("你好", 1))
    assert status == 200 and reply is None
    assert asyncio.get_running_loop().time() - started < 0.4
    assert api.texts_to(OPENID) == []
    await webhook.drain()
    assert bot.finished == 1  # the timeout did not cancel the bot
    assert api.texts_to(OPENID) == ["您好！\n\n请问有什么可以帮您？"]


async def test_messages_after_the_passive_reply_go_through_the_api(
    make: Make, bot: FakeBot, api: FakeWeChatAPI
) -> None:
    _, reply = await post(make(), user().text_xml("hi", 1))
    assert reply is not None and reply["Content"] == "echo: hi"
    window = bot.received[0].output_channel
    await window.send_text_message(OPENID, "later, e.g. a reminder")
    assert api.texts_to(OPENID) == ["later, e.g. a reminder"]


async def test_a_long_answer_is_split_between_reply_and_api(
    make: Make, bot: FakeBot, api: FakeWeChatAPI
) -> None:
    long_answer = "您的订单已发货，预计三天内送达。" * 100  # 4,800 bytes
    bot.answers["物流"] = [long_answer]
    webhook = make()
    _, reply = await post(webhook, user().text_xml("物流", 1))
    assert reply is not None and utf8_len(reply["Content"]) <= MAX_TEXT_BYTES
    await webhook.drain()
    pushed = api.texts_to(OPENID)
    assert len(pushed) == 2
    assert reply["Content"] + "".join(pushed) == long_answer


async def test_no_answer_is_success(make: Make, bot: FakeBot) -> None:
    bot.answers["嗯"] = []
    assert await post(make(), user().text_xml("嗯", 1)) == (200, None)


async def test_a_failing_bot_gets_the_apology_not_500(make: Make, bot: FakeBot) -> None:
    bot.error = RuntimeError("tracker store down")
    status, reply = await post(make(), user().text_xml("你好", 1))
    assert status == 200 and reply is not None and reply["Content"] == SYSTEM_BUSY["zh"]


async def test_long_messages_are_cut_and_announced(make: Make, bot: FakeBot) -> None:
    _, reply = await post(make(), user().text_xml("长" * 3000, 1))
    assert reply is not None and "3000" in reply["Content"]
    assert len(bot.texts[0]) == 1000


# ---------------------------------------------------------------- dedup


async def test_a_retry_is_acknowledged_and_never_reaches_the_bot(make: Make, bot: FakeBot) -> None:
    webhook = make()
    xml = user().text_xml("你好", 77)
    assert (await post(webhook, xml))[1] is not None
    assert await post(webhook, xml) == (200, None)
    assert bot.texts == ["你好"]


async def test_four_concurrent_copies_reach_the_bot_once(make: Make, bot: FakeBot) -> None:
    bot.delay = 0.2
    webhook = make()
    xml = user().text_xml("退货运费谁出", 78)
    results = await asyncio.gather(*(post(webhook, xml) for _ in range(4)))
    assert [status for status, _ in results] == [200] * 4
    assert len([reply for _, reply in results if reply is not None]) == 1
    assert bot.texts == ["退货运费谁出"]


async def test_copies_arriving_at_two_processes_reach_one_bot(
    tmp_path: Path, api: FakeWeChatAPI
) -> None:
    """Two channel instances (two Rasa processes) sharing one state file."""
    bots = [FakeBot(), FakeBot()]
    settings = WeChatSettings(token=TOKEN, app_id=APP_ID, app_secret=SECRET, api_base_url=api.url)
    webhooks = [
        WeChatInput(settings, state=SqliteChannelState(tmp_path / "shared.db")).webhook(b)
        for b in bots
    ]
    xml = user().text_xml("你好", 79)
    await asyncio.gather(*(post(webhook, xml) for webhook in webhooks * 2))
    assert len(bots[0].received) + len(bots[1].received) == 1


async def test_events_are_deduplicated_by_user_time_and_event(make: Make, bot: FakeBot) -> None:
    webhook = make()
    xml = user().event_xml("subscribe")
    await post(webhook, xml)
    assert await post(webhook, xml) == (200, None)
    assert bot.texts == ["/greet"]


# ---------------------------------------------------------------- routing


@pytest.mark.parametrize(
    "xml",
    [
        user().image_xml(5),
        user().text_xml("x", 6).replace("[text]", "[video]"),
        user().text_xml("x", 7).replace("[text]", "[shortvideo]"),
        user().text_xml("x", 8).replace("[text]", "[location]"),
        user().text_xml("x", 9).replace("[text]", "[link]"),
        user().text_xml("x", 10).replace("[text]", "[file]"),
        user().text_xml("x", 11).replace("[text]", "[something_new]"),
    ],
    ids=["image", "video", "shortvideo", "location", "link", "file", "unknown"],
)
async def test_other_media_get_a_polite_fixed_reply(make: Make, bot: FakeBot, xml: str) -> None:
    _, reply = await post(make(), xml)
    assert reply is not None and reply["Content"] == UNSUPPORTED_MESSAGE
    assert "文字" in reply["Content"] and "Sorry" in reply["Content"]
    assert bot.received == []


async def test_recognised_voice_goes_to_the_bot(make: Make, bot: FakeBot) -> None:
    _, reply = await post(make(), user().voice_xml("我要退货", 1))
    assert bot.texts == ["我要退货"]
    assert reply is not None and reply["Content"] == "echo: 我要退货"


async def test_unrecognised_voice_gets_a_fixed_reply(make: Make, bot: FakeBot) -> None:
    _, reply = await post(make(), user().voice_xml("", 1))
    assert reply is not None and reply["Content"] == UNHEARD_VOICE
    assert bot.received == []


async def test_subscribers_are_greeted_by_the_bot(make: Make, bot: FakeBot) -> None:
    bot.answers["/greet"] = ["您好，我是客服小助手。"]
    _, reply = await post(make(), user().event_xml("subscribe", "qrscene_123"))
    assert reply is not None and reply["Content"] == "您好，我是客服小助手。"
    assert bot.texts == ["/greet"]


@pytest.mark.parametrize(
    "event", ["unsubscribe", "SCAN", "VIEW", "LOCATION", "TEMPLATESENDJOBFINISH", "whatever"]
)
async def test_other_events_are_acknowledged(make: Make, bot: FakeBot, event: str) -> None:
    assert await post(make(), user().event_xml(event, "k")) == (200, None)
    assert bot.received == []


async def test_menu_clicks_go_through_the_menu_table(make: Make, bot: FakeBot) -> None:
    webhook = make()
    _, reply = await post(webhook, user().event_xml("CLICK", "ORDER_STATUS"))
    assert bot.texts == ["/order_status"]
    later = WeChatUser(TOKEN, APP_ID, None, OPENID, clock=lambda: time.time() + 1)
    _, reply = await post(webhook, later.event_xml("CLICK", "NO_SUCH_KEY"))
    assert reply is not None and reply["Content"] == UNKNOWN_MENU_ITEM
    assert bot.texts == ["/order_status"]


async def test_blank_text_is_acknowledged(make: Make, bot: FakeBot) -> None:
    assert await post(make(), user().text_xml("  \u3000 ", 1)) == (200, None)
    assert bot.received == []


async def test_an_invalid_openid_is_a_400(make: Make, bot: FakeBot) -> None:
    stranger = WeChatUser(TOKEN, APP_ID, None, "<script>")
    assert await post(make(), stranger.text_xml("hi", 1), stranger) == (400, None)
    assert bot.received == []


async def test_refusals_are_4xx(make: Make, bot: FakeBot) -> None:
    webhook = make()
    query, body = user().signed_query(user().text_xml("hi", 1))
    assert (await webhook.receive({**query, "signature": "0" * 40}, body)).status == 403
    assert (await webhook.receive(query, b"<xml><a>&x;</a></xml>")).status == 400
    assert (await webhook.receive(query, body, str(70_000))).status == 413
    assert (await webhook.receive({}, body)).status == 403
    assert bot.received == []


def test_handshake() -> None:
    settings = WeChatSettings(token=TOKEN, app_id=APP_ID, app_secret=SECRET)
    webhook = WeChatInput(settings, state=None).webhook(FakeBot())
    query, _ = user().signed_query("")
    assert webhook.handshake({**query, "echostr": "4711"}).body == "4711"
    forged = webhook.handshake({**query, "signature": "0" * 40, "echostr": "4711"})
    assert forged.status == 403 and "4711" not in forged.body


# ---------------------------------------------------------------- numbered options


async def test_numbered_options_map_back_to_payloads(
    make: Make, bot: FakeBot, tmp_path: Path
) -> None:
    bot.answers["你好"] = [{"text": "您好！请选择：", "buttons": BUTTONS}]
    webhook = make()
    _, reply = await post(webhook, user().text_xml("你好", 1))
    assert reply is not None
    assert reply["Content"] == f"您好！请选择：\n1. 查订单\n2. 开发票\n{OPTIONS_HINT}"
    await post(webhook, user().text_xml(" ２ ", 2))  # full-width, with spaces
    assert bot.texts[-1] == "/invoice"
    await post(webhook, user().text_xml("2", 3))  # options are used once
    assert bot.texts[-1] == "2"


async def test_out_of_range_numbers_go_to_the_bot_as_text(make: Make, bot: FakeBot) -> None:
    bot.answers["你好"] = [{"text": "请选择：", "buttons": BUTTONS}]
    webhook = make()
    await post(webhook, user().text_xml("你好", 1))
    await post(webhook, user().text_xml("3", 2))
    assert bot.texts[-1] == "3"
    await post(webhook, user().text_xml("1", 3))
    assert bot.texts[-1] == "/order_status"


# ---------------------------------------------------------------- settings and health


def test_empty_credentials_disable_the_channel() -> None:
    channel = WeChatInput.from_credentials(
        {"token": "", "app_id": None, "app_secret": "", "encoding_aes_key": None}
    )
    assert not channel.settings.enabled
    assert channel.get_output_channel() is None
    assert WeChatInput.from_credentials(None).settings.enabled is False


def test_credentials_are_read() -> None:
    settings = WeChatSettings.from_credentials(
        {
            "token": TOKEN,
            "app_id": APP_ID,
            "app_secret": SECRET,
            "encoding_aes_key": AES_KEY,
            "api_base_url": "http://127.0.0.1:9/",
            "state_url": "",
            "passive_reply_seconds": "3.5",
            "menu": {"HUMAN": "/ask_human"},
        }
    )
    assert settings.mode == "aes" and settings.passive_reply_seconds == 3.5
    assert settings.api_base_url == "http://127.0.0.1:9"
    assert settings.state_url.startswith("sqlite:///")
    assert settings.menu == {"HUMAN": "/ask_human"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"app_secret": ""}, "WECHAT_APP_SECRET"),
        ({"encoding_aes_key": "too-short"}, "43-character"),
        ({"passive_reply_seconds": 6}, "passive_reply_seconds"),
        ({"passive_reply_seconds": "soon"}, "passive_reply_seconds"),
        ({"menu": ["ORDER_STATUS"]}, "menu"),
    ],
)
def test_unusable_credentials_are_refused(change: dict[str, Any], message: str) -> None:
    credentials = {"token": TOKEN, "app_id": APP_ID, "app_secret": SECRET, **change}
    with pytest.raises(ValueError, match=message):
        WeChatInput.from_credentials(credentials)


async def test_health_counts_recent_undelivered_messages(
    tmp_path: Path, api: FakeWeChatAPI
) -> None:
    settings = WeChatSettings(token=TOKEN, app_id=APP_ID, app_secret=SECRET, api_base_url=api.url)
    channel = WeChatInput(settings, state=SqliteChannelState(tmp_path / "c.db"))
    assert await channel.health() == {
        "status": "ok",
        "channel": "wechat",
        "mode": "plain",
        "undelivered": 0,
    }
    api.expire(OPENID)
    output = channel.get_output_channel()
    assert output is not None
    await output.send_text_message(OPENID, "您的退款已到账")
    channel.state.record_undelivered({"channel": "telegram", "recipient": "1", "text": "x"})
    assert (await channel.health())["undelivered"] == 1


async def test_disabled_health() -> None:
    channel = WeChatInput(WeChatSettings())
    assert await channel.health() == {"status": "disabled", "channel": "wechat"}


async def test_the_output_channel_reaches_the_api(tmp_path: Path, api: FakeWeChatAPI) -> None:
    settings = WeChatSettings(token=TOKEN, app_id=APP_ID, app_secret=SECRET, api_base_url=api.url)
    channel = WeChatInput(settings, state=SqliteChannelState(tmp_path / "c.db"))
    output = channel.get_output_channel()
    assert output is not None and output is channel.get_output_channel()
    await output.send_response(OPENID, {"text": "您好，客服小王为您服务。"})
    assert api.texts_to(OPENID) == ["您好，客服小王为您服务。"]


def test_success_is_wechats_acknowledgement() -> None:
    assert (SUCCESS.status, SUCCESS.body) == (200, "success")


async def test_a_dropped_request_still_gets_its_answer_pushed(
    make: Make, bot: FakeBot, api: FakeWeChatAPI
) -> None:
    bot.delay = 0.3
    webhook = make()
    query, body = user().signed_query(user().text_xml("还在吗", 1))
    request = asyncio.ensure_future(webhook.receive(query, body))
    await asyncio.sleep(0.1)
    request.cancel()  # the client went away
    with pytest.raises(asyncio.CancelledError):
        await request
    await webhook.drain()
    assert api.texts_to(OPENID) == ["echo: 还在吗"]


async def test_logs_mask_the_user_and_leave_out_the_text(
    make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    await post(make(), user().text_xml("我的手机号是13812345678", 1))
    assert "wechat_message" in caplog.text and "wechat_reply" in caplog.text
    assert mask_user_id(OPENID) in caplog.text
    assert OPENID not in caplog.text and "13812345678" not in caplog.text


def test_mask_user_id() -> None:
    masked = mask_user_id(OPENID)
    assert masked.startswith("o6_…") and len(masked) == 10
    assert masked == mask_user_id(OPENID) != mask_user_id(OPENID + "x")
    assert mask_user_id(123456789).startswith("123…")
