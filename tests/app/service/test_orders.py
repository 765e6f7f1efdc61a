from unittest.mock import patch

import pytest
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import Engine

from actions.orders import (
    ActionOrderStatus,
    ValidateOrderStatusForm,
    order_number_attempt,
)
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


async def test_order_status_answers_in_the_customer_language(engine: Engine) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        "KF202611200001", "inform", slots={"order_number": "KF202611200001", "language": "en"}
    )
    with patch("actions.orders.order_store", return_value=OrderStore(engine)):
        events = await ActionOrderStatus().run(dispatcher, tracker, {})
    message = dispatcher.messages[0]
    assert message["response"] == "utter_order_status_shipped"
    assert message["carrier"] == "SF Express" and message["product"].startswith("AuraSound")
    assert events == []  # the order stays known: "when will it arrive?", a later complaint


async def test_an_order_number_with_a_problem_is_recorded_not_looked_up(engine: Engine) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        "KF202611200015 前天到的 到手就是坏的", "inform", slots={"order_number": "KF202611200015"}
    )
    with patch("actions.orders.order_store", return_value=OrderStore(engine)):
        events = await ActionOrderStatus().run(dispatcher, tracker, {})
    assert dispatcher.messages[0]["response"] in ("utter_problem_ack", "utter_complain_ack")
    assert SlotSet("need_kind", "record") in events
    assert FollowupAction("spin_form") in events


async def test_unknown_order(engine: Engine) -> None:
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
