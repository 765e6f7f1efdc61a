"""Answers from the knowledge base: answer with its source, suggest, or admit not knowing."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.service_plan import service_policy
from bot.db import KbFeedback, KbOutcome, make_engine
from bot.kb_log import KbLog
from bot.service_policy import read_product
from bot.settings import get_settings
from knowledge_index import Hit, KnowledgeBase, KnowledgeIndexError, KnowledgeSettings, decide

OUTCOME_SLOT = "kb_outcome"
FLOW_SLOT = "flow_name"
FLOW_BY_INTENT = {"logistics_issue": "logistics", "return_refund": "returns"}
"""Topics whose unsolved questions continue in a guided flow (data/service/flows.yml)."""
RECORDED_PROBLEM_INTENTS = frozenset({"product_question", "payment_issue"})
"""Topics whose unsolved questions become a service record (the SPIN form asks the rest)."""
ENTRY_SLOT = "kb_entry_id"
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
    return KnowledgeBase(KnowledgeSettings())


@lru_cache(maxsize=1)
def kb_log() -> KbLog:
    """The record of knowledge-base questions in the app database."""
    return KbLog(make_engine(get_settings().database_url))


@dataclass(frozen=True)
class KbResult:
    """What the knowledge base offered for one question."""

    outcome: KbOutcome
    hits: list[Hit]
    version: str


def lookup(query: str, language: str, entry_id: str | None = None) -> KbResult:
    """Searches (blocking) and keeps hits in the customer's language; `entry_id` picks one."""
    kb = knowledge_base()
    try:
        if entry_id is not None:
            chosen = _entry_hit(kb, entry_id)
            return KbResult(
                KbOutcome.answered if chosen else KbOutcome.no_answer,
                [chosen] if chosen else [],
                kb.version or "",
            )
        hits = [h for h in kb.search(query, SEARCH_DEPTH) if h["language"] == language]
    except KnowledgeIndexError:
        return KbResult(KbOutcome.no_answer, [], "")
    settings = kb.settings
    reply = decide(
        hits, settings.answer_threshold, settings.suggest_threshold, settings.max_suggestions
    )
    outcome = {"answer": KbOutcome.answered, "suggest": KbOutcome.suggested}.get(
        reply.band, KbOutcome.no_answer
    )
    return KbResult(outcome, reply.hits or hits[:3], kb.version or "")


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
    dispatcher: CollectingDispatcher, tracker: Tracker, *, utter_when_none: bool
) -> KbResult:
    """Answers or suggests from the knowledge base, records the question, returns the result."""
    message = tracker.latest_message
    language = tracker.get_slot("language") or "zh"
    entry_id = (
        tracker.get_slot(ENTRY_SLOT) if message["intent"].get("name") == "kb_select" else None
    )
    query = message.get("text") or ""
    result = await asyncio.to_thread(lookup, query, language, entry_id)
    if result.outcome == KbOutcome.answered:
        hit = result.hits[0]
        dispatcher.utter_message(
            response="utter_kb_answer", answer=hit["answer"].strip(), source=_source(hit)
        )
    elif result.outcome == KbOutcome.suggested:
        dispatcher.utter_message(
            response="utter_kb_suggestions", buttons=[suggestion_button(h) for h in result.hits]
        )
    elif utter_when_none:
        overview = TOPIC_OVERVIEWS.get(message["intent"].get("name") or "")
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
    dispatcher.utter_message(text=f"{hit['answer'].strip()}\n\n—— {_source(hit)}")
    return True


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
        result = await answer_from_kb(dispatcher, tracker, utter_when_none=True)
        return [SlotSet(OUTCOME_SLOT, result.outcome.value), SlotSet(ENTRY_SLOT, None)]


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
