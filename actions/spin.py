"""SPIN need elicitation: Situation, Problem, Implication, Need-payoff, asked only when unknown.

`spin_form` asks the SPIN slots in order; `ValidateSpinForm` reads every customer message for
whatever it answers, in any order: the readers (`bot.understanding`) cut it into clauses and
tell which clause names the order or product, which describes the problem (and since when),
which the impact and which the outcome wanted; the question just asked only tilts an unclear
clause. So a stage the customer already covered is never asked, and an answer is recorded as
what it says, not as the question it followed. At the start, what the customer said earlier
in the session (an order number, a product) is carried into the record. A named product that
is not the order's product is asked about. "不知道" / "skip" records the stage as declined;
questions about something else are answered and the form resumes where it was.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import date
from typing import Any

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.needs import need_hints, read_message
from actions.orders import ATTEMPTS_SLOT, order_number_attempt, order_store
from actions.service_plan import SKIPPED, local_today, service_policy
from bot.service.orders import InvalidOrderNumber, normalize_order_number
from bot.service.reading import (
    FutureDate,
    is_generic_request,
    product_kind,
    read_product,
    read_since,
)
from bot.understanding import Clause, Reading, looks_like_question

SPIN_SLOTS = ("spin_situation", "spin_problem", "spin_implication", "spin_need_payoff")
CONTACT_TIME_SLOT = "spin_contact_time"
ORDER_CHECK_SLOT = "spin_order_check"
CATEGORY_BY_INTENT = {"complain": "complaint", "urgent_issue": "urgent"}
NO_IMPACT = ("无特别影响", "no particular impact")
SAFETY_IMPACT = ("安全隐患", "a safety risk")
ANY_TIME = ("随时", "any time")
SHORT_REPLY = 6
"""A "skip" or "no" this short declines the question asked, whatever the readers make of it."""
MAX_TEXT = 500
"""Longest answer kept in a SPIN slot (longer answers are cut, the full text stays in Rasa)."""
ROLE_OF_SLOT = {
    "spin_situation": "situation",
    "spin_problem": "problem",
    "spin_implication": "impact",
    "spin_need_payoff": "outcome",
}
"""The role of the clause each SPIN question asks for (`bot.understanding.ROLES`)."""
EARLIER_MESSAGES = 4
"""Customer messages before the form started that are read for an order or a product."""
CARRIED_PROBLEM = 0.6
"""Role probability at which a problem described before the form started is carried in."""
UNASKED_CERTAINTY = {"impact": 0.58, "outcome": 0.6, "situation": 0.6}
"""Role (and, for outcomes, kind) probability at which an impact or outcome nobody asked for
yet is recorded: a clear "我要换货" or "耽误我出差" is, a vague "到现在一点信儿都没有" waits
for the question."""
MIN_READABLE = 2
"""Shorter messages ("3", "嗯") are not read for SPIN answers."""
CLEAR_ANSWER = 0.75
"""Role probability of a plain answer (it outweighs a doubtful "ask_human" intent)."""
MAX_ASKS = 2
ACKNOWLEDGEMENTS = frozenset({"affirm", "thank", "wait"})
"""Intents of "对", "谢谢", "稍等": they answer no open question and decline none."""
"""A question asked this often without an answer is recorded as declined; the form goes on."""

INTERRUPTING_INTENTS = frozenset(
    {
        "order_status",
        "invoice",
        "account_membership",
        "ask_ticket_progress",
        "bot_challenge",
        "greet",
        "thank",
        "goodbye",
        "rate_service",
        "kb_select",
        "out_of_scope",
        "ask_human",
        "wait",
        "merchant_inquiry",
        "other_platform",
    }
)
"""Intents that are a different question, not an answer, when the model is confident."""
QUESTION_INTENTS = frozenset(
    {"product_question", "return_refund", "logistics_issue", "payment_issue", "invoice"}
)
"""Intents of questions answered in passing when the message answers nothing that was asked."""
INTERRUPTION_CONFIDENCE = 0.75
QUESTION_CONFIDENCE = 0.9
SURE_HUMAN = 0.97
"""An "ask_human" this sure leaves the form at once; a less sure one only when nothing else
in the message answers the question asked ("给我换个能用的" is an outcome, not a person)."""
"""A question intent this sure, with nothing for the question asked, is answered in passing."""
_BUTTON_PAYLOAD = re.compile(r"^/\w+")


def is_interruption(tracker: Tracker) -> bool:
    """The latest message asks something else (confidently), so the form should step aside."""
    intent = tracker.latest_message.get("intent") or {}
    if intent.get("name") == "ask_human":
        return True
    return (
        intent.get("name") in INTERRUPTING_INTENTS
        and float(intent.get("confidence") or 0) >= INTERRUPTION_CONFIDENCE
    )


def customer_text(tracker: Tracker) -> str:
    """The latest message's text, empty for button payloads such as `/choose{...}`."""
    text = (tracker.latest_message.get("text") or "").strip()
    return "" if _BUTTON_PAYLOAD.match(text) else text[:MAX_TEXT]


def entity_value(tracker: Tracker, entity: str) -> str | None:
    """The first value of `entity` in the latest message."""
    return next(tracker.get_latest_entity_values(entity), None)


def order_number_in(tracker: Tracker, text: str) -> str | None:
    """A well-formed order number in the latest message (entity or typed with blanks)."""
    candidates = [
        entity_value(tracker, "order_number"),
        order_number_attempt(text) if text else None,
    ]
    for candidate in candidates:
        if candidate:
            try:
                return normalize_order_number(candidate)
            except InvalidOrderNumber:
                continue
    return None


def earlier_texts(tracker: Tracker, count: int = EARLIER_MESSAGES) -> list[str]:
    """The customer's messages before the latest one, since the last need was confirmed."""
    texts: list[str] = []
    users = 0
    for event in reversed(tracker.events):
        if event.get("event") == "action" and event.get("name") in (
            "action_open_ticket",
            "action_confirm_need",
        ):
            break
        if event.get("event") != "user":
            continue
        users += 1
        if users == 1:  # the latest message
            continue
        text = str(event.get("text") or "").strip()
        if text and not _BUTTON_PAYLOAD.match(text):
            texts.append(text[:MAX_TEXT])
        if len(texts) >= count:
            break
    return list(reversed(texts))


def times_asked(tracker: Tracker, slot: str) -> int:
    """How often the SPIN form asked for `slot` since it last started."""
    asked = 0
    question = f"utter_ask_{slot}"
    for event in reversed(tracker.events):
        if event.get("event") == "active_loop" and event.get("name") is None:
            break
        metadata = event.get("metadata") or {}
        if event.get("event") == "bot" and metadata.get("utter_action") == question:
            asked += 1
    return asked


def _skip(updates: dict[str, Any], tracker: Tracker, slot: str) -> None:
    skipped = list(updates.get("spin_skipped") or tracker.get_slot("spin_skipped") or [])
    if slot not in skipped:
        skipped.append(slot)
    updates["spin_skipped"] = skipped
    updates[slot] = SKIPPED


def _answered(updates: dict[str, Any], tracker: Tracker, slot: str, value: Any) -> None:
    updates[slot] = value
    skipped = list(updates.get("spin_skipped") or tracker.get_slot("spin_skipped") or [])
    if slot in skipped:
        skipped.remove(slot)
        updates["spin_skipped"] = skipped


class _Turn:
    """The state of one validation: the tracker's slots plus what this message changed."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        self.updates: dict[str, Any] = {}

    def get(self, slot: str) -> Any:
        return self.updates[slot] if slot in self.updates else self.tracker.get_slot(slot)

    def known(self, slot: str) -> bool:
        return self.get(slot) not in (None, "")

    def answered(self, slot: str, value: Any) -> None:
        _answered(self.updates, self.tracker, slot, value)


def _join(*parts: str | None) -> str:
    """Clauses joined once each, in order."""
    seen: list[str] = []
    for part in parts:
        if part and part not in seen and not any(part in other for other in seen):
            seen.append(part)
    return "，".join(seen)[:MAX_TEXT]


def _read_situation(turn: _Turn, text: str, number: str | None) -> None:
    """An order number (a new one corrects the old one), else a product named."""
    policy = service_policy()
    if number:
        if turn.get("spin_situation") != number:  # another order: check it afresh
            turn.updates[ORDER_CHECK_SLOT] = None
            turn.updates["spin_order_product"] = None
        turn.answered("spin_situation", number)
        turn.updates["order_number"] = number
    product = read_product(policy, text) if text else None
    if product:
        turn.updates["spin_product"] = product
        if not turn.known("spin_situation"):
            turn.updates["spin_situation"] = product


def _opening_problem(turn: _Turn, reading: Reading, intent: str) -> None:
    """A complaint's opening message describes the problem even when no clause reads as one.

    "你们的充电器漏电 插着的时候手一碰金属就麻": what is not the order, the product, the
    impact or the outcome wanted is taken as the problem, so it is not asked again.
    """
    if intent not in CATEGORY_BY_INTENT or not reading.is_urgent:
        return  # a complaint's problem is asked when no clause describes it ("太坑了")
    described = [
        clause.text
        for clause in reading.clauses
        if clause.role not in ("impact", "outcome", "other")
        and not (
            clause.role == "situation"
            and read_product(service_policy(), clause.text) == clause.text
        )
    ]
    if described:
        turn.updates["spin_problem"] = "，".join(described)[:MAX_TEXT]


def _carry_earlier(turn: _Turn, earlier: list[str]) -> None:
    """What the customer said just before the form started, when said clearly.

    The problem and the outcome wanted ("太垃圾了 必须给我退款" before "笔记本风扇响").
    """
    for message in reversed(earlier[-2:]):
        reading = read_message(message)
        problem = "，".join(
            c.text for c in reading.parts("problem") if c.role_probability >= CARRIED_PROBLEM
        )
        if problem and not turn.known("spin_problem"):
            turn.updates["spin_problem"] = problem[:MAX_TEXT]
        outcomes = [c for c in _sure(reading, "outcome", None) if c.kind is not None]
        if outcomes and not turn.known("spin_need_payoff"):
            turn.updates["spin_need_payoff"] = max(outcomes, key=lambda c: c.kind_probability).kind


def _sure(reading: Reading, role: str, asked: str | None) -> list[Clause]:
    """The clauses of `role` certain enough to record.

    An answer to the question just asked needs the readers' usual certainty; what nobody
    asked for yet needs more.
    """
    if role == asked or role == "problem":  # problem details are added, never replace
        return reading.parts(role)
    floor = UNASKED_CERTAINTY[role]
    return [
        clause
        for clause in reading.parts(role)
        if clause.role_probability >= floor
        and (role != "outcome" or clause.kind_probability >= floor)
    ]


def _answers_clearly(reading: Reading | None, requested: str) -> bool:
    """The message plainly answers the question asked (role probability >= 0.75)."""
    role = ROLE_OF_SLOT.get(requested)
    return reading is not None and any(
        clause.role == role and clause.role_probability >= CLEAR_ANSWER
        for clause in reading.clauses
    )


def _sure_text(reading: Reading, role: str, asked: str | None) -> str:
    """The certain clauses of `role`, joined."""
    return "，".join(clause.text for clause in _sure(reading, role, asked))


def _read_reading(turn: _Turn, reading: Reading, today: date, requested: str | None) -> bool:
    """Problem (and since when), impact and outcome, wherever in the message they are.

    Returns False when the problem is dated in the future (nothing of it is recorded: the
    customer is asked again).
    """
    situation = reading.text_of("situation")
    if (
        situation
        and requested == "spin_situation"
        and "spin_situation" not in turn.updates
        and order_number_attempt(reading.text) is None
    ):
        turn.answered("spin_situation", situation[:MAX_TEXT])
    asked = ROLE_OF_SLOT.get(requested or "")
    problem = _sure_text(reading, "problem", asked)
    if problem and requested == "spin_problem":
        try:
            read_since(reading.text, today)
        except FutureDate:
            return False
    if problem:
        current = turn.get("spin_problem")
        if not turn.known("spin_problem") or current == SKIPPED:
            turn.answered("spin_problem", problem[:MAX_TEXT])
        else:  # more detail, or since when ("昨天晚上开始的"): added to what was said
            turn.updates["spin_problem"] = _join(str(current), problem)
    if (problem or turn.known("spin_problem")) and not turn.known("spin_problem_since"):
        # since when: read where the customer describes the problem or what happened, not
        # where they say what it spoils ("今天要给客户演示") or what they want
        dated = "，".join(c.text for c in reading.clauses if c.role not in ("impact", "outcome"))
        try:
            since = read_since(dated, today) if dated else None
        except FutureDate:
            since = None
        if since is not None:
            turn.updates["spin_problem_since"] = since.isoformat()
    impact_clauses = _sure(reading, "impact", asked)
    impact = "，".join(clause.text for clause in impact_clauses)
    read_impacts = {c.kind for c in impact_clauses if c.kind not in (None, "none")} & set(
        reading.impacts
    )
    impacts = set(turn.get("spin_impacts") or [])
    if read_impacts - impacts:
        turn.updates["spin_impacts"] = sorted(impacts | read_impacts)
    if impact and (not turn.known("spin_implication") or requested == "spin_implication"):
        turn.answered("spin_implication", impact[:MAX_TEXT])
    elif reading.is_hazard and not turn.known("spin_implication"):
        # a real hazard is its own impact: nobody is asked how smoke affects them
        turn.answered("spin_implication", SAFETY_IMPACT[1 if turn.get("language") == "en" else 0])
        impacts = set(turn.updates.get("spin_impacts") or impacts)
        turn.updates["spin_impacts"] = sorted(impacts | {"safety"})
    outcomes = [c for c in _sure(reading, "outcome", asked) if c.kind is not None]
    outcome = max(outcomes, key=lambda c: c.kind_probability).kind if outcomes else None
    if outcome and (not turn.known("spin_need_payoff") or requested == "spin_need_payoff"):
        turn.answered("spin_need_payoff", outcome)
    hints = need_hints(reading, turn.get("spin_hints"))
    if hints != list(turn.get("spin_hints") or []):
        turn.updates["spin_hints"] = hints
    return True


def _check_order_product(
    turn: _Turn, order_product: Callable[[str], tuple[str, str] | None]
) -> None:
    """Asks about the order when the product named is not the order's product.

    A later message naming the order's product ("哦对 是笔记本") settles the question.
    """
    number, mentioned = turn.get("order_number"), turn.get("spin_product")
    if not number or not mentioned or turn.get("spin_situation") != number:
        return
    if turn.get(ORDER_CHECK_SLOT) is not None:
        return
    names = order_product(str(number))
    if names is None:
        return
    policy = service_policy()
    kind = product_kind(policy, str(mentioned))
    if kind is None or kind in (product_kind(policy, names[0]), product_kind(policy, names[1])):
        if turn.get("spin_order_product"):
            turn.updates[ORDER_CHECK_SLOT] = "confirmed"
        return
    language = turn.get("language") or "zh"
    turn.updates["spin_order_product"] = names[1] if language == "en" else names[0]
    turn.updates[ORDER_CHECK_SLOT] = None


def _order_product(number: str) -> tuple[str, str] | None:
    """The (zh, en) product names of an order (blocking)."""
    order = order_store().find(number)
    return (order.product_zh, order.product_en) if order is not None else None


def read_spin_turn(
    tracker: Tracker,
    dispatcher: CollectingDispatcher,
    today: date,
    *,
    order_product: Callable[[str], tuple[str, str] | None] = _order_product,
) -> dict[str, Any]:
    """The slot values the latest message gives, with prompts for invalid answers (blocking).

    Returns `{}` when the message is about something else (the form then steps aside).
    """
    policy = service_policy()
    requested = tracker.get_slot("requested_slot")
    intent = tracker.get_intent_of_latest_message() or ""
    text = customer_text(tracker)
    turn = _Turn(tracker)
    updates = turn.updates

    if requested is None:  # the form starts: remember why, carry over what was said before
        updates["flow_outcome_kind"] = None
        updates["record_need"] = None
        if not tracker.get_slot("spin_category"):
            updates["spin_category"] = CATEGORY_BY_INTENT.get(intent, "problem")
        known_order = tracker.get_slot("order_number")
        if known_order and not turn.known("spin_situation"):
            turn.updates["spin_situation"] = known_order
        earlier = earlier_texts(tracker)
        for message in earlier:
            _read_situation(turn, message, None)
        _carry_earlier(turn, earlier)
    number = order_number_in(tracker, text)
    confidence = float((tracker.latest_message.get("intent") or {}).get("confidence") or 0)
    if requested is not None and intent == "ask_human" and confidence >= SURE_HUMAN:
        return {}  # a person: the form steps aside (rules hand over)
    if text:
        updates["spin_notes"] = [*(tracker.get_slot("spin_notes") or []), text]

    _read_situation(turn, text, number)
    expecting = ROLE_OF_SLOT.get(requested or "")
    readable = len(re.findall(r"[\w]", text)) >= MIN_READABLE  # "3", "嗯" say nothing here
    # the answer to "when can we call you?" is a time: it is not read for other stages
    wanted = readable and requested != CONTACT_TIME_SLOT and not is_generic_request(policy, text)
    reading = read_message(text, expecting) if wanted else None
    if (
        requested not in (None, "spin_need_payoff", CONTACT_TIME_SLOT)
        and not number
        and _is_question(tracker, reading, strict=True)
    ):
        return {}  # "运费谁出啊": a question in between is answered, not taken as an answer
    if reading is not None and not _read_reading(turn, reading, today, requested):
        dispatcher.utter_message(response="utter_spin_future_date")
        return {}
    if requested is None and reading is not None and not turn.known("spin_problem"):
        _opening_problem(turn, reading, intent)
    if requested == ORDER_CHECK_SLOT:
        _answer_order_check(turn, intent, number)
    _check_order_product(turn, order_product)

    if requested is None:
        return updates
    if intent == "ask_human" and not number and not _answers_clearly(reading, requested):
        return {}  # a person, unless the message clearly answers the question asked
    if (
        requested not in updates
        and not number
        and not _unless_nothing(updates)
        and (is_interruption(tracker) or _is_question(tracker, reading, strict=True))
    ):
        return {}  # another question: answered in passing, then asked again
    if requested in updates:
        return updates
    if number and intent == "inform":  # just the order number: ask the open question again
        return updates
    return _answer_requested(requested, turn, dispatcher, text, intent, reading)


def _answer_order_check(turn: _Turn, intent: str, number: str | None) -> None:
    """Yes: the order stands. No: the order is forgotten. A new number replaces it.

    A reply that names a product is checked again against the order; any other reply
    leaves the order as given ("unconfirmed"): the question is asked once, not again and again.
    """
    if number:
        turn.updates[ORDER_CHECK_SLOT] = "changed"
    elif intent == "affirm":
        turn.updates[ORDER_CHECK_SLOT] = "confirmed"
    elif intent in ("deny", "skip"):
        turn.updates[ORDER_CHECK_SLOT] = "changed"
        turn.updates["order_number"] = None
        turn.updates["spin_situation"] = turn.get("spin_product")
    elif "spin_product" not in turn.updates:
        turn.updates[ORDER_CHECK_SLOT] = "unconfirmed"


def _answer_requested(
    requested: str,
    turn: _Turn,
    dispatcher: CollectingDispatcher,
    text: str,
    intent: str,
    reading: Reading | None,
) -> dict[str, Any]:
    """Reads the answer to the question the bot just asked, when no clause answered it."""
    tracker, updates = turn.tracker, turn.updates
    language = tracker.get_slot("language") or "zh"
    choice = entity_value(tracker, "choice")
    if requested == ORDER_CHECK_SLOT:
        return _unless_nothing(updates)
    if (intent == "skip" or (intent == "deny" and requested != "spin_implication")) and (
        reading is None or not reading.has_content or len(text) <= SHORT_REPLY
    ):  # "不知道" / "跳过"; not "记不清啥时候开始的了", which tells when the problem began
        _skip(updates, tracker, requested)
        return updates
    if requested == "spin_implication" and (
        intent == "deny" or (reading is not None and reading.says_no_impact)
    ):
        turn.answered(requested, NO_IMPACT[1] if language == "en" else NO_IMPACT[0])
        return updates
    if requested == CONTACT_TIME_SLOT and intent in ("affirm", "thank"):
        # "嗯嗯" / "好的" to "when can we call you?": any time suits
        turn.answered(requested, ANY_TIME[1] if language == "en" else ANY_TIME[0])
        return updates
    if intent in ACKNOWLEDGEMENTS and requested != "spin_need_payoff":
        return _unless_nothing(updates)  # "对" / "嗯嗯" answer no open question: asked again
    if requested == "spin_need_payoff":
        if choice:
            turn.answered(requested, choice)
            return updates
        if is_interruption(tracker) or not text or _is_question(tracker, reading):
            return _unless_nothing(updates)
        if not _unless_nothing(updates):  # it said nothing else either: show the options
            dispatcher.utter_message(response="utter_spin_need_payoff_unclear")
        return updates
    if not text or is_interruption(tracker) or _is_question(tracker, reading):
        return _unless_nothing(updates)
    if requested == "spin_situation" and order_number_attempt(text) is not None:
        attempts = int(tracker.get_slot(ATTEMPTS_SLOT) or 0) + 1  # a malformed order number
        dispatcher.utter_message(
            response="utter_invalid_order_number_offer_human"
            if attempts >= 2
            else "utter_invalid_order_number"
        )
        updates[ATTEMPTS_SLOT] = attempts
        return updates
    if (
        requested != CONTACT_TIME_SLOT
        and intent not in ACKNOWLEDGEMENTS
        and times_asked(tracker, requested) >= MAX_ASKS
    ):
        # asked twice and answered with something else: recorded as declined, the form goes
        # on; a bare "对" / "嗯嗯" / "ok" answers no open question, so it is asked again
        _skip(updates, tracker, requested)
        return updates
    # The readers decided what each clause says: an answer that tells something else
    # ("左耳没声音" after "how does it affect you?") is recorded as what it is, and the
    # question is asked again; a message of fillers only lets the form step aside.
    decided = reading is not None and (reading.has_content or requested != "spin_situation")
    if decided and requested != CONTACT_TIME_SLOT:
        return _unless_nothing(updates)
    if requested == "spin_situation":
        turn.answered(requested, text)
    elif requested == "spin_problem":
        try:
            since = read_since(text, local_today())
        except FutureDate:
            dispatcher.utter_message(response="utter_spin_future_date")
            return updates
        turn.answered(requested, text)
        if since is not None:
            updates["spin_problem_since"] = since.isoformat()
    else:
        turn.answered(requested, text)
    return updates


def _is_question(tracker: Tracker, reading: Reading | None, *, strict: bool = False) -> bool:
    """A question about something else, not an answer to the question asked.

    A confident question intent worded as a question ("充电宝能带上飞机吗"), or (unless
    `strict`) a question intent with nothing a SPIN answer says.
    """
    intent = tracker.latest_message.get("intent") or {}
    if intent.get("name") not in QUESTION_INTENTS:
        return False
    text = customer_text(tracker)
    if float(intent.get("confidence") or 0) >= QUESTION_CONFIDENCE and looks_like_question(text):
        return True
    if strict:
        return False
    return reading is None or not any(
        clause.role in ("problem", "impact", "outcome") for clause in reading.clauses
    )


NOT_ANSWERS = frozenset({"spin_notes", "spin_hints", "spin_impacts", "spin_product"})
"""Slots a message may change without answering any SPIN question."""


def _unless_nothing(updates: dict[str, Any]) -> dict[str, Any]:
    """`updates` if the message answered anything; else `{}` so the form steps aside."""
    return updates if set(updates) - NOT_ANSWERS else {}


class ValidateSpinForm(FormValidationAction):
    """Fills the SPIN slots from whatever the customer says; asks a call-back time if needed."""

    def name(self) -> str:
        """Action name used in domain.yml."""
        return "validate_spin_form"

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        """The four SPIN stages; the order check and the call-back time when needed."""
        slots = list(SPIN_SLOTS)
        if tracker.get_slot("spin_need_payoff") == "call_back":
            # asked right after the problem: someone who wants a call thinks of the time next
            slots.insert(slots.index("spin_problem") + 1, CONTACT_TIME_SLOT)
        if tracker.get_slot("spin_order_product") and tracker.get_slot("order_number"):
            slots.insert(1, ORDER_CHECK_SLOT)
        return slots

    async def get_extraction_events(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """Everything the latest message answers, validated (see `read_spin_turn`)."""
        updates = await asyncio.to_thread(read_spin_turn, tracker, dispatcher, local_today())
        return [SlotSet(slot, value) for slot, value in updates.items()]

    async def get_validation_events(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """The extracted values are already validated; pass them on."""
        return [SlotSet(slot, value) for slot, value in tracker.slots_to_validate().items()]
