"""Reading what a customer's message says about a need, before any form opens.

The NLU gives one intent per message; the readers (`bot.understanding`, classifiers learned
from `data/service/understanding.yml`) say whether it reports a real hazard, an urgent need,
a complaint, and what each clause tells. `action_read_need` runs when the NLU hears a
complaint or an urgent problem: a real hazard gets the safety advice, an urgent need the
urgent acknowledgement, a complaint or a problem its own; a message that only sounded like
one ("这价格真烫手", "能补差价吗") is answered as the question it is, and displeasure with the
bot's own answer ("答非所问") gets an apology and the offer of a person (`need_kind`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from functools import lru_cache

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.service_plan import sentence_encoder, service_policy
from bot.service.reading import is_generic_request
from bot.understanding import Reader, Reading, load_examples, looks_like_question

logger = logging.getLogger(__name__)

NEED_KIND_SLOT = "need_kind"
RECORD, QUESTION, UNSATISFIED = "record", "question", "unsatisfied"
CATEGORY_BY_INTENT = {"complain": "complaint", "urgent_issue": "urgent"}
SURE_INTENT = 0.95
"""An NLU confidence at which a complaint or urgent intent needs less from the readers."""
LEANING = 0.45
"""Reader probability that, with a sure NLU intent, is enough to record the need."""
QUESTION_COMPLAINT = 0.8
"""Complaint probability at which a message worded as a question is still a complaint
("你们就这么对待老客户的吗？")."""
PROBLEM_CERTAINTY = 0.55
CLEAR_PROBLEM = 0.75
"""Role probability of a plainly described problem (a fault, not a circumstance)."""
"""Role probability at which a clause clearly describes a problem."""
ORDER_NUMBERS = re.compile(r"[Kk][Ff][\s-]*\d[\d\s-]{10,}\d")


@lru_cache(maxsize=1)
def message_reader() -> Reader:
    """The readers, trained on first use (about a second) with the knowledge base's encoder."""
    return Reader(sentence_encoder(), load_examples())


def read_message(text: str, expecting: str | None = None) -> Reading:
    """Reads a message (blocking: call it in a worker thread)."""
    return message_reader().read(text, expecting)


def need_hints(reading: Reading, previous: list[str] | None = None) -> list[str]:
    """The `spin_hints` a reading adds: `hazard`, `urgency:urgent`, `complaint`."""
    hints = list(previous or [])
    for flag, hint in (
        (reading.is_hazard, "hazard"),
        (reading.is_urgent, "urgency:urgent"),
        (reading.is_complaint, "complaint"),
    ):
        if flag and hint not in hints:
            hints.append(hint)
    return hints


def acknowledgement(reading: Reading, category: str) -> str:
    """The response that opens the record: safety advice only for a real hazard."""
    if reading.is_hazard:
        return "utter_safety_warning"
    if reading.is_urgent or category == "urgent":
        return "utter_urgent_ack"
    if reading.is_complaint or category == "complaint":
        return "utter_complain_ack"
    return "utter_problem_ack"


def is_a_need(reading: Reading, intent: str, confidence: float, opener: bool) -> bool:
    """Whether the message reports something to record (else it is a question).

    A hazard, an urgent need, a complaint or a described problem is; so is a bare opener
    ("我要投诉", "urgent!") or a button payload (no text). With a sure NLU intent a leaning
    of the readers is enough.
    """
    if not reading.text or opener:
        return True
    if reading.is_hazard or reading.is_urgent:
        return True
    if looks_like_question(reading.text):  # "那要是有质量问题呢": a question about a problem
        return reading.complaint >= QUESTION_COMPLAINT
    if reading.is_complaint:
        return True
    if _describes_problem(reading):
        return True
    sure = confidence >= SURE_INTENT
    leaning = reading.complaint if intent == "complain" else reading.urgent
    return sure and leaning >= LEANING


ANSWERS = frozenset(
    {"utter_kb_answer", "utter_kb_suggestions", "utter_kb_clarify", "utter_ask_rephrase"}
)
"""The bot's answers a customer may be unhappy with."""


def just_answered(tracker: Tracker) -> bool:
    """The bot's last message before this one answered a question (or tried to)."""
    users = [i for i, event in enumerate(tracker.events) if event.get("event") == "user"]
    for event in reversed(tracker.events[: users[-1]] if users else []):
        if event.get("event") == "bot":
            return (event.get("metadata") or {}).get("utter_action") in ANSWERS
        if event.get("event") == "user":
            return False
    return False


def _describes_problem(reading: Reading) -> bool:
    return any(
        clause.role == "problem" and clause.role_probability >= PROBLEM_CERTAINTY
        for clause in reading.clauses
    )


def record_events(
    dispatcher: CollectingDispatcher, tracker: Tracker, reading: Reading, intent: str
) -> list[EventType]:
    """Acknowledges a need to record and sets its category and hints (the SPIN form follows)."""
    category = CATEGORY_BY_INTENT.get(intent, "problem")
    if reading.is_complaint and (intent == "complain" or not reading.is_urgent):
        category = "complaint"  # a complaint about a fire is a (major, urgent) complaint
    elif reading.is_urgent:
        category = "urgent"
    elif reading.text and category == "urgent":  # an urgent-sounding problem
        category = "problem"
    dispatcher.utter_message(response=acknowledgement(reading, category))
    hints = need_hints(reading, tracker.get_slot("spin_hints"))
    if category == "urgent" and "urgency:urgent" not in hints:
        hints.append("urgency:urgent")
    return [
        SlotSet(NEED_KIND_SLOT, RECORD),
        SlotSet("spin_category", category),
        SlotSet("spin_hints", hints),
    ]


def reports_a_problem(reading: Reading, *, wants_something: bool) -> bool:
    """A clear description of a problem (with a wanted outcome or a complaint, if asked).

    Asked of a question the knowledge base could not answer, the bar is higher: the problem
    must be plain, not a circumstance of the question ("平板已经开机登录了 想退").
    """
    floor = CLEAR_PROBLEM if wants_something else PROBLEM_CERTAINTY
    described = any(
        clause.role == "problem" and clause.role_probability >= floor for clause in reading.clauses
    )
    if not wants_something:
        return described
    return described and (reading.outcome is not None or reading.is_complaint)


async def start_record_instead(
    dispatcher: CollectingDispatcher, tracker: Tracker, *, wants_something: bool
) -> list[EventType] | None:
    """Events that record the latest message as a need (and run the SPIN form), or None.

    For questions the bot could not answer and order lookups: a message that reports a
    problem ("KF… 到手就这样", "我要退款 耳机一直有电流声") is a need, not a question.
    """
    text = (tracker.latest_message.get("text") or "").strip()
    if not text or text.startswith("/") or (tracker.active_loop or {}).get("name"):
        return None
    reading = await asyncio.to_thread(read_message, without_order_numbers(text))
    if not reports_a_problem(reading, wants_something=wants_something):
        return None
    intent = tracker.get_intent_of_latest_message() or ""
    return [*record_events(dispatcher, tracker, reading, intent), FollowupAction("spin_form")]


def without_order_numbers(text: str) -> str:
    """The text without order numbers (they are read by the entity extractor)."""
    return ORDER_NUMBERS.sub(" ", text).strip()


class ActionReadNeed(Action):
    """Decides between recording a need (with the right acknowledgement) and answering."""

    def name(self) -> str:
        """Action name used in domain.yml."""
        return "action_read_need"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[EventType]:
        """Sets `need_kind` (record / question); a need also gets its category and hints."""
        text = (tracker.latest_message.get("text") or "").strip()
        if text.startswith("/"):
            text = ""
        intent = tracker.get_intent_of_latest_message() or ""
        confidence = float((tracker.latest_message.get("intent") or {}).get("confidence") or 0)
        reading = await asyncio.to_thread(read_message, text) if text else Reading(text, 0, 0, 0)
        opener = bool(text) and is_generic_request(service_policy(), text)
        if reading.is_complaint and just_answered(tracker) and not _describes_problem(reading):
            return [SlotSet(NEED_KIND_SLOT, UNSATISFIED)]  # "答非所问": the answer, not a product
        if not is_a_need(reading, intent, confidence, opener):
            return [SlotSet(NEED_KIND_SLOT, QUESTION)]
        return record_events(dispatcher, tracker, reading, intent)
