"""SPIN elicitation, need confirmation, tickets and guided flows in the action server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import date
from typing import Any
from unittest.mock import patch

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import Engine

from actions.confirmation import (
    ActionAskCorrection,
    ActionConfirmNeed,
    ActionOpenTicket,
    ActionStartCorrection,
)
from actions.flows import ActionAskFlowReply, ActionFlowOutcome, read_flow_turn
from actions.knowledge import ActionKbFeedback, KbResult
from actions.service_plan import SKIPPED
from actions.spin import ValidateSpinForm, read_spin_turn
from actions.tickets import ActionTicketProgress
from bot.casework import CaseWork
from bot.core.db import KbOutcome, TicketStatus
from bot.customers import CustomerDirectory
from bot.service.orders import OrderStore, demo_orders
from bot.service.policy import load_policy
from bot.service.tickets import TicketStore
from tests.app.conftest import make_tracker, user_event

TODAY = date(2026, 11, 22)


@pytest.fixture
def tickets(engine: Engine) -> Iterator[TicketStore]:
    """The actions' ticket and order stores on the test database."""
    store = TicketStore(engine)
    orders = OrderStore(engine)
    with ExitStack() as stack:
        for module in ("actions.confirmation", "actions.tickets"):
            stack.enter_context(patch(f"{module}.ticket_store", return_value=store))
        for module in ("actions.confirmation", "actions.flows"):
            stack.enter_context(patch(f"{module}.order_store", return_value=orders))
        directory = CustomerDirectory(engine)
        for module in ("actions.confirmation", "actions.tickets"):
            stack.enter_context(patch(f"{module}.customer_directory", return_value=directory))
        work = CaseWork(engine, load_policy(), directory)
        stack.enter_context(patch("actions.tickets.case_work", return_value=work))
        yield store


@pytest.fixture(autouse=True)
def demo_orders_in_memory() -> Iterator[None]:
    """The SPIN form looks up order products; these tests read the demo orders from memory."""
    orders = {order.number: order for order in demo_orders(TODAY)}
    store = type("Orders", (), {"find": staticmethod(orders.get)})()
    with patch("actions.spin.order_store", return_value=store):
        yield


def slots_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def spin_tracker(text: str, intent: str, requested: str | None, **slots: Any) -> Tracker:
    entities = slots.pop("entities", None)
    return make_tracker(
        text, intent, slots={"requested_slot": requested, **slots}, entities=entities
    )


# --- reading SPIN answers ----------------------------------------------------------------------


def test_opening_message_answers_every_stage_it_covers() -> None:
    tracker = spin_tracker(
        "订单KF202611200002的笔记本屏幕有坏点，影响我上班用，我要换货",
        "complain",
        None,
        entities=[{"entity": "order_number", "value": "KF202611200002"}],
    )
    updates = read_spin_turn(tracker, CollectingDispatcher(), TODAY)
    assert updates["spin_category"] == "complaint"
    assert updates["spin_situation"] == "KF202611200002"
    assert "坏点" in updates["spin_problem"] and "换货" not in updates["spin_problem"]
    assert "上班" in updates["spin_implication"]
    assert updates["spin_impacts"] == ["business"]
    assert updates["spin_need_payoff"] == "replacement"


def test_an_answer_is_recorded_as_what_it_says_not_as_the_question_asked() -> None:
    """The bot asked for the impact; the customer described the problem and since when."""
    tracker = spin_tracker(
        "左耳没声音，从前天开始", "complain", "spin_implication", spin_problem="耳机坏了"
    )
    updates = read_spin_turn(tracker, CollectingDispatcher(), TODAY)
    assert "spin_implication" not in updates
    assert "左耳没声音" in updates["spin_problem"] and "耳机坏了" in updates["spin_problem"]
    assert updates["spin_problem_since"] == "2026-11-20"
    impact = read_spin_turn(
        spin_tracker("影响我上班开会", "complain", "spin_implication"),
        CollectingDispatcher(),
        TODAY,
    )
    assert impact["spin_implication"] == "影响我上班开会"
    assert impact["spin_impacts"] == ["business"]


def test_an_order_given_earlier_in_the_session_is_carried_into_the_form() -> None:
    earlier = [user_event("where is my order KF202611200002", "order_status")]
    tracker = make_tracker(
        "I want to complain",
        "complain",
        slots={"order_number": "KF202611200002", "requested_slot": None},
        events=earlier,
    )
    updates = read_spin_turn(tracker, CollectingDispatcher(), TODAY)
    assert updates["spin_situation"] == "KF202611200002"


def test_a_product_that_is_not_the_orders_product_is_asked_about() -> None:
    tracker = spin_tracker(
        "订单号KF202611200003 耳机左耳没声音",
        "complain",
        "spin_situation",
        spin_product="耳机",
        entities=[{"entity": "order_number", "value": "KF202611200003"}],
    )
    updates = read_spin_turn(tracker, CollectingDispatcher(), TODAY)
    assert updates["spin_situation"] == "KF202611200003"
    assert updates["spin_order_product"] == "Pulse Watch S3 智能手表"
    assert updates["spin_order_check"] is None
    slots = {**updates, "requested_slot": "spin_order_check", "order_number": "KF202611200003"}
    confirmed = read_spin_turn(
        make_tracker("对 就是这个", "affirm", slots=slots), CollectingDispatcher(), TODAY
    )
    assert confirmed["spin_order_check"] == "confirmed"
    changed = read_spin_turn(
        make_tracker("不是这个", "deny", slots=slots), CollectingDispatcher(), TODAY
    )
    assert changed["spin_order_check"] == "changed"
    assert changed["order_number"] is None and changed["spin_situation"] == "耳机"


def test_the_orders_own_product_raises_no_question() -> None:
    tracker = spin_tracker(
        "KF202611200001 耳机有杂音",
        "complain",
        None,
        entities=[{"entity": "order_number", "value": "KF202611200001"}],
    )
    updates = read_spin_turn(tracker, CollectingDispatcher(), TODAY)
    assert "spin_order_product" not in updates or not updates["spin_order_product"]


def test_a_bare_opener_is_not_taken_as_the_problem() -> None:
    updates = read_spin_turn(
        spin_tracker("我要投诉", "complain", None), CollectingDispatcher(), TODAY
    )
    assert updates["spin_category"] == "complaint"
    assert "spin_problem" not in updates


def test_a_product_named_answers_the_situation() -> None:
    tracker = spin_tracker("充电宝充电的时候冒烟了！", "urgent_issue", None)
    updates = read_spin_turn(tracker, CollectingDispatcher(), TODAY)
    assert updates["spin_category"] == "urgent"
    assert updates["spin_situation"] == "充电宝"
    assert updates["spin_implication"] == "安全隐患"  # a real hazard is its own impact
    assert "safety" in updates["spin_impacts"]


@pytest.mark.parametrize(
    ("text", "intent"), [("不知道", "skip"), ("skip", "skip"), ("算了", "deny")]
)
def test_skip_records_the_stage_as_declined(text: str, intent: str) -> None:
    updates = read_spin_turn(
        spin_tracker(text, intent, "spin_situation"), CollectingDispatcher(), TODAY
    )
    assert updates["spin_situation"] == SKIPPED
    assert updates["spin_skipped"] == ["spin_situation"]


def test_no_to_the_impact_question_is_an_answer_not_a_skip() -> None:
    updates = read_spin_turn(
        spin_tracker("没有", "deny", "spin_implication"), CollectingDispatcher(), TODAY
    )
    assert updates["spin_implication"] == "无特别影响"
    assert "spin_skipped" not in updates


def test_a_different_question_makes_the_form_step_aside() -> None:
    tracker = make_tracker(
        "电子发票在哪里下载", "invoice", 0.95, slots={"requested_slot": "spin_problem"}
    )
    assert read_spin_turn(tracker, CollectingDispatcher(), TODAY) == {}
    human = make_tracker("转人工", "ask_human", 0.5, slots={"requested_slot": "spin_problem"})
    assert read_spin_turn(human, CollectingDispatcher(), TODAY) == {}


def test_a_malformed_order_number_is_explained_then_a_human_offered() -> None:
    dispatcher = CollectingDispatcher()
    updates = read_spin_turn(spin_tracker("KF2026", "inform", "spin_situation"), dispatcher, TODAY)
    assert "spin_situation" not in updates
    assert dispatcher.messages[0]["response"] == "utter_invalid_order_number"
    dispatcher = CollectingDispatcher()
    read_spin_turn(
        spin_tracker("KF2026", "inform", "spin_situation", invalid_order_number_attempts=1),
        dispatcher,
        TODAY,
    )
    assert dispatcher.messages[0]["response"] == "utter_invalid_order_number_offer_human"


def test_a_future_start_date_is_asked_again() -> None:
    dispatcher = CollectingDispatcher()
    updates = read_spin_turn(
        spin_tracker("12月5日开始坏的", "complain", "spin_problem"), dispatcher, TODAY
    )
    assert "spin_problem" not in updates
    assert dispatcher.messages[0]["response"] == "utter_spin_future_date"


def test_problem_answer_keeps_since_when() -> None:
    updates = read_spin_turn(
        spin_tracker("右耳没声音，前天开始的", "complain", "spin_problem"),
        CollectingDispatcher(),
        TODAY,
    )
    assert updates["spin_problem"] == "右耳没声音，前天开始的"
    assert updates["spin_problem_since"] == "2026-11-20"


def test_unclear_outcome_is_asked_again_with_the_options() -> None:
    dispatcher = CollectingDispatcher()
    updates = read_spin_turn(spin_tracker("嗯嗯", "affirm", "spin_need_payoff"), dispatcher, TODAY)
    assert "spin_need_payoff" not in updates
    assert dispatcher.messages[0]["response"] == "utter_spin_need_payoff_unclear"


async def test_call_back_adds_the_contact_time_question() -> None:
    form = ValidateSpinForm()
    tracker = spin_tracker("x", "choose", None, spin_need_payoff="call_back")
    slots = await form.required_slots([], CollectingDispatcher(), tracker, {})
    # asked right after the problem: whoever wants a call thinks of the time next
    assert slots == [
        "spin_situation",
        "spin_problem",
        "spin_contact_time",
        "spin_implication",
        "spin_need_payoff",
    ]
    tracker = spin_tracker("x", "choose", None, spin_need_payoff="refund")
    assert "spin_contact_time" not in await form.required_slots(
        [], CollectingDispatcher(), tracker, {}
    )


# --- confirmation, corrections, tickets --------------------------------------------------------

NEED = {
    "spin_category": "complaint",
    "spin_situation": "KF202611200001",
    "spin_problem": "右耳没声音",
    "spin_implication": "通勤路上没法用，耽误时间",
    "spin_need_payoff": "replacement",
    "spin_notes": ["我要投诉", "右耳没声音", "通勤路上没法用，耽误时间，不要打电话"],
}


async def confirm(text: str, intent: str, **slots: Any) -> tuple[CollectingDispatcher, dict]:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(text, intent, slots={**NEED, **slots})
    events = await ActionConfirmNeed().run(dispatcher, tracker, {})
    return dispatcher, slots_of(events)


async def test_confirmation_summarises_need_next_step_and_due_time(tickets: TicketStore) -> None:
    dispatcher, slots = await confirm("换货", "choose")
    message = dispatcher.messages[0]
    assert message["response"] == "utter_need_confirmation"
    body = message["summary"]
    for part in ("KF202611200001", "AuraSound", "右耳没声音", "换货", "一般投诉", "承诺时间"):
        assert part in body, part
    assert "不要打电话" in body  # a special request
    record = tickets.get_record(int(slots["spin_record_id"]))
    assert record is not None and record.completeness == 1.0
    assert record.complaint_grade is not None and record.complaint_grade.value == "general"
    assert record.due_at - record.created_at == (record.due_at - record.created_at)


async def test_confirmed_need_becomes_a_ticket_and_the_need_is_forgotten(
    tickets: TicketStore,
) -> None:
    _, slots = await confirm("换货", "choose")
    dispatcher = CollectingDispatcher()
    tracker = make_tracker("对的", "affirm", slots={**NEED, **slots})
    events = slots_of(await ActionOpenTicket().run(dispatcher, tracker, {}))
    message = dispatcher.messages[0]
    assert message["response"] == "utter_ticket_opened"
    ticket = tickets.find(message["ticket_number"])
    assert ticket is not None and ticket.status == TicketStatus.open
    assert events["spin_record_id"] is None and events["spin_problem"] is None


async def test_correction_in_the_same_message_is_applied_and_shown_again(
    tickets: TicketStore,
) -> None:
    _, slots = await confirm("换货", "choose")
    dispatcher = CollectingDispatcher()
    tracker = make_tracker("不对，我要退款", "deny", slots={**NEED, **slots})
    events = slots_of(await ActionAskCorrection().run(dispatcher, tracker, {}))
    assert events["spin_need_payoff"] == "refund" and events["spin_corrections"] == 1
    assert dispatcher.messages[0]["response"] == "utter_need_confirmation"
    record = tickets.get_record(int(slots["spin_record_id"]))
    assert record is not None and record.need_payoff == "refund"


async def test_plain_no_asks_which_part_and_the_pick_clears_it(tickets: TicketStore) -> None:
    _, slots = await confirm("换货", "choose")
    dispatcher = CollectingDispatcher()
    tracker = make_tracker("不对", "deny", slots={**NEED, **slots})
    await ActionAskCorrection().run(dispatcher, tracker, {})
    assert dispatcher.messages[0]["response"] == "utter_ask_correction_field"
    pick = make_tracker(
        '/choose{"choice": "spin_problem"}',
        "choose",
        slots=NEED,
        entities=[{"entity": "choice", "value": "spin_problem"}],
    )
    events = await ActionStartCorrection().run(CollectingDispatcher(), pick, {})
    assert SlotSet("spin_problem", None) in events


async def test_after_three_corrections_an_agent_takes_over(tickets: TicketStore) -> None:
    _, slots = await confirm("换货", "choose")
    dispatcher = CollectingDispatcher()
    tracker = make_tracker("还是不对", "deny", slots={**NEED, **slots, "spin_corrections": 3})
    await ActionAskCorrection().run(dispatcher, tracker, {})
    message = dispatcher.messages[-1]
    assert message["response"] == "utter_correction_limit"
    ticket = tickets.find(message["ticket_number"])
    assert ticket is not None and ticket.status == TicketStatus.pending_agent


async def test_ticket_progress_by_customer_and_by_number(tickets: TicketStore) -> None:
    _, slots = await confirm("换货", "choose")
    opened = CollectingDispatcher()
    await ActionOpenTicket().run(opened, make_tracker("对", "affirm", slots=slots), {})
    number = opened.messages[0]["ticket_number"]

    dispatcher = CollectingDispatcher()
    await ActionTicketProgress().run(
        dispatcher, make_tracker("我的工单进度", "ask_ticket_progress"), {}
    )
    message = dispatcher.messages[0]
    assert message["response"] == "utter_ticket_status"
    assert message["ticket_number"] == number and message["status"] == "已受理"
    assert message["next_step"] == "等待客服接手"
    assert [b["payload"] for b in message["buttons"]] == [
        f'/ticket_add_info{{"ticket_number": "{number}"}}'
    ]

    dispatcher = CollectingDispatcher()
    tracker = make_tracker("ticket status", "ask_ticket_progress", slots={"ticket_number": number})
    await ActionTicketProgress().run(dispatcher, tracker, {})
    assert dispatcher.messages[0]["ticket_number"] == number

    dispatcher = CollectingDispatcher()
    stranger = Tracker(
        "someone-else", {"language": "en"}, {"intent": {}}, [], False, None, None, ""
    )
    nothing = KbResult(KbOutcome.no_answer, [], "")
    with patch("actions.knowledge.kb_log"), patch("actions.knowledge.lookup", return_value=nothing):
        await ActionTicketProgress().run(dispatcher, stranger, {})
    assert dispatcher.messages[0]["response"] == "utter_no_tickets"


# --- guided flows ------------------------------------------------------------------------------


async def test_unsolved_logistics_answer_starts_the_logistics_flow() -> None:
    earlier = [user_event("快递显示签收了但我没收到", "logistics_issue")]
    tracker = make_tracker("没解决", "deny", slots={"kb_outcome": "answered"}, events=earlier)
    with patch("actions.knowledge.kb_log"):
        events = await ActionKbFeedback().run(CollectingDispatcher(), tracker, {})
    assert SlotSet("flow_name", "logistics") in events


async def test_flow_walks_from_the_order_to_a_ticket_that_prefills_spin(
    tickets: TicketStore,
) -> None:
    slots = {"flow_name": "logistics", "requested_slot": None, "order_number": "KF202611200002"}
    start = await read_flow_turn(
        make_tracker("没解决", "deny", slots=slots), CollectingDispatcher()
    )
    assert start["flow_node"] == "ask_received"  # KF...0002 is delivered
    asked = CollectingDispatcher()
    at_question = {**slots, **start, "requested_slot": "flow_reply"}
    await ActionAskFlowReply().run(asked, make_tracker("", "deny", slots=at_question), {})
    assert asked.messages[-1]["buttons"]
    reply = await read_flow_turn(
        make_tracker("没收到", "deny", slots=at_question), CollectingDispatcher()
    )
    assert reply["flow_node"] in ("ask_lost_remedy",) or reply["flow_reply"]


async def test_flow_reply_matching_no_option_is_asked_again() -> None:
    slots = {"flow_name": "returns", "requested_slot": None}
    start = await read_flow_turn(
        make_tracker("没解决", "deny", slots=slots), CollectingDispatcher()
    )
    dispatcher = CollectingDispatcher()
    at_question = {**slots, **start, "requested_slot": "flow_reply"}
    updates = await read_flow_turn(
        make_tracker("紫色的", "out_of_scope", 0.3, slots=at_question), dispatcher
    )
    assert updates == {"flow_node": start["flow_node"]}
    assert dispatcher.messages[0]["response"] == "utter_flow_invalid_choice"


async def test_ticket_outcome_hands_the_need_to_spin() -> None:
    slots = {
        "flow_name": "logistics",
        "flow_node": "ticket_lost_refund",
        "order_number": "KF202611200002",
    }
    dispatcher = CollectingDispatcher()
    events = slots_of(
        await ActionFlowOutcome().run(dispatcher, make_tracker("退款", "choose", slots=slots), {})
    )
    assert events["flow_outcome_kind"] == "ticket"
    assert events["spin_need_payoff"] == "refund"
    assert events["spin_situation"] == "KF202611200002"
    assert events["spin_category"] == "logistics"
    assert "complaint" in events["spin_hints"]
    assert events["flow_name"] is None


async def test_no_at_a_question_without_a_no_option_leaves_the_flow() -> None:
    slots = {"flow_name": "returns", "requested_slot": None}
    start = await read_flow_turn(
        make_tracker("没解决", "deny", slots=slots), CollectingDispatcher()
    )
    at_question = {**slots, **start, "requested_slot": "flow_reply"}
    updates = await read_flow_turn(
        make_tracker("算了", "deny", slots=at_question), CollectingDispatcher()
    )
    assert updates == {"flow_reply": "stopped"}
    dispatcher = CollectingDispatcher()
    events = slots_of(
        await ActionFlowOutcome().run(
            dispatcher, make_tracker("算了", "deny", slots=at_question), {}
        )
    )
    assert dispatcher.messages[0]["response"] == "utter_anything_else"
    assert events["flow_name"] is None


async def test_an_impact_read_from_the_problem_is_shown_by_its_kind(tickets: TicketStore) -> None:
    text = "订单KF202611200002的笔记本屏幕有坏点，影响我上班用，我要换货"
    dispatcher, _ = await confirm(
        text, "complain", spin_problem=text, spin_implication=text, spin_impacts=["business"]
    )
    assert "影响：影响工作或学习" in dispatcher.messages[0]["summary"]


async def test_unsolved_product_answer_starts_a_record_of_the_problem() -> None:
    earlier = [user_event("耳机右耳突然没声音了怎么办", "product_question")]
    tracker = make_tracker("没解决", "deny", slots={"kb_outcome": "answered"}, events=earlier)
    dispatcher = CollectingDispatcher()
    with patch("actions.knowledge.kb_log"):
        events = slots_of(await ActionKbFeedback().run(dispatcher, tracker, {}))
    assert dispatcher.messages[0]["response"] == "utter_spin_intro_problem"
    assert events["record_need"] is True and events["spin_category"] == "problem"
    assert events["spin_problem"] == "耳机右耳突然没声音了怎么办"
    assert events["spin_situation"] == "耳机"


def test_an_order_number_alone_does_not_answer_another_question() -> None:
    tracker = spin_tracker(
        "订单号KF202611200001",
        "inform",
        "spin_implication",
        entities=[{"entity": "order_number", "value": "KF202611200001"}],
    )
    updates = read_spin_turn(tracker, CollectingDispatcher(), TODAY)
    assert updates["spin_situation"] == "KF202611200001"
    assert "spin_implication" not in updates


async def test_someone_else_asking_by_number_sees_no_summary(tickets: TicketStore) -> None:
    _, slots = await confirm("换货", "choose")
    opened = CollectingDispatcher()
    await ActionOpenTicket().run(opened, make_tracker("对", "affirm", slots=slots), {})
    number = opened.messages[0]["ticket_number"]
    dispatcher = CollectingDispatcher()
    stranger = Tracker(
        "someone-else",
        {"language": "zh", "ticket_number": number},
        {"intent": {"name": "ask_ticket_progress"}},
        [],
        False,
        None,
        None,
        "",
    )
    await ActionTicketProgress().run(dispatcher, stranger, {})
    message = dispatcher.messages[0]
    assert message["ticket_number"] == number and message["summary"] == ""
    assert message["status"] == "已受理" and message["buttons"] == []
