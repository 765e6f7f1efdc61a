"""Parts failing under a live conversation: the customer gets an apology, nothing is lost.

The real stack (tests/e2e/conftest.py) with `rasa_addons.resilience` installed by
`rasa_addons.launch`. The action server is stopped and started again; the tracker store's
SQLite file is made unopenable (moved aside, a folder in its place) and put back. Every
test restores what it broke, so the rest of the session's stack is unharmed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bot.core.processes import ServiceGroup
from bot.core.settings import PROJECT_ROOT, Settings
from fakes.wechat_api import FakeWeChatAPI
from tests.e2e.chat_client import Chat, Customer
from tests.e2e.test_channels import WeChatCustomer, next_id

pytestmark = pytest.mark.e2e

BUSY = {
    variation["condition"][0]["value"]: variation["text"]
    for variation in yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text("utf-8"))["responses"][
        "utter_system_busy"
    ]
}
ORDER = "KF202611200001"


@contextmanager
def actions_stopped(group: ServiceGroup) -> Iterator[None]:
    """The action server stopped inside the block, started and warmed up again after it.

    It answers its health check before its knowledge base and message readers are loaded
    (seconds, longer on a busy machine); until then an action may outlast Rasa's action
    timeout and get the apology, so the block ends only when an order lookup is answered.
    """
    group.stop_service("actions")
    try:
        yield
    finally:
        group.start_service("actions")
        wait_until_warm(group.settings)


def wait_until_warm(stack: Settings) -> None:
    """Waits until an order number given to the order form is answered (not apologised for).

    That path reads the message for a problem to record: the message readers, which a fresh
    action server trains in the background (tens of seconds on a busy 2-core machine).
    """

    def warm() -> bool:
        chat = Chat(stack.rasa_url)
        chat.say("我的订单到哪了")
        return "已发货" in chat.say(ORDER)

    wait_for(warm, timeout=240)


def tracker_db(stack: Settings) -> Path:
    url = stack.tracker_store_url
    assert url.startswith("sqlite:///"), "this test breaks a SQLite tracker store"
    return Path(url.removeprefix("sqlite:///"))


@contextmanager
def unreachable(database: Path) -> Iterator[None]:
    """The SQLite file cannot be opened inside the block (Rasa opens one per session)."""
    parts = [Path(f"{database}{suffix}") for suffix in ("", "-wal", "-shm")]
    moved = [part for part in parts if part.exists()]
    for part in moved:
        part.rename(part.with_name(part.name + ".aside"))
    database.mkdir()
    try:
        yield
    finally:
        database.rmdir()
        for part in moved:
            part.with_name(part.name + ".aside").rename(part)


def events(stack: Settings, sender: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{stack.rasa_url}/conversations/{sender}/tracker",
        params={"token": stack.rasa_token},
        timeout=10,
    )
    response.raise_for_status()
    return list(response.json()["events"])


def wait_for(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def answered_after(stack: Settings, sender: str, text: str) -> list[str]:
    """The bot's texts after the customer's `text` in the stored conversation ([] if absent)."""
    try:
        stored = events(stack, sender)
    except httpx.HTTPError:
        return []
    for index, event in enumerate(stored):
        if event["event"] == "user" and event.get("text") == text:
            return [e.get("text") or "" for e in stored[index:] if e["event"] == "bot"]
    return []


# ---------------------------------------------------------------- the action server


def test_rest_customer_gets_the_apology_while_the_action_server_is_down(
    stack_group: ServiceGroup,
) -> None:
    stack = stack_group.settings
    chat = Chat(stack.rasa_url)
    assert "订单号" in chat.say("我的订单到哪了")
    with actions_stopped(stack_group):
        started = time.monotonic()
        answer = chat.send(ORDER)
        assert time.monotonic() - started < 5
        assert [m.get("text") for m in answer] == [BUSY["zh"]]
        assert [b["title"] for b in answer[0]["buttons"]] == ["转人工"]
        assert chat.say("where is my order") == BUSY["en"]
    # the action server is back: the same conversation goes on
    reply = chat.say(f"查一下订单{ORDER}")
    assert ORDER in reply and "已发货" in reply
    said = [e.get("text") for e in events(stack, chat.sender) if e["event"] == "user"]
    assert said == ["我的订单到哪了", ORDER, "where is my order", f"查一下订单{ORDER}"]


def test_web_chat_customer_gets_the_apology_while_the_action_server_is_down(
    stack_group: ServiceGroup,
) -> None:
    customer = Customer(stack_group.settings)
    try:
        customer.say("你好")
        customer.hear("Kefu")
        with actions_stopped(stack_group):
            customer.say(f"查一下订单{ORDER}")
            assert customer.hear("系统正忙", timeout=10)["text"] == BUSY["zh"]
        customer.say(f"查一下订单{ORDER}")
        assert ORDER in customer.hear("已发货")["text"]
    finally:
        customer.close()


def test_wechat_is_answered_within_5_seconds_while_the_action_server_is_down(
    stack_group: ServiceGroup, wechat_api: FakeWeChatAPI
) -> None:
    customer = WeChatCustomer(stack_group.settings, wechat_api)
    with actions_stopped(stack_group):
        response, reply, elapsed = customer.post(
            customer.user.text_xml(f"查一下订单{ORDER}", next_id())
        )
        assert response.status_code == 200 and elapsed < 5
        assert reply is not None and str(reply["Content"]).startswith(BUSY["zh"])
    assert "已发货" in customer.say(f"查一下订单{ORDER}")


# ---------------------------------------------------------------- the tracker store


def test_rest_message_during_a_database_outage_is_answered_after_it(
    stack_group: ServiceGroup,
) -> None:
    stack = stack_group.settings
    wait_until_warm(stack)  # the replayed answer must not meet a cold action server
    chat = Chat(stack.rasa_url)
    assert "订单号" in chat.say("我的订单到哪了")
    with unreachable(tracker_db(stack)):
        assert chat.say(ORDER) == BUSY["zh"]
        with pytest.raises(httpx.HTTPStatusError):  # no empty tracker is made up
            events(stack, chat.sender)
    # the spooled message is replayed into the conversation, which was waiting for it
    wait_for(lambda: bool(answered_after(stack, chat.sender, ORDER)))
    replayed = answered_after(stack, chat.sender, ORDER)
    assert any(ORDER in text and "已发货" in text for text in replayed), replayed
    reply = chat.say("你好")  # and the conversation goes on
    assert reply and reply != BUSY["zh"]


def test_web_chat_message_during_a_database_outage_is_answered_after_it(
    stack_group: ServiceGroup,
) -> None:
    stack = stack_group.settings
    wait_until_warm(stack)
    customer = Customer(stack)
    try:
        customer.say("我的订单到哪了")
        customer.hear("订单号")
        with unreachable(tracker_db(stack)):
            customer.say(ORDER)
            assert customer.hear("系统正忙", timeout=10)["text"] == BUSY["zh"]
        # replayed: the answer reaches the open web chat by itself
        assert ORDER in customer.hear("已发货", timeout=30)["text"]
    finally:
        customer.close()
    said = [e.get("text") for e in events(stack, customer.session_id) if e["event"] == "user"]
    assert said == ["我的订单到哪了", ORDER]
