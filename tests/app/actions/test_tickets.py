"""The customer's tickets: the list with its buttons, add information, it's fixed, reopen."""

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import patch

import pytest
from rasa_sdk.executor import ActionExecutor, CollectingDispatcher
from sqlalchemy import Engine

from actions.ticket_requests import (
    ActionTicketAddInfo,
    ActionTicketConfirmFixed,
    ActionTicketReopen,
    ValidateTicketInfoForm,
    information_in,
)
from actions.tickets import ActionTicketProgress
from bot.casework import CaseWork
from bot.core.db import TicketEventKind, TicketStatus, session_factory
from bot.core.db.models import TicketEvent
from bot.customers import CustomerDirectory
from bot.service.policy import load_policy
from bot.service.tickets import TicketStore
from tests.app.conftest import draft, make_tracker


@pytest.fixture
def directory(engine: Engine) -> Iterator[CustomerDirectory]:
    directory = CustomerDirectory(engine)
    work = CaseWork(engine, load_policy(), directory)
    with ExitStack() as stack:
        stack.enter_context(patch("actions.tickets.customer_directory", return_value=directory))
        stack.enter_context(patch("actions.tickets.ticket_store", return_value=TicketStore(engine)))
        stack.enter_context(patch("actions.tickets.case_work", return_value=work))
        stack.enter_context(patch("actions.ticket_requests.case_work", return_value=work))
        yield directory


def open_ticket(engine: Engine, customer: str) -> str:
    store = TicketStore(engine)
    record_id = store.save_record(draft(customer))
    return store.confirm(record_id, at=datetime.now(UTC)).number


def resolve(engine: Engine, number: str, days_ago: float = 0) -> None:
    store = TicketStore(engine)
    at = datetime.now(UTC) - timedelta(days=days_ago)
    store.transition(number, TicketStatus.in_progress, actor="li", at=at)
    store.transition(number, TicketStatus.resolved, actor="li", at=at)


def status(engine: Engine, number: str) -> TicketStatus:
    ticket = TicketStore(engine).find(number)
    assert ticket is not None
    return ticket.status


def tracker_for(
    sender: str,
    text: str,
    intent: str,
    *,
    number: str | None = None,
    slots: dict[str, Any] | None = None,
    previous: str | None = None,
) -> Any:
    entities = [{"entity": "ticket_number", "value": number}] if number else []
    events = [{"event": "action", "name": previous}] if previous else []
    tracker = make_tracker(text, intent, slots=slots, entities=entities, events=events)
    tracker.sender_id = sender
    return tracker


async def run(action: Any, tracker: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tracker, {})
    return dispatcher.messages, {e["name"]: e["value"] for e in events if e["event"] == "slot"}


async def progress(sender: str, number: str | None) -> list[dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker("工单进度", "ticket_progress", slots={"ticket_number": number})
    tracker.sender_id = sender
    await ActionTicketProgress().run(dispatcher, tracker, {})
    return dispatcher.messages


def payloads(message: dict[str, Any]) -> list[str]:
    return [button["payload"] for button in message.get("buttons") or []]


async def test_a_ticket_number_gives_others_the_status_only(
    engine: Engine, directory: CustomerDirectory
) -> None:
    number = open_ticket(engine, "web:owner")
    [theirs] = await progress("web:stranger", number)
    assert theirs["response"] == "utter_ticket_status" and theirs["summary"] == ""
    assert payloads(theirs) == []  # no actions on someone else's ticket
    [own] = await progress("web:owner", number)
    assert "左耳" in own["summary"] and payloads(own)


async def test_linked_identities_are_the_same_customer(
    engine: Engine, directory: CustomerDirectory
) -> None:
    number = open_ticket(engine, "shop:5")
    directory.link_shop_login("web:phone", "shop:5")
    [by_number] = await progress("web:phone", number)
    assert "左耳" in by_number["summary"]
    [listed] = await progress("web:phone", None)  # the customer's own tickets, any channel
    assert listed["ticket_number"] == number and "左耳" in listed["summary"]


async def test_the_list_offers_what_each_ticket_allows(
    engine: Engine, directory: CustomerDirectory
) -> None:
    old = open_ticket(engine, "web:c")
    resolve(engine, old, days_ago=9)  # too long ago to reopen
    done = open_ticket(engine, "web:c")
    resolve(engine, done)
    open_one = open_ticket(engine, "web:c")
    messages = await progress("web:c", None)
    by_number = {m["ticket_number"]: m for m in messages}
    assert payloads(by_number[open_one]) == [f'/ticket_add_info{{"ticket_number": "{open_one}"}}']
    assert payloads(by_number[done]) == [
        f'/ticket_confirm_fixed{{"ticket_number": "{done}"}}',
        f'/ticket_reopen{{"ticket_number": "{done}"}}',
    ]
    assert payloads(by_number[old]) == [f'/ticket_confirm_fixed{{"ticket_number": "{old}"}}']
    assert by_number[open_one]["next_step"] == "等待客服接手"
    assert by_number[done]["due"] == "-"


@pytest.mark.parametrize(
    ("text", "info"),
    [
        ("补充一下：耳机是上周三收到的", "耳机是上周三收到的"),
        ("补充下 耳机寄回去了 单号SF1234567890", "耳机寄回去了 单号SF1234567890"),
        ("我要补充信息", ""),
        ("我想给工单补充点情况", ""),
        ("补充一下", ""),
        ("add information to my ticket", ""),
        ("additional info for my ticket: it flickers now", "it flickers now"),
        ('/ticket_add_info{"ticket_number": "TK202611200003"}', ""),
        ("工单TK202611200003补充：屏幕也有划痕", "屏幕也有划痕"),
    ],
)  # fmt: skip
def test_information_in(text: str, info: str) -> None:
    assert information_in(text) == info


async def test_information_in_the_message_goes_on_the_only_open_ticket(
    engine: Engine, directory: CustomerDirectory
) -> None:
    number = open_ticket(engine, "web:c")
    messages, slots = await run(
        ActionTicketAddInfo(), tracker_for("web:c", "补充一下：下午都方便接电话", "ticket_add_info")
    )
    assert messages[0]["response"] == "utter_ticket_info_added"
    assert messages[0]["ticket_number"] == number and slots["ticket_step"] == "done"
    with session_factory(engine)() as session:
        notes = [
            e.note
            for e in session.query(TicketEvent).filter(TicketEvent.kind == TicketEventKind.customer)
        ]
    assert notes == ["下午都方便接电话"]


async def test_without_the_text_the_form_asks_for_it_then_adds_it(
    engine: Engine, directory: CustomerDirectory
) -> None:
    number = open_ticket(engine, "web:c")
    messages, slots = await run(
        ActionTicketAddInfo(), tracker_for("web:c", "我要补充信息", "ticket_add_info")
    )
    assert messages == [] and slots == {
        "ticket_step": "ask_info",
        "ticket_pending": number,
        "ticket_info": None,
    }
    form = ValidateTicketInfoForm()
    typed = tracker_for("web:c", "我周末不在家", "inform", slots=slots)
    assert await form.validate_ticket_info("我周末不在家", CollectingDispatcher(), typed, {}) == {
        "ticket_info": "我周末不在家"
    }
    done = tracker_for(
        "web:c", "我周末不在家", "inform",
        slots={**slots, "ticket_info": "我周末不在家"}, previous="ticket_info_form",
    )  # fmt: skip
    messages, slots = await run(ActionTicketAddInfo(), done)
    assert messages[0]["response"] == "utter_ticket_info_added"


async def test_cancelling_the_form_adds_nothing(
    engine: Engine, directory: CustomerDirectory
) -> None:
    number = open_ticket(engine, "web:c")
    form = ValidateTicketInfoForm()
    cancel = tracker_for("web:c", "算了", "deny")
    assert await form.validate_ticket_info("算了", CollectingDispatcher(), cancel, {}) == {
        "ticket_info": None,
        "requested_slot": None,
    }
    ended = tracker_for(
        "web:c", "算了", "deny", slots={"ticket_pending": number}, previous="ticket_info_form"
    )
    messages, _ = await run(ActionTicketAddInfo(), ended)
    assert messages[0]["response"] == "utter_ticket_info_cancelled"


async def test_several_open_tickets_are_offered_and_the_text_kept_for_the_pick(
    engine: Engine, directory: CustomerDirectory
) -> None:
    first = open_ticket(engine, "web:c")
    second = open_ticket(engine, "web:c")
    messages, slots = await run(
        ActionTicketAddInfo(), tracker_for("web:c", "补充：屏幕也有划痕", "ticket_add_info")
    )
    assert messages[0]["response"] == "utter_clarify_which_ticket"
    assert {second, first} == {p.split('"')[3] for p in payloads(messages[0])}
    assert slots["ticket_info"] == "屏幕也有划痕"
    pick = tracker_for(
        "web:c", f'/ticket_add_info{{"ticket_number": "{first}"}}', "ticket_add_info",
        number=first, slots=slots, previous="action_ticket_add_info",
    )  # fmt: skip
    messages, _ = await run(ActionTicketAddInfo(), pick)
    assert messages[0]["response"] == "utter_ticket_info_added"
    assert messages[0]["ticket_number"] == first


async def test_no_open_ticket_gets_a_question_not_a_change(
    engine: Engine, directory: CustomerDirectory
) -> None:
    messages, _ = await run(
        ActionTicketAddInfo(), tracker_for("web:nobody", "补充一下：还是不亮", "ticket_add_info")
    )
    assert messages[0]["response"] == "utter_clarify_no_ticket"


async def test_it_is_fixed_asks_first_then_closes_on_yes(
    engine: Engine, directory: CustomerDirectory
) -> None:
    number = open_ticket(engine, "web:c")
    resolve(engine, number)
    messages, slots = await run(
        ActionTicketConfirmFixed(), tracker_for("web:c", "好了 已经解决了", "ticket_confirm_fixed")
    )
    assert messages[0]["response"] == "utter_clarify_ticket_fixed"
    assert status(engine, number) == TicketStatus.resolved  # nothing changed yet
    assert slots["ticket_step"] == "confirm_fixed" and slots["ticket_pending"] == number
    yes = tracker_for(
        "web:c", "是的", "affirm", slots=slots, previous="action_ticket_confirm_fixed"
    )
    messages, slots = await run(ActionTicketConfirmFixed(), yes)
    assert messages[0]["response"] == "utter_ticket_closed"
    assert status(engine, number) == TicketStatus.closed


async def test_no_leaves_the_ticket_as_it_is(engine: Engine, directory: CustomerDirectory) -> None:
    number = open_ticket(engine, "web:c")
    resolve(engine, number)
    _, slots = await run(
        ActionTicketConfirmFixed(), tracker_for("web:c", "it's fixed", "ticket_confirm_fixed")
    )
    no = tracker_for("web:c", "不是", "deny", slots=slots, previous="action_ticket_confirm_fixed")
    messages, _ = await run(ActionTicketConfirmFixed(), no)
    assert messages[0]["response"] == "utter_ticket_unchanged"
    assert status(engine, number) == TicketStatus.resolved


async def test_a_button_with_the_number_acts_at_once_and_a_stranger_is_refused(
    engine: Engine, directory: CustomerDirectory
) -> None:
    number = open_ticket(engine, "web:c")
    resolve(engine, number)
    payload = f'/ticket_reopen{{"ticket_number": "{number}"}}'
    messages, _ = await run(
        ActionTicketReopen(), tracker_for("web:other", payload, "ticket_reopen", number=number)
    )
    assert messages[0]["response"] == "utter_ticket_not_found"
    assert status(engine, number) == TicketStatus.resolved
    messages, slots = await run(
        ActionTicketReopen(), tracker_for("web:c", payload, "ticket_reopen", number=number)
    )
    assert messages[0]["response"] == "utter_ticket_reopened" and messages[0]["due"] != "-"
    assert status(engine, number) == TicketStatus.in_progress and slots["ticket_step"] == "done"


async def test_reopening_after_the_window_is_explained(
    engine: Engine, directory: CustomerDirectory
) -> None:
    number = open_ticket(engine, "web:c")
    resolve(engine, number, days_ago=8)
    messages, _ = await run(
        ActionTicketReopen(),
        tracker_for("web:c", f"{number}重新打开", "ticket_reopen", number=number),
    )
    assert messages[0]["response"] == "utter_ticket_not_changed"
    assert "7 天" in messages[0]["reason"]
    typed = tracker_for("web:c", "问题还没解决 重新处理一下", "ticket_reopen")
    messages, _ = await run(ActionTicketReopen(), typed)
    assert messages[0]["response"] == "utter_clarify_no_ticket"  # nothing reopenable: ask


async def test_it_is_fixed_without_a_resolved_ticket_only_asks_what_else(
    engine: Engine, directory: CustomerDirectory
) -> None:
    open_ticket(engine, "web:c")
    messages, slots = await run(
        ActionTicketConfirmFixed(), tracker_for("web:c", "好了 已经解决了", "ticket_confirm_fixed")
    )
    assert messages[0]["response"] == "utter_anything_else"
    assert slots["ticket_step"] == "done"


def test_the_action_server_registers_every_ticket_action() -> None:
    executor = ActionExecutor()
    executor.register_package("actions")  # an abstract base without a name would raise
    for name in (
        "action_ticket_progress",
        "action_ticket_add_info",
        "action_ticket_confirm_fixed",
        "action_ticket_reopen",
        "validate_ticket_info_form",
    ):
        assert name in executor.actions
