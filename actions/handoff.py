"""Handing a conversation to a human agent, and what surrounds it.

- `action_handoff` opens (or reuses) the ticket, stores the handoff with its packet, tells the
  customer their place in the queue and when to expect an answer, and pauses the bot
  (`ConversationPaused`): from then on the agent desk owns the conversation.
- `action_rate_service` stores the 1-5 score the customer gives after an agent resolved it
  (or after the scheduled satisfaction question, whose notice sets `rating_ticket`); a score
  at or below the policy's unhappy score opens a supervisor follow-up (`CaseWork.rate`),
  whose own notice tells the customer when they will be contacted.
- `action_session_start` carries slots over and marks VIP customers (slot `customer_vip`),
  which the handoff trigger policy reads.
"""

from __future__ import annotations

import asyncio
import logging
import re
from contextlib import suppress
from functools import lru_cache
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import (
    ActionExecuted,
    ActiveLoop,
    ConversationPaused,
    EventType,
    SessionStarted,
    SlotSet,
)
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.confirmation import reset_need, store_need
from actions.customers import customer_directory
from actions.service_plan import (
    NEED_LABELS,
    NEXT_STEPS,
    app_engine,
    handoff_policy,
    service_policy,
    ticket_store,
    utc_now,
)
from actions.tickets import case_work
from bot.casework import CaseError
from bot.core.db import Handoff, MessageKind, Ticket, TicketStatus
from bot.customers import LinkError
from bot.handoff.packet import (
    CustomerProfile,
    EarlierTicket,
    HandoffPacket,
    KbAnswer,
    customer_texts,
    intents_from_events,
    transcript_from_events,
)
from bot.handoff.policy import HandoffReason
from bot.handoff.store import HandoffStore, NewMessage
from bot.service.sla import format_due

logger = logging.getLogger(__name__)

REASON_SLOT = "handoff_reason"
TICKET_SLOT = "handoff_ticket"
VIP_SLOT = "customer_vip"
RATING_SLOT = "rating_ticket"
OPENING_MESSAGES = 12
"""How many of the latest transcript lines open the desk's conversation view."""

HANDOFF_TICKET_STATUSES = frozenset({TicketStatus.open, TicketStatus.pending_agent})

NEXT_STEP_BY_REASON: dict[HandoffReason, tuple[str, str]] = {
    HandoffReason.explicit_request: (
        "客户要求人工：先看记录里的问题，直接处理，不要让客户重复",
        "The customer asked for a person: read the record and act on it without re-asking",
    ),
    HandoffReason.consecutive_misses: (
        "机器人没听懂：根据对话记录确认客户想要什么",
        "The bot did not understand: confirm from the transcript what the customer wants",
    ),
    HandoffReason.major_complaint: (
        "重大投诉：先致歉安抚，再联系投诉专员与相关部门",
        "Major complaint: apologise first, then bring in the complaints specialist",
    ),
    HandoffReason.urgent_tier: (
        "紧急问题：先确认安全与损失，1 小时内给出处理方案",
        "Urgent: check safety and losses first, give a plan within the hour",
    ),
    HandoffReason.negative_sentiment: (
        "客户情绪激动：先共情致歉，再确认诉求",
        "The customer is upset: acknowledge and apologise, then confirm what they need",
    ),
    HandoffReason.vip_customer: (
        "VIP 客户：优先接待，主动问候",
        "VIP customer: greet them first and handle with priority",
    ),
    HandoffReason.correction_limit: (
        "需求确认三次未成：直接与客户核对诉求",
        "The need could not be confirmed in three rounds: agree it directly with the customer",
    ),
}

_SCORE_WORDS = (
    ("非常不满意", 1),
    ("very unsatisfied", 1),
    ("不满意", 2),
    ("unsatisfied", 2),
    ("非常满意", 5),
    ("very satisfied", 5),
    ("一般", 3),
    ("okay", 3),
    ("满意", 4),
    ("satisfied", 4),
)
_CHINESE_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_SCORE = re.compile(r"(?<!\d)([1-5])(?!\d)|([一二两三四五])\s*(?:分|星)")


@lru_cache(maxsize=1)
def handoff_store() -> HandoffStore:
    """Handoffs, customers and tickets in the app database."""
    return HandoffStore(app_engine())


_BARE_NUMBER = re.compile(r"[\d０-９]{1,3}\s*[.。!！]?")
"""A message that is only a small number ("3", "10")."""


def read_score(text: str) -> int | None:
    """A 1-5 score in the customer's words ("5", "打4分", "五星", "非常满意"), or None."""
    match = _SCORE.search(text)
    if match:
        return int(match.group(1)) if match.group(1) else _CHINESE_DIGITS[match.group(2)]
    lowered = text.lower()
    for words, score in _SCORE_WORDS:
        if words in lowered:
            return score
    return None


def handoff_reason(tracker: Tracker) -> HandoffReason:
    """Why this handoff happens: the slot a trigger set, else the customer asked."""
    value = tracker.get_slot(REASON_SLOT)
    try:
        return HandoffReason(value)
    except ValueError:
        return HandoffReason.explicit_request


def suggested_next_step(reason: HandoffReason, need_payoff: str | None, order: str | None) -> str:
    """What the agent should do first (Chinese · English)."""
    zh, en = NEXT_STEP_BY_REASON[reason]
    if need_payoff in NEXT_STEPS:
        wanted_zh, wanted_en = NEED_LABELS[need_payoff]
        zh += f"；客户希望：{wanted_zh}"
        en += f"; the customer wants {wanted_en}"
    if order:
        zh += f"（订单 {order}）"
        en += f" (order {order})"
    return f"{zh} · {en}"


def _ticket_for(tracker: Tracker, reason: HandoffReason) -> Ticket:
    """The ticket the handoff belongs to: named by a trigger, the session's, or a new one."""
    store = ticket_store()
    number = tracker.get_slot(TICKET_SLOT)
    ticket = store.find(number) if number else None
    if ticket is None:
        if not tracker.get_slot("spin_problem"):
            texts = customer_texts(tracker.events, 3)
            tracker.slots["spin_problem"] = "；".join(texts) or reason.value
        _, record_id = store_need(tracker)
        ticket = store.confirm(
            record_id, at=utc_now(), actor="bot", status=TicketStatus.pending_agent
        )
    if ticket.status == TicketStatus.open:
        ticket = store.transition(ticket.number, TicketStatus.pending_agent, actor="bot")
    return ticket


def open_handoff(tracker: Tracker, reason: HandoffReason) -> tuple[Handoff, bool]:
    """Stores the handoff with its packet (blocking: run it in a thread)."""
    handoffs = handoff_store()
    existing = handoffs.open_for(tracker.sender_id)
    if existing is not None:
        return existing, False
    tickets = ticket_store()
    ticket = _ticket_for(tracker, reason)
    record = tickets.get_record(ticket.record_id)
    channel = tracker.get_latest_input_channel() or ticket.channel
    language = "en" if (tracker.get_slot("language") or ticket.language) == "en" else "zh"
    # The phone on file is the customer's verified one, never an order's the caller typed.
    phone = customer_directory().verified_phone(tracker.sender_id)
    customer = handoffs.upsert_customer(
        tracker.sender_id,
        channel,
        language=language,
        phone=phone,
        email=record.email if record else None,
    )
    earlier = [t for t in tickets.for_customer(tracker.sender_id, limit=6) if t.id != ticket.id]
    transcript = transcript_from_events(tracker.events)
    packet = HandoffPacket(
        conversation_id=tracker.sender_id,
        channel=channel,
        language=language,
        reason=reason.value,
        created_at=utc_now(),
        transcript=transcript,
        intents=intents_from_events(tracker.events),
        kb_answers=[KbAnswer(**answer) for answer in handoffs.kb_answers(tracker.sender_id)],
        service_record=_record_fields(record),
        spin={
            stage: tracker.get_slot(f"spin_{stage}")
            for stage in ("situation", "problem", "implication", "need_payoff")
        },
        urgency_tier=ticket.urgency.value,
        complaint_grade=ticket.complaint_grade.value if ticket.complaint_grade else None,
        due_at=ticket.due_at,
        ticket_number=ticket.number,
        customer=CustomerProfile(
            id=customer.id,
            name=customer.name,
            phone=customer.phone,
            email=customer.email,
            vip=customer.vip or customer_directory().is_vip(tracker.sender_id),
            first_seen=customer.first_seen_at,
        ),
        earlier_tickets=[
            EarlierTicket(
                number=t.number,
                status=t.status.value,
                summary=t.summary,
                created_at=t.created_at,
                satisfaction=t.satisfaction,
            )
            for t in earlier[:5]
        ],
        suggested_next_step=suggested_next_step(
            reason, record.need_payoff if record else None, record.order_number if record else None
        ),
    )
    kinds = {"customer": MessageKind.customer, "bot": MessageKind.bot, "agent": MessageKind.agent}
    opening = [
        NewMessage(kinds[line.speaker], line.text, line.at)
        for line in transcript[-OPENING_MESSAGES:]
    ]
    return handoffs.open(
        conversation_id=tracker.sender_id,
        channel=channel,
        language=language,
        reason=reason.value,
        ticket_id=ticket.id,
        packet=packet.as_json(),
        due_at=ticket.due_at,
        opening=opening,
    )


def _record_fields(record: Any) -> dict[str, Any] | None:
    if record is None:
        return None
    fields = (
        "category", "order_number", "product", "situation", "problem", "implication", "impacts",
        "need_payoff", "need_points", "preferences", "special_requests", "skipped", "email",
        "classification_reasons", "completeness",
    )  # fmt: skip
    values = {name: getattr(record, name) for name in fields}
    values["problem_since"] = record.problem_since.isoformat() if record.problem_since else None
    return values


class ActionHandoff(Action):
    """Hands the conversation to the agents and pauses the bot."""

    def name(self) -> str:
        """Action name used in domain.yml."""
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """Opens the handoff, says where the customer stands in the queue, pauses."""
        reason = handoff_reason(tracker)
        handoff, created = await asyncio.to_thread(open_handoff, tracker, reason)
        store = handoff_store()
        window = handoff_policy().online_window
        position, online = await asyncio.to_thread(
            lambda: (store.position(handoff), store.online_agents(window))
        )
        due = format_due(service_policy(), handoff.due_at, handoff.language)
        if not online:
            dispatcher.utter_message(response="utter_handoff_offline", due=due)
        else:
            dispatcher.utter_message(
                response="utter_handoff_queued",
                position=position or 1,
                ahead=(position or 1) - 1,
                due=due,
            )
        events: list[EventType] = [
            ActiveLoop(None),
            SlotSet("requested_slot", None),
            SlotSet(REASON_SLOT, None),
            SlotSet(TICKET_SLOT, None),
        ]
        if created:
            events += reset_need()
        return [*events, ConversationPaused()]


class ActionRateService(Action):
    """Stores the customer's 1-5 satisfaction score for the ticket an agent resolved."""

    def name(self) -> str:
        """Action name used in domain.yml."""
        return "action_rate_service"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """Reads the score (button or words), stores it, thanks; asks again if unclear.

        A number or star count is a rating only when the bot asked for one (an agent resolved
        a ticket, `rating_ticket` is set). Otherwise a bare number ("3") is asked about and
        praise ("五星好评") is thanked for, without recording or thanking for a rating.
        """
        number = tracker.get_slot(RATING_SLOT)
        if not number:
            text = (tracker.latest_message.get("text") or "").strip()
            if _BARE_NUMBER.fullmatch(text):
                dispatcher.utter_message(response="utter_clarify_number", number=text)
            else:
                dispatcher.utter_message(response="utter_thanks_for_praise")
            return []
        entity = next(tracker.get_latest_entity_values("score"), None)
        score = read_score(str(entity)) if entity is not None else None
        if score is None:
            score = read_score(tracker.latest_message.get("text") or "")
        if score is None:
            dispatcher.utter_message(response="utter_ask_rating_again")
            return []
        try:
            await asyncio.to_thread(case_work().rate, number, score)
        except CaseError as error:  # e.g. reopened meanwhile: thank, record nothing
            logger.warning("Rating %s/5 of %s not stored: %s", score, number, error)
            dispatcher.utter_message(response="utter_rating_thanks", score=score)
            return [SlotSet(RATING_SLOT, None)]
        unhappy = score <= service_policy().service_loop.unhappy_score
        # An unhappy score's follow-up notice promises the supervisor's call: say sorry only.
        dispatcher.utter_message(
            response="utter_rating_sorry" if unhappy else "utter_rating_thanks", score=score
        )
        return [SlotSet(RATING_SLOT, None)]


class ActionSessionStart(Action):
    """Starts a session: carries the slots over and marks VIP customers."""

    def name(self) -> str:
        """Action name Rasa runs at every new session."""
        return "action_session_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """`SessionStarted`, the carried-over slots, `customer_vip`, then listen.

        A conversation an agent still has stays paused across the new session.
        """
        store = handoff_store()
        directory = customer_directory()

        def look_up() -> tuple[bool, Handoff | None]:
            with suppress(LinkError):  # an id too long for the directory is no customer
                directory.customer_for(tracker.sender_id)  # created on first sight
            return directory.is_vip(tracker.sender_id), store.open_for(tracker.sender_id)

        vip_customer, handoff = await asyncio.to_thread(look_up)  # VIP follows the customer
        carried = [
            SlotSet(name, value)
            for name, value in tracker.slots.items()
            if value is not None and name not in (VIP_SLOT, "session_started_metadata")
        ]
        vip = bool(vip_customer and handoff_policy().triggers.vip.enabled)
        events: list[EventType] = [SessionStarted(), *carried, SlotSet(VIP_SLOT, vip)]
        if handoff is not None:  # a new session must not wake the bot while an agent has it
            events.append(ConversationPaused())
        return [*events, ActionExecuted("action_listen")]
