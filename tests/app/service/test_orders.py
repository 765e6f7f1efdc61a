from collections.abc import Iterator
from typing import Any
from unittest.mock import patch

import pytest
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import Engine

from actions.orders import (
    ActionOrderStatus,
    ValidateOrderStatusForm,
    check_reply,
    order_number_attempt,
)
from bot.customers import CustomerDirectory
from bot.service.orders import InvalidOrderNumber, OrderStore, normalize_order_number
from tests.app.conftest import make_tracker


@pytest.mark.parametrize(
    ("text", "number"),
    [("KF202611200001", "KF202611200001"), ("kf 2026 1120 0001", "KF202611200001")],
)
def test_normalize(text: str, number: str) -> None:
    assert normalize_order_number(text) == number


@pytest.mark.parametrize("text", ["KF2026", "202611200001", "XX202611200001", "", "订单"])
def test_normalize_refuses(text: str) -> None:
    with pytest.raises(InvalidOrderNumber):
        normalize_order_number(text)


@pytest.mark.parametrize(
    ("text", "attempt"),
    [
        ("我的单号是202611200001", "KF202611200001"),
        ("订单号12345", "12345"),
        ("KF 2026 1120", "KF 2026 1120"),
        ("我想退货", None),
    ],
)
def test_order_number_attempt(text: str, attempt: str | None) -> None:
    assert order_number_attempt(text) == attempt


def test_store_finds_demo_orders(engine: Engine) -> None:
    store = OrderStore(engine)
    order = store.find("KF202611200001")
    assert order is not None and order.status.value == "shipped"
    assert store.find("KF209912319999") is None
    statuses = {store.find(f"KF20261120{i:04d}").status.value for i in range(1, 21)}  # type: ignore[union-attr]
    assert statuses == {"pending_payment", "paid", "shipped", "delivered", "cancelled", "refunding"}


@pytest.fixture
def directory(engine: Engine) -> Iterator[CustomerDirectory]:
    """The customer directory the order actions use, on the test database."""
    directory = CustomerDirectory(engine)
    with (
        patch("actions.orders.customer_directory", return_value=directory),
        patch("actions.orders.order_store", return_value=OrderStore(engine)),
    ):
        yield directory


async def order_status(
    text: str, intent: str = "inform", **slots: Any
) -> tuple[CollectingDispatcher, list[Any]]:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(text, intent, slots={"order_number": "KF202611200001", **slots})
    events = await ActionOrderStatus().run(dispatcher, tracker, {})
    return dispatcher, events


async def test_the_owner_gets_the_details_in_their_language(
    directory: CustomerDirectory,
) -> None:
    directory.set_contact("test-user", phone="13800000001")  # verified: the order's phone
    dispatcher, events = await order_status("KF202611200001", language="en")
    message = dispatcher.messages[0]
    assert message["response"] == "utter_order_status_shipped"
    assert message["carrier"] == "SF Express" and message["product"].startswith("AuraSound")
    assert events == []  # the order stays known: "when will it arrive?", a later complaint


async def test_others_get_the_status_only_and_the_check(directory: CustomerDirectory) -> None:
    dispatcher, events = await order_status("KF202611200001", language="en")
    [brief] = dispatcher.messages
    assert brief["response"] == "utter_order_status_brief"
    assert brief["status"] == "shipped" and "tracking_number" not in brief
    assert "carrier" not in brief and "product" not in brief
    assert events == [SlotSet("order_check", {"pending": "KF202611200001", "passed": [],
                                              "failures": {}})]  # fmt: skip
    # the order's phone goes nowhere: no slot, no profile
    assert directory.verified_phone("test-user") is None


async def test_the_last_four_digits_unlock_the_details(directory: CustomerDirectory) -> None:
    pending = {"pending": "KF202611200001", "passed": [], "failures": {}}
    dispatcher, events = await order_status("后四位是0001", order_check=pending)
    assert dispatcher.messages[0]["response"] == "utter_order_status_shipped"
    passed = {"pending": None, "passed": ["KF202611200001"], "failures": {}}
    assert events == [SlotSet("order_check", passed)]
    again, _ = await order_status("KF202611200001", "order_status", order_check=passed)
    assert again.messages[0]["response"] == "utter_order_status_shipped"


async def test_digits_are_read_only_while_the_check_is_pending(
    directory: CustomerDirectory,
) -> None:
    dispatcher, _ = await order_status("0001")
    assert dispatcher.messages[0]["response"] == "utter_order_status_brief"
    other = {"pending": "KF202611200002", "passed": [], "failures": {}}
    dispatcher, _ = await order_status("0001", order_check=other)
    assert dispatcher.messages[0]["response"] == "utter_order_status_brief"


async def test_three_wrong_answers_end_the_check(directory: CustomerDirectory) -> None:
    check: dict[str, Any] = {"pending": "KF202611200001", "passed": [], "failures": {}}
    for left in (2, 1):
        dispatcher, events = await order_status("1234", order_check=check)
        assert dispatcher.messages[0]["response"] == "utter_order_check_wrong"
        assert dispatcher.messages[0]["attempts_left"] == str(left)
        check = events[0]["value"]
    dispatcher, events = await order_status("9999", order_check=check)
    assert dispatcher.messages[0]["response"] == "utter_order_check_locked"
    check = events[0]["value"]
    assert check["pending"] is None and check["failures"] == {"KF202611200001": 3}
    dispatcher, events = await order_status("0001", order_check=check)  # right, too late
    [locked] = dispatcher.messages
    assert locked["response"] == "utter_order_check_locked" and locked["status"] == "已发货"
    assert events == []


async def test_cancelled_orders_have_nothing_to_hide(directory: CustomerDirectory) -> None:
    dispatcher, _ = await order_status("KF202611200006", order_number="KF202611200006")
    assert dispatcher.messages[0]["response"] == "utter_order_status_cancelled"


def test_check_reply() -> None:
    assert check_reply("1234") == "1234"
    assert check_reply(" 后四位是 0001。") == "0001"
    assert check_reply("last four digits: 5678") == "5678"
    assert check_reply("12345") is None
    assert check_reply("1234 5678") is None
    assert check_reply("KF202611200001") is None


async def test_an_order_number_with_a_problem_is_recorded_not_looked_up(
    engine: Engine, directory: CustomerDirectory
) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        "KF202611200015 前天到的 到手就是坏的", "inform", slots={"order_number": "KF202611200015"}
    )
    with patch("actions.orders.order_store", return_value=OrderStore(engine)):
        events = await ActionOrderStatus().run(dispatcher, tracker, {})
    assert dispatcher.messages[0]["response"] in ("utter_problem_ack", "utter_complain_ack")
    assert SlotSet("need_kind", "record") in events
    assert FollowupAction("spin_form") in events


async def test_unknown_order(engine: Engine, directory: CustomerDirectory) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker("x", "inform", slots={"order_number": "KF209912319999"})
    with patch("actions.orders.order_store", return_value=OrderStore(engine)):
        await ActionOrderStatus().run(dispatcher, tracker, {})
    assert dispatcher.messages[0]["response"] == "utter_order_not_found"
    assert dispatcher.messages[0]["order_number"] == "KF209912319999"


def test_validation_explains_then_offers_a_human() -> None:
    form = ValidateOrderStatusForm()
    first = CollectingDispatcher()
    result = form.validate_order_number("12345", first, make_tracker("12345", "inform"), {})
    assert result == {"order_number": None, "invalid_order_number_attempts": 1}
    assert first.messages[0]["response"] == "utter_invalid_order_number"
    second = CollectingDispatcher()
    tracker = make_tracker("678", "inform", slots={"invalid_order_number_attempts": 1})
    form.validate_order_number("678", second, tracker, {})
    assert second.messages[0]["response"] == "utter_invalid_order_number_offer_human"
    ok = form.validate_order_number("kf202611200003", CollectingDispatcher(), tracker, {})
    assert ok == {"order_number": "KF202611200003", "invalid_order_number_attempts": 0}


async def test_extraction_only_while_asking_for_the_number() -> None:
    form = ValidateOrderStatusForm()
    asking = make_tracker("订单号12345", "inform", slots={"requested_slot": "order_number"})
    assert await form.extract_order_number(CollectingDispatcher(), asking, {}) == {
        "order_number": "12345"
    }
    question = make_tracker(
        "退货要几天 3 4 5 6 7", "return_refund", slots={"requested_slot": "order_number"}
    )
    assert await form.extract_order_number(CollectingDispatcher(), question, {}) == {}
    idle = make_tracker("12345", "inform")
    assert await form.extract_order_number(CollectingDispatcher(), idle, {}) == {}


async def test_at_the_start_a_kf_number_typed_with_blanks_or_a_digit_short_is_read() -> None:
    form = ValidateOrderStatusForm()
    spaced = make_tracker("帮我查查这个单 KF 2026 1120 0007", "order_status")
    extracted = await form.extract_order_number(CollectingDispatcher(), spaced, {})
    assert extracted == {"order_number": "KF 2026 1120 0007"}
    assert form.validate_order_number(
        extracted["order_number"], CollectingDispatcher(), spaced, {}
    ) == {"order_number": "KF202611200007", "invalid_order_number_attempts": 0}
    short = make_tracker("帮我看看订单 KF20261120003", "order_status")
    dispatcher = CollectingDispatcher()
    value = (await form.extract_order_number(dispatcher, short, {}))["order_number"]
    form.validate_order_number(value, dispatcher, short, {})
    assert dispatcher.messages[0]["response"] == "utter_invalid_order_number"
    phone = make_tracker("电话13912345678", "inform")
    assert await form.extract_order_number(CollectingDispatcher(), phone, {}) == {}
