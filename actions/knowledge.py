"""Answers from the knowledge base: answer with its source, suggest, or admit not knowing."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.needs import start_record_instead
from actions.service_plan import app_engine, sentence_encoder, service_policy
from bot.core.db import KbFeedback, KbOutcome
from bot.core.settings import get_settings
from bot.knowledge.index import knowledge_settings
from bot.knowledge.query_log import KbLog
from bot.service.reading import read_product
from bot.understanding import looks_like_question, split_clauses
from knowledge_index import Hit, KnowledgeBase, KnowledgeIndexError, decide

OUTCOME_SLOT = "kb_outcome"
FLOW_SLOT = "flow_name"
FLOW_BY_INTENT = {"logistics_issue": "logistics", "return_refund": "returns"}
"""Topics whose unsolved questions continue in a guided flow (data/service/flows.yml)."""
RECORDED_PROBLEM_INTENTS = frozenset({"product_question", "payment_issue"})
"""Topics whose unsolved questions become a service record (the SPIN form asks the rest)."""
ENTRY_SLOT = "kb_entry_id"
RECORDABLE_INTENTS = frozenset(
    {"product_question", "return_refund", "logistics_issue", "payment_issue"}
)
"""Questions that may really be problem reports to record (when the KB cannot answer)."""
SURE_TOPIC = 0.95
"""NLU confidence at which a question's topic overview is shown when no entry answers it."""
SEARCH_DEPTH = 10
"""Hits fetched before keeping those in the customer's language."""

TOPIC_OVERVIEWS = {
    "return_refund": "utter_return_policy",
    "invoice": "utter_invoice_help",
    "payment_issue": "utter_payment_help",
    "account_membership": "utter_account_help",
    "product_question": "utter_product_help",
    "logistics_issue": "utter_logistics_help",
}
"""When the knowledge base has no answer, the topic's overview (it asks for specifics)."""


@lru_cache(maxsize=1)
def knowledge_base() -> KnowledgeBase:
    """The published index; loads on first search and hot-reloads new versions."""
    return KnowledgeBase(knowledge_settings(get_settings()), encoder=sentence_encoder())


@lru_cache(maxsize=1)
def kb_log() -> KbLog:
    """The record of knowledge-base questions in the app database."""
    return KbLog(app_engine())


@dataclass(frozen=True)
class KbResult:
    """What the knowledge base offered for one question.

    `which` marks suggestions that are the separate requests of one message ("查订单 另外
    发票怎么开"): the bot asks which to handle first instead of "did you mean".
    """

    outcome: KbOutcome
    hits: list[Hit]
    version: str
    which: bool = False
    record: list[EventType] = field(default_factory=list)


CONTEXT_DOUBT = 0.5
"""A follow-up read together with the question before it is answered only when the doubt
left (1 - confidence) is at most this share of the doubt allowed for a question on its own."""
SHORT_FOLLOW_UP = 14
"""Messages up to this many characters may lean on the question before ("那托运呢")."""
MIN_CLAUSE = 4
"""Clauses shorter than this many characters are not searched on their own."""


def _search(kb: KnowledgeBase, query: str, language: str) -> tuple[str, list[Hit]]:
    """The decision band and its hits (or the best hits) for one query."""
    hits = kb.search(query, SEARCH_DEPTH, language=language)
    hits = [h for h in hits if h["language"] == language]
    settings = kb.settings
    reply = decide(
        hits,
        settings.answer_threshold,
        settings.suggest_threshold,
        settings.max_suggestions,
        suggest_mass=settings.suggest_mass,
    )
    return reply.band, reply.hits or hits[:3]


def lookup(
    query: str,
    language: str,
    entry_id: str | None = None,
    *,
    context: str = "",
) -> KbResult:
    """Searches (blocking) and keeps hits in the customer's language; `entry_id` picks one.

    When the message itself is not answered with confidence: a message of several requests
    is searched clause by clause (one sure answer is given, several are offered to choose
    from), and a short follow-up is read together with the customer's previous message
    (`context`), answered only with a margin of extra confidence.
    """
    kb = knowledge_base()
    try:
        if entry_id is not None:
            chosen = _entry_hit(kb, entry_id)
            return KbResult(
                KbOutcome.answered if chosen else KbOutcome.no_answer,
                [chosen] if chosen else [],
                kb.version or "",
            )
        band, hits = _search(kb, query, language)
        version = kb.version or ""
        if band == "answer":
            return KbResult(KbOutcome.answered, hits, version)
        clauses = [c for c in split_clauses(query) if len(c) >= MIN_CLAUSE]
        if len(clauses) >= 2:
            requests = _requests(kb, clauses, language)
            if len(requests) > 1:  # several requests: which first (the first is the main one)
                return KbResult(
                    KbOutcome.suggested, [hits[0] for _, hits in requests][:3], version, True
                )
            if requests:
                clause_band, clause_hits = requests[0]
                if clause_band == "answer":
                    return KbResult(KbOutcome.answered, clause_hits[:1], version)
                if band == "none":
                    return KbResult(KbOutcome.suggested, clause_hits, version)
        if context and len(query) <= SHORT_FOLLOW_UP:
            context_band, context_hits = _search(kb, f"{context} {query}", language)
            threshold = 1 - (1 - kb.settings.answer_threshold) * CONTEXT_DOUBT
            if context_band == "answer" and context_hits[0]["confidence"] >= threshold:
                return KbResult(KbOutcome.answered, context_hits[:1], version)
            if band == "none" and context_band == "suggest":
                return KbResult(KbOutcome.suggested, context_hits, version)
    except KnowledgeIndexError:
        return KbResult(KbOutcome.no_answer, [], "")
    outcome = KbOutcome.suggested if band == "suggest" else KbOutcome.no_answer
    return KbResult(outcome, hits, version)


def _requests(kb: KnowledgeBase, clauses: list[str], language: str) -> list[tuple[str, list[Hit]]]:
    """The separate requests of a message, in the customer's order.

    Each clause the knowledge base answers or offers with confidence, one per entry.
    """
    found: list[tuple[str, list[Hit]]] = []
    for clause in clauses:
        clause_band, clause_hits = _search(kb, clause, language)
        if clause_band == "none" or not clause_hits:
            continue
        if all(clause_hits[0]["entry_id"] != hits[0]["entry_id"] for _, hits in found):
            found.append((clause_band, clause_hits))
    return found


def previous_question(tracker: Tracker) -> str:
    """The customer's message before the latest one, if it was typed (not a button)."""
    users = [e for e in tracker.events if e.get("event") == "user"]
    if len(users) < 2:
        return ""
    text = str(users[-2].get("text") or "").strip()
    return "" if text.startswith("/") else text[:200]


def _entry_hit(kb: KnowledgeBase, entry_id: str) -> Hit | None:
    entry = next((e for e in kb.index.entries if e.id == entry_id), None)
    if entry is None:
        return None
    return Hit(
        entry_id=entry.id,
        score=1.0,
        confidence=1.0,
        question=entry.question,
        answer=entry.answer,
        link=entry.link,
        topic=entry.topic,
        language=entry.language,
        dense_score=1.0,
        lexical_score=1.0,
    )


def suggestion_button(hit: Hit) -> dict[str, str]:
    """A button that asks for one entry by id (intent `kb_select`)."""
    payload = json.dumps({ENTRY_SLOT: hit["entry_id"]})
    return {"title": hit["question"], "payload": f"/kb_select{payload}"}


async def answer_from_kb(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    *,
    utter_when_none: bool,
    record_problems: bool = False,
) -> KbResult:
    """Answers or suggests from the knowledge base, records the question, returns the result.

    With `record_problems`, a message the knowledge base cannot answer with confidence that
    reports a problem and a wanted outcome or a complaint ("我要退款 耳机一直有电流声")
    becomes a need to record instead: `result.record` holds the events that start it.
    """
    message = tracker.latest_message
    language = tracker.get_slot("language") or "zh"
    entry_id = (
        tracker.get_slot(ENTRY_SLOT) if message["intent"].get("name") == "kb_select" else None
    )
    query = message.get("text") or ""
    context = previous_question(tracker) if entry_id is None else ""
    result = await asyncio.to_thread(lookup, query, language, entry_id, context=context)
    record: list[EventType] | None = None
    if record_problems and entry_id is None and not looks_like_question(query):
        # "我要退款 耳机一直有电流声": a problem and a wanted outcome, not a question
        record = await start_record_instead(dispatcher, tracker, wants_something=True)
    if message["intent"].get("name") == "out_of_scope" and result.outcome != KbOutcome.answered:
        result = replace(result, outcome=KbOutcome.no_answer)  # no "did you mean" for these
    if record:
        result = replace(result, outcome=KbOutcome.no_answer, record=record)
    elif result.outcome == KbOutcome.suggested and result.which:
        dispatcher.utter_message(
            response="utter_ask_which", buttons=[suggestion_button(h) for h in result.hits]
        )
    elif result.outcome == KbOutcome.answered:
        hit = result.hits[0]
        dispatcher.utter_message(
            response="utter_kb_answer",
            answer=hit["answer"].strip(),
            source=_source(hit),
            kb_entry_id=hit["entry_id"],
        )
    elif result.outcome == KbOutcome.suggested:
        dispatcher.utter_message(
            response="utter_kb_suggestions", buttons=[suggestion_button(h) for h in result.hits]
        )
    elif utter_when_none:
        intent = message["intent"].get("name") or ""
        if intent == "out_of_scope":
            dispatcher.utter_message(
                response="utter_offer_human" if _insists(tracker) else "utter_out_of_scope"
            )
        else:  # a topic's overview only when the topic is certain, else "tell me more"
            sure = float(message["intent"].get("confidence") or 0) >= SURE_TOPIC
            overview = TOPIC_OVERVIEWS.get(intent) if sure else None
            dispatcher.utter_message(response=overview or "utter_kb_clarify")
    await asyncio.to_thread(
        kb_log().record,
        sender_id=tracker.sender_id,
        channel=tracker.get_latest_input_channel() or "",
        language=language,
        query=query if entry_id is None else f"[{entry_id}] {query}",
        outcome=result.outcome,
        entry_id=result.hits[0]["entry_id"] if result.outcome == KbOutcome.answered else None,
        confidence=result.hits[0]["confidence"] if result.hits else 0.0,
        top_hits=[_summary(h) for h in result.hits],
        index_version=result.version,
    )
    return result


async def answer_entry(dispatcher: CollectingDispatcher, tracker: Tracker, entry_id: str) -> bool:
    """Utters one knowledge entry (by id) with its source; False when the index lacks it."""
    language = tracker.get_slot("language") or "zh"
    result = await asyncio.to_thread(lookup, "", language, entry_id)
    if result.outcome != KbOutcome.answered:
        return False
    hit = result.hits[0]
    dispatcher.utter_message(
        text=f"{hit['answer'].strip()}\n\n—— {_source(hit)}", kb_entry_id=hit["entry_id"]
    )
    return True


def _insists(tracker: Tracker) -> bool:
    """The bot said "outside what I can help with" just before: offer a person now."""
    users = [i for i, event in enumerate(tracker.events) if event.get("event") == "user"]
    for event in reversed(tracker.events[: users[-1]] if users else []):
        if event.get("event") == "user":
            return False
        if event.get("event") == "bot":
            return (event.get("metadata") or {}).get("utter_action") == "utter_out_of_scope"
    return False


def _source(hit: Hit) -> str:
    return f"{hit['question']} ({hit['link']})" if hit["link"] else hit["question"]


def _summary(hit: Hit) -> dict[str, Any]:
    return {
        "entry_id": hit["entry_id"],
        "confidence": round(hit["confidence"], 4),
        "score": round(hit["score"], 4),
        "question": hit["question"],
    }


class ActionAnswerFromKb(Action):
    """Product and policy questions: answer with source, suggest, or ask for specifics."""

    def name(self) -> str:
        """Action name used in domain.yml."""
        return "action_answer_from_kb"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[EventType]:
        """Sets `kb_outcome` so that feedback and the miss counter know what happened."""
        intent = tracker.get_intent_of_latest_message() or ""
        result = await answer_from_kb(
            dispatcher,
            tracker,
            utter_when_none=True,
            record_problems=intent in RECORDABLE_INTENTS,
        )
        return [
            SlotSet(OUTCOME_SLOT, None if result.record else result.outcome.value),
            SlotSet(ENTRY_SLOT, None),
            SlotSet("need_kind", None),
            *result.record,
        ]


class ActionKbFeedback(Action):
    """Records "did this solve it?" for the latest answer and reacts to it."""

    def name(self) -> str:
        """Action name used in domain.yml."""
        return "action_kb_feedback"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[EventType]:
        """Solved: glad. Not solved: a guided flow for its topic, else offer a human."""
        solved = tracker.get_intent_of_latest_message() == "affirm"
        answered = tracker.get_slot(OUTCOME_SLOT) == KbOutcome.answered.value
        if answered:
            feedback = KbFeedback.solved if solved else KbFeedback.not_solved
            await asyncio.to_thread(kb_log().record_feedback, tracker.sender_id, feedback)
        question = None if solved else question_asked(tracker)
        intent = _intent_name(question)
        if question is not None and intent in FLOW_BY_INTENT:
            dispatcher.utter_message(response="utter_flow_intro")
            return [SlotSet(OUTCOME_SLOT, None), SlotSet(FLOW_SLOT, FLOW_BY_INTENT[intent])]
        if question is not None and intent in RECORDED_PROBLEM_INTENTS and question.get("text"):
            dispatcher.utter_message(response="utter_spin_intro_problem")
            return [SlotSet(OUTCOME_SLOT, None), *record_problem(str(question["text"]))]
        if not answered:
            dispatcher.utter_message(response="utter_anything_else")
            return []
        dispatcher.utter_message(response="utter_kb_glad" if solved else "utter_kb_not_solved")
        return [SlotSet(OUTCOME_SLOT, None)]


def question_asked(tracker: Tracker) -> dict[str, Any] | None:
    """The customer message before the latest one (the question the answer was for)."""
    users = [e for e in tracker.events if e.get("event") == "user"]
    return users[-2] if len(users) >= 2 else None


def _intent_name(user_event: dict[str, Any] | None) -> str:
    intent = ((user_event or {}).get("parse_data") or {}).get("intent") or {}
    return str(intent.get("name") or "")


def record_problem(text: str) -> list[EventType]:
    """Starts the SPIN record of an unsolved problem with the question as its description."""
    product = read_product(service_policy(), text)
    return [
        SlotSet("record_need", True),
        SlotSet("spin_category", "problem"),
        SlotSet("spin_problem", text),
        SlotSet("spin_notes", [text]),
        SlotSet("spin_situation", product),
    ]
