"""Guided decision flows: the shipped trees (every route), replies, order facts, validation."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.core.db import Order, OrderStatus
from bot.core.settings import PROJECT_ROOT
from bot.flows.loading import default_flows_path, load_flows
from bot.flows.schema import FACT_NAMES, AskNode, CheckNode, Flow, FlowBook, FlowError, OutcomeNode
from bot.flows.walking import (
    Advance,
    Outcome,
    Question,
    Step,
    answer,
    facts_for_order,
    start,
    step_at,
)
from bot.service.orders import demo_orders
from knowledge_index.sources import load_entries

TODAY = date(2026, 11, 20)
STATUSES = [status.value for status in OrderStatus]


@pytest.fixture(scope="module")
def book() -> FlowBook:
    return load_flows()


def walk(
    flow: Flow, facts: dict[str, Any], *replies: str, language: str = "en"
) -> tuple[Step, list[str], dict[str, Any]]:
    """Starts the flow and answers each question in turn; returns the step, full path and facts."""
    step, path = start(flow, facts, language)
    facts = dict(facts)
    for reply in replies:
        assert isinstance(step, Question), f"expected a question before {reply!r}, got {step}"
        advance = answer(flow, step.node, reply, facts, language)
        assert advance is not None, f"{reply!r} matches no option of {step.node}"
        assert advance.path[0] == step.node
        path += advance.path[1:]
        step, facts = advance.step, advance.facts
    return step, path, facts


def outcome(flow: Flow, facts: dict[str, Any], *replies: str, language: str = "en") -> Outcome:
    step, _, _ = walk(flow, facts, *replies, language=language)
    assert isinstance(step, Outcome), step
    return step


# --- every route of the shipped flows, enumerated from the trees --------------------------------


@dataclass(frozen=True)
class Route:
    """One root-to-outcome route: the facts to start with and the option picked at each question."""

    flow: str
    given: tuple[tuple[str, Any], ...]
    replies: tuple[tuple[str, str], ...]
    path: tuple[str, ...]
    outcome: str
    branches: frozenset[tuple[str, str]]

    @property
    def id(self) -> str:
        facts = ",".join(f"{name}={value}" for name, value in self.given)
        replies = ",".join(option for _, option in self.replies)
        return f"{self.flow}:{self.outcome}[{facts}|{replies}]"


def branch(node: CheckNode, value: Any) -> tuple[str, str]:
    """(label, target) the documented rules pick for a fact value; independent of the engine."""
    for index, condition in enumerate(node.conditions):
        ((test, expected),) = condition.tests()
        if test == "is_known":
            holds = (value is not None) == expected
        elif value is None:
            holds = False
        elif test == "equals":
            holds = type(value) is type(expected) and value == expected
        elif test == "in":
            holds = any(type(value) is type(item) and value == item for item in expected)
        elif test == "at_most":
            holds = value <= expected
        else:
            holds = value >= expected
        if holds:
            return f"conditions[{index}]", condition.next
    if value is None and node.unknown is not None:
        return "unknown", node.unknown
    assert node.otherwise is not None
    return "otherwise", node.otherwise


def candidates(flow: Flow, fact: str) -> list[Any]:
    """Fact values that reach every branch: each status, or each number around every threshold."""
    if fact == "order_status":
        return [*STATUSES, None]
    if fact == "order_known":
        return [True, False, None]
    numbers: set[int] = set()
    for node in flow.nodes.values():
        if isinstance(node, CheckNode) and node.fact == fact:
            for condition in node.conditions:
                for _, value in condition.tests():
                    for number in value if isinstance(value, list) else [value]:
                        if isinstance(number, int) and not isinstance(number, bool):
                            numbers.update((number - 1, number, number + 1))
    return [*sorted(numbers), None]


def all_branches(flow: Flow) -> set[tuple[str, str]]:
    labels: set[tuple[str, str]] = set()
    for node_id, node in flow.nodes.items():
        if isinstance(node, CheckNode):
            labels.update((node_id, f"conditions[{i}]") for i in range(len(node.conditions)))
            labels.update((node_id, key) for key in ("unknown", "otherwise") if getattr(node, key))
        elif isinstance(node, AskNode):
            labels.update((node_id, f"options[{i}]") for i in range(len(node.options)))
    return labels


def routes(flow: Flow) -> Iterator[Route]:
    def visit(
        node_id: str,
        given: dict[str, Any],
        current: dict[str, Any],
        replies: tuple[tuple[str, str], ...],
        path: tuple[str, ...],
        branches: frozenset[tuple[str, str]],
    ) -> Iterator[Route]:
        node = flow.nodes[node_id]
        path = (*path, node_id)
        if isinstance(node, CheckNode):
            # Every candidate value, not one per branch: a later check may read the same fact.
            known = node.fact in current
            for value in [current[node.fact]] if known else candidates(flow, node.fact):
                label, target = branch(node, value)
                fixed = {node.fact: value}
                yield from visit(
                    target,
                    given if known else {**given, **fixed},
                    {**current, **fixed},
                    replies,
                    path,
                    branches | {(node_id, label)},
                )
        elif isinstance(node, AskNode):
            for index, option in enumerate(node.options):
                yield from visit(
                    option.next,
                    given,
                    {**current, **option.sets},
                    (*replies, (node_id, option.id)),
                    path,
                    branches | {(node_id, f"options[{index}]")},
                )
        else:
            yield Route(flow.name, tuple(given.items()), replies, path, node_id, branches)

    seen: set[tuple[Any, ...]] = set()
    for route in visit(flow.start, {}, {}, (), (), frozenset()):
        key = (route.path, route.replies, route.branches)
        if key not in seen:  # one route per distinct walk
            seen.add(key)
            yield route


SHIPPED_BOOK = load_flows()
ROUTES = [route for flow in SHIPPED_BOOK.flows.values() for route in routes(flow)]


def test_shipped_flows() -> None:
    assert set(SHIPPED_BOOK.flows) == {"logistics", "returns"}
    assert SHIPPED_BOOK.source == "data/service/flows.yml"
    assert default_flows_path() == PROJECT_ROOT / "data" / "service" / "flows.yml"


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("route", ROUTES, ids=[route.id for route in ROUTES])
def test_every_route(book: FlowBook, route: Route, language: str) -> None:
    flow = book.get(route.flow)
    facts = dict(route.given)
    step, path = start(flow, facts, language)
    walked = list(path)
    for node, option in route.replies:
        assert isinstance(step, Question)
        assert step.node == node
        assert step.text
        assert all(choice.title for choice in step.options)
        advance = answer(flow, node, option, facts, language)
        assert advance is not None
        assert advance.option.id == option
        walked += advance.path[1:]
        step, facts = advance.step, advance.facts
    assert isinstance(step, Outcome)
    assert step.node == route.outcome
    assert walked == list(route.path)
    assert step.message
    if step.kind == "ticket":
        assert step.category in ("logistics", "returns")
        assert step.need_payoff in ("refund", "replacement", "repair", "information", "call_back")
        assert step.problem
    else:
        assert step.category is step.need_payoff is step.problem is None


@pytest.mark.parametrize("name", ["logistics", "returns"])
def test_routes_cover_every_branch_and_outcome(book: FlowBook, name: str) -> None:
    flow = book.get(name)
    found = [route for route in ROUTES if route.flow == name]
    taken = frozenset().union(*(route.branches for route in found))
    assert taken == all_branches(flow), "a branch no fact value or answer can reach"
    outcomes = {node_id for node_id, node in flow.nodes.items() if isinstance(node, OutcomeNode)}
    assert {route.outcome for route in found} == outcomes


def test_outcomes_per_flow(book: FlowBook) -> None:
    def outcomes(name: str) -> dict[str, str]:
        return {
            node_id: node.kind
            for node_id, node in book.get(name).nodes.items()
            if isinstance(node, OutcomeNode)
        }

    assert outcomes("logistics") == {
        "ticket_lost_resend": "ticket",
        "ticket_lost_refund": "ticket",
        "ticket_delayed": "ticket",
        "ticket_wrong_item": "ticket",
        "ticket_safety": "ticket",
        "ticket_damaged_refund": "ticket",
        "ticket_damaged_replacement": "ticket",
        "ticket_damaged_repair": "ticket",
        "answer_out_of_warranty": "answer",
        "answer_received_ok": "answer",
        "answer_in_transit": "answer",
        "answer_not_shipped": "answer",
        "answer_awaiting_payment": "answer",
        "answer_refund_status": "answer",
    }
    assert outcomes("returns") == {
        "ticket_faulty_refund": "ticket",
        "ticket_faulty_replacement": "ticket",
        "ticket_repair": "ticket",
        "ticket_wrong_item": "ticket",
        "ticket_safety": "ticket",
        "answer_cancel_order": "answer",
        "answer_refuse_delivery": "answer",
        "answer_no_reason_return": "answer",
        "answer_after_7_days": "answer",
        "answer_not_returnable": "answer",
        "answer_out_of_warranty": "answer",
        "answer_refund_in_progress": "answer",
        "answer_cancelled": "answer",
    }


def test_kb_entries_exist_in_their_language(book: FlowBook) -> None:
    languages = {
        entry.id: entry.language for entry in load_entries(PROJECT_ROOT / "data/knowledge")
    }
    used = 0
    for flow in book.flows.values():
        for node_id, node in flow.nodes.items():
            if isinstance(node, OutcomeNode) and node.kb_entry is not None:
                for language in ("zh", "en"):
                    entry = node.kb_entry.get(language)
                    if entry is not None:
                        used += 1
                        assert languages.get(entry) == language, f"{flow.name}.{node_id}: {entry}"
    assert used > 20


# --- the business branches, by name --------------------------------------------------------------


def test_logistics_delivered_3_days_ago_damaged_wants_replacement(book: FlowBook) -> None:
    flow = book.get("logistics")
    facts = {"order_status": "delivered", "days_since_delivery": 3}
    step, path, _ = walk(flow, facts, "received", "damaged", "replacement")
    assert path == [
        "check_status",
        "ask_received",
        "ask_condition",
        "check_damage_window",
        "ask_damage_remedy",
        "ticket_damaged_replacement",
    ]
    assert isinstance(step, Outcome)
    assert (step.kind, step.need_payoff, step.category) == ("ticket", "replacement", "returns")
    assert outcome(flow, facts, "received", "damaged", "refund").need_payoff == "refund"


@pytest.mark.parametrize(
    ("days", "node", "payoff"),
    [
        (7, "ask_damage_remedy", None),
        (8, "ticket_damaged_replacement", "replacement"),
        (15, "ticket_damaged_replacement", "replacement"),
        (16, "ticket_damaged_repair", "repair"),
        (365, "ticket_damaged_repair", "repair"),
        (366, "answer_out_of_warranty", None),
    ],
)
def test_logistics_damage_windows(book: FlowBook, days: int, node: str, payoff: str | None) -> None:
    flow = book.get("logistics")
    facts = {"order_status": "delivered", "days_since_delivery": days}
    step, _, _ = walk(flow, facts, "received", "damaged")
    assert step.node == node
    assert getattr(step, "need_payoff", None) == payoff


def test_logistics_damage_date_unknown_is_asked(book: FlowBook) -> None:
    flow = book.get("logistics")
    step, _, _ = walk(flow, {"order_status": "delivered"}, "received", "damaged")
    assert step.node == "ask_delivery_age"
    assert outcome(flow, {}, "delivered", "affirm", "damaged", "8 to 15 days ago").node == (
        "ticket_damaged_replacement"
    )


def test_logistics_delivered_not_received(book: FlowBook) -> None:
    flow = book.get("logistics")
    lost = outcome(flow, {"order_status": "delivered"}, "deny", "refund")
    assert lost.node == "ticket_lost_refund"
    assert (lost.category, lost.need_payoff, lost.complaint) == ("logistics", "refund", "general")
    resend = outcome(flow, {"order_status": "delivered"}, "not_received", "resend")
    assert (resend.node, resend.need_payoff) == ("ticket_lost_resend", "replacement")


def test_logistics_shipped_3_days_past_eta_is_a_general_complaint(book: FlowBook) -> None:
    flow = book.get("logistics")
    step, path, _ = walk(flow, {"order_status": "shipped", "days_past_eta": 3})
    assert path == ["check_status", "check_eta", "ticket_delayed"]
    assert isinstance(step, Outcome)
    assert (step.kind, step.category, step.complaint) == ("ticket", "logistics", "general")
    assert step.need_payoff == "information"


@pytest.mark.parametrize("days", [1, 2, None])
def test_logistics_slightly_late_asks_about_tracking(book: FlowBook, days: int | None) -> None:
    flow = book.get("logistics")
    facts = {"order_status": "shipped", "days_past_eta": days}
    assert walk(flow, facts)[0].node == "ask_tracking_stalled"
    assert outcome(flow, facts, "affirm").node == "ticket_delayed"
    assert outcome(flow, facts, "deny").node == "answer_in_transit"


@pytest.mark.parametrize("days", [0, -1, -3])
def test_logistics_on_the_way(book: FlowBook, days: int) -> None:
    flow = book.get("logistics")
    answered = outcome(flow, {"order_status": "shipped", "days_past_eta": days})
    assert (answered.node, answered.kind, answered.kb_entry) == (
        "answer_in_transit",
        "answer",
        "shipping-delivery-time-en",
    )


@pytest.mark.parametrize(
    ("status", "node"),
    [
        ("paid", "answer_not_shipped"),
        ("pending_payment", "answer_awaiting_payment"),
        ("cancelled", "answer_refund_status"),
        ("refunding", "answer_refund_status"),
    ],
)
def test_logistics_not_on_the_road(book: FlowBook, status: str, node: str) -> None:
    assert outcome(book.get("logistics"), {"order_status": status}).node == node


def test_logistics_received_fine_wrong_item_and_safety(book: FlowBook) -> None:
    flow = book.get("logistics")
    facts = {"order_status": "delivered", "days_since_delivery": 1}
    assert outcome(flow, facts, "received", "all_fine").node == "answer_received_ok"
    wrong = outcome(flow, facts, "received", "wrong_or_missing")
    assert (wrong.node, wrong.need_payoff, wrong.complaint) == (
        "ticket_wrong_item",
        "replacement",
        "general",
    )
    safety = outcome(flow, facts, "received", "safety")
    assert (safety.urgency, safety.complaint, safety.need_payoff) == (
        "urgent",
        "major",
        "call_back",
    )


def test_logistics_unknown_status_asks_and_sets_the_fact(book: FlowBook) -> None:
    flow = book.get("logistics")
    step, path = start(flow, {}, "zh")
    assert path == ["check_status", "ask_parcel_state"]
    assert isinstance(step, Question)
    assert step.text == "物流信息显示包裹已经签收了吗？"
    assert [option.id for option in step.options] == ["delivered", "in_transit", "not_shipped"]
    advance = answer(flow, "ask_parcel_state", "还在运输途中", {}, "zh")
    assert isinstance(advance, Advance)
    assert advance.path == ["ask_parcel_state", "check_eta", "ask_tracking_stalled"]
    assert advance.facts["order_status"] == "shipped"
    assert advance.option.title == "还在运输途中"
    assert outcome(flow, {}, "not_shipped").node == "answer_not_shipped"
    step, _, facts = walk(flow, {}, "delivered")
    assert (step.node, facts["order_status"]) == ("ask_received", "delivered")


def test_returns_unpaid_or_paid_cancels(book: FlowBook) -> None:
    flow = book.get("returns")
    for status in ("pending_payment", "paid"):
        answered = outcome(flow, {"order_status": status}, language="zh")
        assert (answered.node, answered.kb_entry) == (
            "answer_cancel_order",
            "orders-cancel-before-shipping",
        )


@pytest.mark.parametrize(
    ("status", "node"),
    [
        ("shipped", "answer_refuse_delivery"),
        ("refunding", "answer_refund_in_progress"),
        ("cancelled", "answer_cancelled"),
    ],
)
def test_returns_by_status(book: FlowBook, status: str, node: str) -> None:
    assert outcome(book.get("returns"), {"order_status": status}).node == node


def test_returns_delivered_3_days_ago_changed_mind(book: FlowBook) -> None:
    flow = book.get("returns")
    facts = {"order_status": "delivered", "days_since_delivery": 3}
    answered = outcome(flow, facts, "changed_mind")
    assert (answered.node, answered.kind, answered.kb_entry) == (
        "answer_no_reason_return",
        "answer",
        "returns-7day-no-reason-en",
    )
    assert "7 days" in answered.message


def test_returns_delivered_3_days_ago_faulty(book: FlowBook) -> None:
    flow = book.get("returns")
    facts = {"order_status": "delivered", "days_since_delivery": 3}
    refund = outcome(flow, facts, "faulty", "refund")
    assert (refund.node, refund.kind, refund.need_payoff) == (
        "ticket_faulty_refund",
        "ticket",
        "refund",
    )
    replacement = outcome(flow, facts, "faulty", "replacement")
    assert (replacement.node, replacement.need_payoff) == (
        "ticket_faulty_replacement",
        "replacement",
    )
    wrong = outcome(flow, facts, "wrong_item")
    assert (wrong.node, wrong.need_payoff, wrong.complaint) == (
        "ticket_wrong_item",
        "replacement",
        "general",
    )
    assert outcome(flow, facts, "safety").urgency == "urgent"


@pytest.mark.parametrize(
    ("days", "node"),
    [
        (0, "ask_reason_recent"),
        (7, "ask_reason_recent"),
        (8, "ask_reason_within_15_days"),
        (15, "ask_reason_within_15_days"),
        (16, "ask_faulty_late"),
        (400, "ask_faulty_late"),
        (None, "ask_delivery_age"),
    ],
)
def test_returns_windows(book: FlowBook, days: int | None, node: str) -> None:
    facts = {"order_status": "delivered", "days_since_delivery": days}
    assert walk(book.get("returns"), facts)[0].node == node


def test_returns_delivered_10_days_ago(book: FlowBook) -> None:
    flow = book.get("returns")
    facts = {"order_status": "delivered", "days_since_delivery": 10}
    assert outcome(flow, facts, "other").node == "answer_after_7_days"
    assert outcome(flow, facts, "faulty", "replacement").node == "ticket_faulty_replacement"
    repair = outcome(flow, facts, "faulty", "repair")
    assert (repair.node, repair.need_payoff, repair.complaint) == ("ticket_repair", "repair", None)


def test_returns_delivered_20_days_ago_not_defective_is_not_returnable(book: FlowBook) -> None:
    flow = book.get("returns")
    facts = {"order_status": "delivered", "days_since_delivery": 20}
    answered = outcome(flow, facts, "deny")
    assert (answered.node, answered.kind) == ("answer_not_returnable", "answer")
    assert outcome(flow, facts, "affirm").node == "ticket_repair"


def test_returns_after_a_year_is_paid_repair(book: FlowBook) -> None:
    flow = book.get("returns")
    facts = {"order_status": "delivered", "days_since_delivery": 400}
    answered = outcome(flow, facts, "faulty", language="zh")
    assert (answered.node, answered.kb_entry) == (
        "answer_out_of_warranty",
        "warranty-out-of-warranty",
    )


def test_returns_nothing_known_asks_step_by_step(book: FlowBook) -> None:
    flow = book.get("returns")
    step, path, facts = walk(flow, {}, "received", "longer", "faulty")
    assert path == [
        "check_status",
        "ask_order_state",
        "check_return_window",
        "ask_delivery_age",
        "ask_faulty_late",
        "check_warranty",
        "ask_within_warranty",
    ]
    assert step.node == "ask_within_warranty"
    assert facts["order_status"] == "delivered"
    assert outcome(flow, {}, "received", "longer", "faulty", "deny").node == (
        "answer_out_of_warranty"
    )
    assert outcome(flow, {}, "in_transit").node == "answer_refuse_delivery"
    assert outcome(flow, {}, "not_shipped").node == "answer_cancel_order"


# --- replies -------------------------------------------------------------------------------------

LATE = {"order_status": "delivered", "days_since_delivery": 20}


@pytest.mark.parametrize(
    ("reply", "option"),
    [
        ("not_faulty", "not_faulty"),
        ("NOT_FAULTY", "not_faulty"),
        ("3", "not_faulty"),
        ("３", "not_faulty"),
        (" 1 ", "faulty"),
        ("1。", "faulty"),
        ("没有质量问题", "not_faulty"),
        ("no, it works", "not_faulty"),
        ("No, it works!", "not_faulty"),
        ("冒烟、鼓包或过热", "safety"),
        ("affirm", "faulty"),
        ("deny", "not_faulty"),
    ],
)
@pytest.mark.parametrize("language", ["zh", "en"])
def test_reply_forms(book: FlowBook, reply: str, option: str, language: str) -> None:
    advance = answer(book.get("returns"), "ask_faulty_late", reply, LATE, language)
    assert advance is not None
    assert advance.option.id == option


@pytest.mark.parametrize("reply", ["maybe", "0", "4", "", "  ", "faulty item", "yes"])
def test_unmatched_reply_returns_none(book: FlowBook, reply: str) -> None:
    assert answer(book.get("returns"), "ask_faulty_late", reply, LATE, "en") is None


def test_affirm_or_deny_without_mapping_returns_none(book: FlowBook) -> None:
    facts = {"order_status": "delivered", "days_since_delivery": 1}
    assert answer(book.get("returns"), "ask_reason_recent", "affirm", facts, "en") is None
    assert answer(book.get("logistics"), "ask_parcel_state", "deny", {}, "en") is None
    assert answer(book.get("logistics"), "ask_parcel_state", "affirm", {}, "en") is not None


def test_answer_needs_an_ask_node(book: FlowBook) -> None:
    flow = book.get("returns")
    with pytest.raises(FlowError, match=r"returns\.nodes\.check_status: not an ask node"):
        answer(flow, "check_status", "1", {}, "en")
    with pytest.raises(FlowError, match="no node 'gone'"):
        answer(flow, "gone", "1", {}, "en")


def test_step_at(book: FlowBook) -> None:
    flow = book.get("returns")
    question = step_at(flow, "ask_faulty_late", "zh")
    assert isinstance(question, Question)
    assert question.text.startswith("签收已超过 15 天")
    assert [option.title for option in question.options] == [
        "有质量问题",
        "冒烟、鼓包或过热",
        "没有质量问题",
    ]
    ended = step_at(flow, "ticket_repair", "en")
    assert isinstance(ended, Outcome)
    assert (ended.kind, ended.category, ended.need_payoff) == ("ticket", "returns", "repair")
    assert ended.problem is not None and "warranty" in ended.problem
    assert step_at(flow, "check_status", "en") is None
    assert step_at(flow, "gone", "en") is None
    assert step_at(flow, None, "en") is None
    with pytest.raises(ValueError, match="language"):
        step_at(flow, "ticket_repair", "de")


def test_language_and_fact_types_are_checked(book: FlowBook) -> None:
    flow = book.get("returns")
    with pytest.raises(ValueError, match="language must be 'zh' or 'en'"):
        start(flow, {}, "fr")
    with pytest.raises(ValueError, match="fact 'days_since_delivery' must be a whole number"):
        start(flow, {"order_status": "delivered", "days_since_delivery": "3"}, "en")
    with pytest.raises(ValueError, match="fact 'order_status' must be one of"):
        start(flow, {"order_status": "lost"}, "en")
    with pytest.raises(ValueError, match="fact 'order_known' must be true or false"):
        start(flow, {"order_known": 1}, "en")
    step, _ = start(flow, {"order_status": OrderStatus.refunding, "extra": "kept"}, "en")
    assert step.node == "answer_refund_in_progress"
    advance = answer(flow, "ask_order_state", "2", {"extra": "kept"}, "en")
    assert advance is not None
    assert advance.facts["extra"] == "kept"


def test_book_get_unknown_flow(book: FlowBook) -> None:
    with pytest.raises(FlowError) as error:
        book.get("billing")
    assert str(error.value) == (
        "data/service/flows.yml: billing: no such flow (known: logistics, returns)"
    )


# --- facts from orders ---------------------------------------------------------------------------


def test_facts_for_demo_orders() -> None:
    orders = demo_orders(TODAY)
    seen = set()
    for order in orders:
        facts = facts_for_order(order, TODAY)
        assert set(facts) == set(FACT_NAMES)
        assert facts["order_known"] is True
        assert facts["order_status"] == order.status.value
        seen.add(facts["order_status"])
        if order.status == OrderStatus.delivered:
            assert facts["days_since_delivery"] == 1
        else:
            assert facts["days_since_delivery"] is None
        if order.status == OrderStatus.shipped:
            assert facts["days_past_eta"] in (-1, -2, -3)
        else:
            assert facts["days_past_eta"] is None
    assert seen == set(STATUSES)


def test_demo_orders_through_the_flows(book: FlowBook) -> None:
    by_status = {order.status: order for order in demo_orders(TODAY)}
    logistics, returns = book.get("logistics"), book.get("returns")

    def facts(status: OrderStatus) -> dict[str, Any]:
        return facts_for_order(by_status[status], TODAY)

    assert start(logistics, facts(OrderStatus.shipped), "en")[0].node == "answer_in_transit"
    assert start(logistics, facts(OrderStatus.delivered), "en")[0].node == "ask_received"
    assert start(returns, facts(OrderStatus.delivered), "en")[0].node == "ask_reason_recent"
    assert start(returns, facts(OrderStatus.paid), "en")[0].node == "answer_cancel_order"


def test_facts_for_no_order_and_late_order(book: FlowBook) -> None:
    assert facts_for_order(None, TODAY) == {
        "order_status": None,
        "days_since_delivery": None,
        "days_past_eta": None,
        "order_known": False,
    }
    late = Order(
        number="KF202610300001",
        customer_phone="13800000001",
        product_zh="耳机",
        product_en="Earbuds",
        amount_cents=100,
        status=OrderStatus.shipped,
        eta=date(2026, 11, 17),
        delivered_at=None,
        created_at=datetime(2026, 10, 30, 9, 0),
    )
    assert facts_for_order(late, TODAY)["days_past_eta"] == 3
    assert outcome(book.get("logistics"), facts_for_order(late, TODAY)).node == "ticket_delayed"
    delivered = Order(
        number="KF202610300002",
        customer_phone="13800000001",
        product_zh="耳机",
        product_en="Earbuds",
        amount_cents=100,
        status=OrderStatus.delivered,
        eta=None,
        delivered_at=datetime(2026, 11, 1, 23, 59),
        created_at=datetime(2026, 10, 30, 9, 0),
    )
    assert facts_for_order(delivered, TODAY)["days_since_delivery"] == 19


# --- a small hand-written flow: the condition kinds the shipped flows do not use ----------------

DEMO = """\
demo:
  title: {zh: 演示, en: Demo}
  start: known
  nodes:
    known:
      type: check
      fact: order_known
      conditions:
        - equals: true
          next: eta
        - equals: false
          next: done_unknown_order
      unknown: done_unknown_order
    eta:
      type: check
      fact: days_past_eta
      conditions:
        - is_known: false
          next: done_no_eta
        - in: [0, 1]
          next: done_about_now
        - equals: 5
          next: done_five
      otherwise: done_other
    done_unknown_order: {type: outcome, kind: answer, message: {zh: 未知订单, en: Unknown order}}
    done_no_eta: {type: outcome, kind: answer, message: {zh: 无预计时间, en: No ETA}}
    done_about_now: {type: outcome, kind: answer, message: {zh: 快到了, en: About now}}
    done_five: {type: outcome, kind: answer, message: {zh: 五天, en: Five days}}
    done_other: {type: outcome, kind: answer, message: {zh: 其他, en: Other}}
"""


@pytest.mark.parametrize(
    ("facts", "node"),
    [
        ({"order_known": True}, "done_no_eta"),
        ({"order_known": True, "days_past_eta": 0}, "done_about_now"),
        ({"order_known": True, "days_past_eta": 1}, "done_about_now"),
        ({"order_known": True, "days_past_eta": 5}, "done_five"),
        ({"order_known": True, "days_past_eta": 7}, "done_other"),
        ({"order_known": True, "days_past_eta": -1}, "done_other"),
        ({"order_known": False, "days_past_eta": 1}, "done_unknown_order"),
        ({}, "done_unknown_order"),
    ],
)
def test_condition_kinds(tmp_path: Path, facts: dict[str, Any], node: str) -> None:
    path = tmp_path / "flows.yml"
    path.write_text(DEMO, encoding="utf-8")
    flow = load_flows(path).get("demo")
    step, _ = start(flow, facts, "en")
    assert isinstance(step, Outcome)
    assert step.node == node
    assert step.kb_entry is None


# --- validation: every FlowError, from modified copies of the shipped file ----------------------


@pytest.fixture(scope="module")
def shipped_data() -> dict[str, Any]:
    """The shipped file as plain data, for tests to break copies of it."""
    data: dict[str, Any] = yaml.load(
        default_flows_path().read_text(encoding="utf-8"), Loader=yaml.CSafeLoader
    )
    return data


def nodes(data: dict[str, Any], flow: str = "returns") -> dict[str, Any]:
    result: dict[str, Any] = data[flow]["nodes"]
    return result


def options(data: dict[str, Any], node: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = nodes(data)[node]["options"]
    return result


def conditions(data: dict[str, Any], node: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = nodes(data)[node]["conditions"]
    return result


Change = Callable[[dict[str, Any]], Any]

BROKEN: list[tuple[str, Change, str]] = [
    (
        "unknown key in a node",
        lambda d: nodes(d)["ask_reason_recent"].update(colour="red"),
        "returns.nodes.ask_reason_recent: unknown key 'colour'",
    ),
    (
        "unknown key in an option",
        lambda d: options(d, "ask_reason_recent")[0].update(note="x"),
        "returns.nodes.ask_reason_recent.options[0]: unknown key 'note'",
    ),
    (
        "unknown key in a flow",
        lambda d: d["returns"].update(owner="x"),
        "returns: unknown key 'owner'",
    ),
    (
        "unknown key in a condition",
        lambda d: conditions(d, "check_status")[1].update(equal="paid"),
        "returns.nodes.check_status.conditions[1]: unknown key 'equal'",
    ),
    (
        "unknown key in kb_entry",
        lambda d: nodes(d)["answer_cancelled"]["kb_entry"].update(fr="x"),
        "returns.nodes.answer_cancelled.kb_entry: unknown key 'fr'",
    ),
    (
        "text without en",
        lambda d: nodes(d)["ask_reason_recent"]["text"].pop("en"),
        "returns.nodes.ask_reason_recent.text: missing 'en'",
    ),
    (
        "option title without zh",
        lambda d: options(d, "ask_reason_recent")[1]["title"].pop("zh"),
        "returns.nodes.ask_reason_recent.options[1].title: missing 'zh'",
    ),
    (
        "flow title without zh",
        lambda d: d["logistics"]["title"].pop("zh"),
        "logistics.title: missing 'zh'",
    ),
    (
        "blank text",
        lambda d: nodes(d)["answer_cancelled"]["message"].update(zh="  "),
        "returns.nodes.answer_cancelled.message.zh: should not be empty",
    ),
    (
        "option next to an unknown node",
        lambda d: options(d, "ask_reason_recent")[1].update(next="foo"),
        "returns.nodes.ask_reason_recent.options[1].next: unknown node 'foo'",
    ),
    (
        "condition next to an unknown node",
        lambda d: conditions(d, "check_status")[2].update(next="nowhere"),
        "returns.nodes.check_status.conditions[2].next: unknown node 'nowhere'",
    ),
    (
        "unknown to an unknown node",
        lambda d: nodes(d)["check_status"].update(unknown="ask_status"),
        "returns.nodes.check_status.unknown: unknown node 'ask_status'",
    ),
    (
        "otherwise to an unknown node",
        lambda d: nodes(d)["check_warranty"].update(otherwise="answer_paid_repair"),
        "returns.nodes.check_warranty.otherwise: unknown node 'answer_paid_repair'",
    ),
    ("start missing", lambda d: d["returns"].pop("start"), "returns: missing 'start'"),
    (
        "start to an unknown node",
        lambda d: d["returns"].update(start="begin"),
        "returns.start: unknown node 'begin'",
    ),
    (
        "cycle",
        lambda d: options(d, "ask_refund_or_replacement")[1].update(next="ask_reason_recent"),
        "returns.nodes.ask_reason_recent: cycle: "
        "ask_reason_recent -> ask_refund_or_replacement -> ask_reason_recent",
    ),
    (
        "unreachable node",
        lambda d: nodes(d).update(
            answer_orphan={"type": "outcome", "kind": "answer", "message": {"zh": "孤", "en": "x"}}
        ),
        "returns.nodes.answer_orphan: unreachable from start 'check_status'",
    ),
    (
        "check on an unknown fact",
        lambda d: nodes(d)["check_status"].update(fact="order_state"),
        "returns.nodes.check_status.fact: unknown fact 'order_state' (known: order_status, "
        "days_since_delivery, days_past_eta, order_known)",
    ),
    (
        "value outside the fact's values",
        lambda d: conditions(d, "check_status")[2].update(equals="deliverd"),
        "returns.nodes.check_status.conditions[2].equals: 'deliverd' is not a value of "
        "order_status (one of pending_payment, paid, shipped, delivered, cancelled, refunding)",
    ),
    (
        "number for a bool fact",
        lambda d: nodes(d, "logistics")["check_eta"].update(fact="order_known"),
        "logistics.nodes.check_eta.conditions[0].at_least: at_least needs a number fact; "
        "order_known is not one",
    ),
    (
        "list where one value belongs",
        lambda d: conditions(d, "check_status")[2].update(equals=["delivered"]),
        "returns.nodes.check_status.conditions[2].equals: should be a single value: text, "
        "a whole number or true/false",
    ),
    (
        "list of lists",
        lambda d: conditions(d, "check_status")[0].update({"in": [["paid"]]}),
        "returns.nodes.check_status.conditions[0].in[0]: should be a single value",
    ),
    (
        "sets with a list",
        lambda d: options(d, "ask_order_state")[2]["sets"].update(order_status=["delivered"]),
        "returns.nodes.ask_order_state.options[2].sets.order_status: should be a single value",
    ),
    (
        "text instead of zh and en",
        lambda d: nodes(d)["ticket_repair"].update(problem="broken"),
        "returns.nodes.ticket_repair.problem: should be a mapping (key: value lines)",
    ),
    (
        "options not a list",
        lambda d: nodes(d)["ask_faulty_late"].update(options="faulty"),
        "returns.nodes.ask_faulty_late.options: should be a list (lines starting with '- ')",
    ),
    (
        "number as text",
        lambda d: conditions(d, "check_return_window")[0].update(at_most="7 days"),
        "returns.nodes.check_return_window.conditions[0].at_most: should be a whole number",
    ),
    (
        "node type not text",
        lambda d: nodes(d)["answer_cancelled"].update(type=["outcome"]),
        "returns.nodes.answer_cancelled.type: unknown node type ['outcome']",
    ),
    (
        "at_most on a status",
        lambda d: conditions(d, "check_status")[1].update({"at_most": 3, "equals": None}),
        "returns.nodes.check_status.conditions[1].at_most: at_most needs a number fact; "
        "order_status is not one",
    ),
    (
        "two tests in a condition",
        lambda d: conditions(d, "check_status")[1].update({"at_most": 3}),
        "returns.nodes.check_status.conditions[1]: give exactly one of equals, in, at_most, "
        "at_least, is_known (and next)",
    ),
    (
        "condition without a test",
        lambda d: conditions(d, "check_status")[1].pop("equals"),
        "returns.nodes.check_status.conditions[1]: give exactly one of",
    ),
    (
        "condition without next",
        lambda d: conditions(d, "check_status")[1].pop("next"),
        "returns.nodes.check_status.conditions[1]: missing 'next'",
    ),
    (
        "empty in list",
        lambda d: conditions(d, "check_status")[0].update({"in": []}),
        "returns.nodes.check_status.conditions[0].in: the list is empty",
    ),
    (
        "number check without otherwise",
        lambda d: nodes(d)["check_return_window"].pop("otherwise"),
        "returns.nodes.check_return_window: missing 'otherwise' (days_since_delivery is a number)",
    ),
    (
        "status check missing a status",
        lambda d: conditions(d, "check_status").pop(4),
        "returns.nodes.check_status: missing 'otherwise' (no branch when order_status is "
        "'cancelled')",
    ),
    (
        "status check without unknown",
        lambda d: nodes(d)["check_status"].pop("unknown"),
        "returns.nodes.check_status: missing 'otherwise' (no branch when order_status is unknown)",
    ),
    (
        "ticket without category",
        lambda d: nodes(d)["ticket_repair"].pop("category"),
        "returns.nodes.ticket_repair: missing 'category' (required for kind ticket)",
    ),
    (
        "ticket without need_payoff",
        lambda d: nodes(d)["ticket_repair"].pop("need_payoff"),
        "returns.nodes.ticket_repair: missing 'need_payoff' (required for kind ticket)",
    ),
    (
        "ticket without problem",
        lambda d: nodes(d)["ticket_repair"].pop("problem"),
        "returns.nodes.ticket_repair: missing 'problem' (required for kind ticket)",
    ),
    (
        "ticket field on an answer",
        lambda d: nodes(d)["answer_cancelled"].update(need_payoff="refund"),
        "returns.nodes.answer_cancelled.need_payoff: 'need_payoff' is only for kind ticket",
    ),
    (
        "unknown need_payoff",
        lambda d: nodes(d)["ticket_repair"].update(need_payoff="money"),
        "returns.nodes.ticket_repair.need_payoff: should be 'refund', 'replacement', "
        "'repair', 'information' or 'call_back'",
    ),
    (
        "unknown outcome kind",
        lambda d: nodes(d)["ticket_repair"].update(kind="handoff"),
        "returns.nodes.ticket_repair.kind: should be 'answer' or 'ticket'",
    ),
    (
        "duplicated option id",
        lambda d: options(d, "ask_reason_recent")[1].update(id="changed_mind"),
        "returns.nodes.ask_reason_recent.options[1].id: duplicate option id 'changed_mind' "
        "(see options[0])",
    ),
    (
        "duplicated option title",
        lambda d: options(d, "ask_reason_recent")[1]["title"].update(en="I Changed My Mind"),
        "returns.nodes.ask_reason_recent.options[1].title.en: title 'I Changed My Mind' is also "
        "options[0]'s id or title",
    ),
    (
        "title equal to another option's id",
        lambda d: options(d, "ask_reason_recent")[1]["title"].update(en="wrong_item"),
        "returns.nodes.ask_reason_recent.options[1].title.en: title 'wrong_item' is also "
        "options[2]'s id or title",
    ),
    (
        "reserved option id",
        lambda d: options(d, "ask_faulty_late")[0].update(id="affirm"),
        "returns.nodes.ask_faulty_late.options[0].id: 'affirm' is reserved; use another id",
    ),
    (
        "invalid option id",
        lambda d: options(d, "ask_faulty_late")[0].update(id="Faulty item"),
        "returns.nodes.ask_faulty_late.options[0].id: invalid option id 'Faulty item'",
    ),
    (
        "numeric option id",
        lambda d: options(d, "ask_faulty_late")[0].update(id=1),
        "returns.nodes.ask_faulty_late.options[0].id: should be text",
    ),
    (
        "affirm names no option",
        lambda d: nodes(d)["ask_faulty_late"].update(affirm="yes"),
        "returns.nodes.ask_faulty_late.affirm: unknown option 'yes' "
        "(options: faulty, safety, not_faulty)",
    ),
    (
        "a single option",
        lambda d: options(d, "ask_faulty_late").__delitem__(slice(1, None)),
        "returns.nodes.ask_faulty_late.options: needs at least 2 items",
    ),
    (
        "sets an unknown fact",
        lambda d: options(d, "ask_order_state")[2]["sets"].update(order_state="delivered"),
        "returns.nodes.ask_order_state.options[2].sets.order_state: unknown fact 'order_state'",
    ),
    (
        "sets a wrong value",
        lambda d: options(d, "ask_order_state")[2]["sets"].update(order_status="arrived"),
        "returns.nodes.ask_order_state.options[2].sets.order_status: 'arrived' is not a value of "
        "order_status",
    ),
    (
        "node without type",
        lambda d: nodes(d)["answer_cancelled"].pop("type"),
        "returns.nodes.answer_cancelled: missing 'type' (check, ask, outcome)",
    ),
    (
        "node of unknown type",
        lambda d: nodes(d)["answer_cancelled"].update(type="answer"),
        "returns.nodes.answer_cancelled.type: unknown node type 'answer' (check, ask, outcome)",
    ),
    (
        "node that is not a mapping",
        lambda d: nodes(d).update(answer_cancelled="see above"),
        "returns.nodes.answer_cancelled: a node must be a mapping with a 'type'",
    ),
    (
        "invalid node id",
        lambda d: nodes(d).update({"Answer-Two": nodes(d)["answer_cancelled"]}),
        "returns.nodes.Answer-Two: invalid node id 'Answer-Two'",
    ),
    (
        "invalid flow name",
        lambda d: d.update({"Billing flow": d["returns"]}),
        "Billing flow: invalid flow name 'Billing flow'",
    ),
    ("flow without nodes", lambda d: d["returns"].update(nodes={}), "returns.nodes: no nodes"),
    (
        "flow that is not a mapping",
        lambda d: d.update(returns=["check_status"]),
        "returns: should be a mapping (key: value lines)",
    ),
]


@pytest.mark.parametrize(
    ("change", "message"), [case[1:] for case in BROKEN], ids=[c[0] for c in BROKEN]
)
def test_flow_errors(
    tmp_path: Path, shipped_data: dict[str, Any], change: Change, message: str
) -> None:
    data = copy.deepcopy(shipped_data)
    change(data)
    path = tmp_path / "flows.yml"
    text = yaml.dump(data, Dumper=yaml.CSafeDumper, allow_unicode=True, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FlowError) as error:
        load_flows(path)
    assert error.value.source == str(path)
    assert error.value.line is not None
    assert str(error.value).startswith(f"{path}:{error.value.line}: ")
    assert f"{error.value.location}: {error.value.reason}".startswith(message)


def test_error_names_the_line_of_the_node(tmp_path: Path) -> None:
    text = default_flows_path().read_text(encoding="utf-8")
    assert text.count("next: ticket_faulty_refund") == 1
    broken = text.replace("next: ticket_faulty_refund", "next: foo")
    line = broken.splitlines().index("          next: foo") + 1
    path = tmp_path / "flows.yml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(FlowError) as error:
        load_flows(path)
    assert str(error.value) == (
        f"{path}:{line}: returns.nodes.ask_refund_or_replacement.options[0].next: "
        "unknown node 'foo'"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("returns:\n  title: {zh: a, en: b\n  start: x\n", ":3: YAML syntax error"),
        ("returns:\n  title: a\n  title: b\n", ":3: duplicate key 'title': each name"),
        ("returns:\n  start: x\n  - y\n", ":3: YAML syntax error"),
        ("", ": no flows in the file"),
        ("# only a comment\n", ": no flows in the file"),
        ("- logistics\n- returns\n", ": the file must be a mapping of flow names to flows"),
        ("{}\n", ": no flows in the file"),
    ],
    ids=["unclosed", "duplicate key", "bad structure", "empty", "comment", "list", "empty map"],
)
def test_file_level_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "flows.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FlowError) as error:
        load_flows(path)
    assert str(error.value).startswith(str(path))
    assert message in str(error.value)


def test_duplicate_node_names_are_refused(tmp_path: Path) -> None:
    text = default_flows_path().read_text(encoding="utf-8")
    lines = text.splitlines()
    first = lines.index("    answer_cancelled:")
    copy = lines[first : first + 9]
    assert copy[-1].startswith("        en:")
    path = tmp_path / "flows.yml"
    path.write_text("\n".join([*lines, *copy]) + "\n", encoding="utf-8")
    with pytest.raises(FlowError) as error:
        load_flows(path)
    assert error.value.line == len(lines) + 1
    assert str(error.value) == (
        f"{path}:{len(lines) + 1}: duplicate key 'answer_cancelled': "
        "each name may appear only once in the same mapping"
    )


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(FlowError, match=r"missing\.yml: file not found$"):
        load_flows(tmp_path / "missing.yml")
    with pytest.raises(FlowError, match="cannot read the file"):
        load_flows(tmp_path)
    path = tmp_path / "flows.yml"
    path.write_bytes("returns:\n  title: 退货\n".encode("gbk"))
    with pytest.raises(FlowError, match=r"flows\.yml:2: not valid UTF-8"):
        load_flows(path)
