"""The need confirmation ("需求确认函"): summary, corrections, and the ticket it becomes.

After the SPIN questions the bot classifies the need (urgency tier, complaint grade, from the
policy file), stores the service record, and shows the understood need, the next step and the
time commitment. The customer confirms (a ticket opens, with an optional email copy) or
corrects; after three correction rounds an agent takes over with the record attached.
"""

from __future__ import annotations

import asyncio
import logging
import re
from contextlib import suppress
from dataclasses import replace
from datetime import datetime
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.customers import customer_directory
from actions.needs import read_message
from actions.orders import order_store
from actions.service_plan import (
    CHANNEL_LABELS,
    DEFAULT_NEXT_STEP,
    GRADE_LABELS,
    IMPACT_LABELS,
    MAJOR_NEXT_STEP,
    NEED_LABELS,
    NEXT_STEPS,
    SKIPPED,
    TIER_LABELS,
    handoff_policy,
    label,
    service_policy,
    ticket_store,
    utc_now,
)
from actions.spin import CONTACT_TIME_SLOT, SPIN_SLOTS, customer_text, entity_value
from bot.core.db import ComplaintGrade, ServiceRecord, Ticket, TicketStatus, UrgencyTier
from bot.core.settings import get_settings
from bot.handoff.policy import HandoffReason
from bot.service.classification import Classification, classify
from bot.service.mailer import MailError, confirmation_letter, send_letter
from bot.service.orders import InvalidOrderNumber, normalize_order_number
from bot.service.reading import read_special_requests
from bot.service.records import RecordDraft
from bot.service.sla import confirmation_due_at, due_at, format_due
from bot.understanding import Reading

logger = logging.getLogger(__name__)

MAX_CORRECTION_ROUNDS = 3
PROBLEM_INTENTS = frozenset({"complain", "urgent_issue", "product_question", "logistics_issue"})
"""Intents of a "that's not right" message that restates the problem."""
_LEADING_NO = re.compile(
    r"^\s*(不对|不是|错了|no|nope|not quite|wrong)[\s,，。.!！:：]*", re.IGNORECASE
)
INTENTS_BY_CATEGORY = {
    "complaint": ["complain"],
    "urgent": ["urgent_issue"],
    "logistics": ["logistics_issue"],
    "returns": ["return_refund"],
}
RESET_SLOTS = (
    *SPIN_SLOTS,
    CONTACT_TIME_SLOT,
    "spin_category",
    "spin_problem_since",
    "spin_hints",
    "spin_notes",
    "spin_skipped",
    "spin_record_id",
    "spin_product",
    "spin_order_product",
    "spin_order_check",
    "spin_impacts",
    "need_kind",
    "order_number",
)


def _known(value: Any) -> str | None:
    return None if value in (None, "", SKIPPED) else str(value)


def classify_need(tracker: Tracker) -> Classification:
    """Urgency tier and complaint grade of the need in the tracker's SPIN slots.

    The readers' findings (`spin_hints`: hazard, urgent, complaint; `spin_impacts`) and the
    category the need was opened with decide; the policy says what follows from them.
    """
    hints = tracker.get_slot("spin_hints") or []
    category = tracker.get_slot("spin_category") or ""
    intents = list(INTENTS_BY_CATEGORY.get(category, []))
    texts = list(tracker.get_slot("spin_notes") or [])
    texts += [t for t in (_known(tracker.get_slot("spin_problem")),) if t]
    impacts = set(tracker.get_slot("spin_impacts") or [])
    if "hazard" in hints:
        impacts.add("safety")
    classification = classify(
        service_policy(),
        intents=intents,
        texts=texts,
        implication=_known(tracker.get_slot("spin_implication")),
        impacts=impacts,
        complaint="complaint" in hints,
        urgent="urgency:urgent" in hints,
    )
    if "complaint:major" in hints and classification.complaint_grade != ComplaintGrade.major:
        classification = replace(
            classification,
            complaint_grade=ComplaintGrade.major,
            reasons=(*classification.reasons, "guided flow outcome: major complaint"),
        )
    return classification


def build_draft(
    tracker: Tracker, classification: Classification, created_at: datetime
) -> RecordDraft:
    """The service record as the SPIN slots describe it."""
    policy = service_policy()
    language = tracker.get_slot("language") or "zh"
    channel = tracker.get_latest_input_channel() or "unknown"
    situation = _known(tracker.get_slot("spin_situation"))
    order_number = None
    if situation:
        try:
            order_number = normalize_order_number(situation)
        except InvalidOrderNumber:
            order_number = None
    product = (
        _product(order_number, language)
        if order_number
        else tracker.get_slot("spin_product") or situation
    )
    problem = _known(tracker.get_slot("spin_problem"))
    implication = _known(tracker.get_slot("spin_implication"))
    need_payoff = _known(tracker.get_slot("spin_need_payoff"))
    notes: list[str] = list(tracker.get_slot("spin_notes") or [])
    special: list[str] = []
    for note in notes:
        special += [s for s in read_special_requests(policy, note) if s not in special]
    need_points = [p for p in (problem, implication) if p]
    if need_payoff:
        need_points.append(label(NEED_LABELS, need_payoff, language))
    contact_time = _known(tracker.get_slot(CONTACT_TIME_SLOT))
    since = tracker.get_slot("spin_problem_since")
    return RecordDraft(
        customer_id=tracker.sender_id,
        channel=channel,
        language=language,
        category=tracker.get_slot("spin_category") or "problem",
        order_number=order_number,
        product=product,
        situation=situation,
        problem=problem,
        problem_since=datetime.fromisoformat(since).date() if since else None,
        implication=implication,
        impacts=sorted(classification.impacts),
        need_payoff=need_payoff,
        need_points=need_points,
        preferences={
            "contact_channel": "phone" if need_payoff == "call_back" else channel,
            "contact_time": contact_time or ("any time" if language == "en" else "随时"),
            "language": language,
        },
        special_requests=special,
        skipped=[s.removeprefix("spin_") for s in tracker.get_slot("spin_skipped") or []],
        urgency=classification.tier,
        complaint_grade=classification.complaint_grade,
        classification_reasons=list(classification.reasons),
        correction_rounds=int(tracker.get_slot("spin_corrections") or 0),
        created_at=created_at,
        confirmation_due_at=confirmation_due_at(policy, created_at),
        due_at=due_at(policy, classification, created_at),
        email=tracker.get_slot("email"),
    )


def _product(order_number: str, language: str) -> str | None:
    order = order_store().find(order_number)
    if order is None:
        return None
    return order.product_en if language == "en" else order.product_zh


def next_step(record: ServiceRecord | RecordDraft, language: str) -> str:
    """What happens next, in the customer's language."""
    pair = NEXT_STEPS.get(record.need_payoff or "", DEFAULT_NEXT_STEP)
    step = pair[1] if language == "en" else pair[0]
    if record.complaint_grade is not None and record.complaint_grade.value == "major":
        window = service_policy().complaint_grades.window(ComplaintGrade.major)
        departments = ", ".join(window.departments)
        prefix = MAJOR_NEXT_STEP[1] if language == "en" else MAJOR_NEXT_STEP[0]
        step = prefix.format(departments=departments) + step
    return step


def summary(draft: RecordDraft) -> str:
    """The need confirmation's body: need, outcome wanted, tier, next step, time commitment."""
    en = draft.language == "en"
    unknown = "not given" if en else "未提供"

    def line(zh: str, english: str, value: str | None) -> str:
        """One list item (a Markdown list in the web chat, plain lines elsewhere)."""
        return f"- {english}: {value or unknown}" if en else f"- {zh}：{value or unknown}"

    situation = draft.order_number or draft.situation
    if draft.order_number and draft.product:
        situation = (
            f"{draft.order_number} ({draft.product})"
            if en
            else (f"{draft.order_number}（{draft.product}）")
        )
    problem = draft.problem
    if problem and draft.problem_since:
        since = draft.problem_since.isoformat()
        problem = f"{problem} (since {since})" if en else f"{problem}（自 {since} 起）"
    implication = draft.implication
    if implication and implication == draft.problem and draft.impacts:  # read from one message
        separator = ", " if en else "、"
        implication = separator.join(label(IMPACT_LABELS, i, draft.language) for i in draft.impacts)
    policy = service_policy()
    tier = label(TIER_LABELS, draft.urgency.value, draft.language)
    if draft.complaint_grade is not None:
        tier += ", " if en else "，"
        tier += label(GRADE_LABELS, draft.complaint_grade.value, draft.language)
    lines = [
        line("订单/商品", "Order / product", situation),
        line("问题", "Problem", problem),
        line("影响", "Impact", implication),
        line("期望处理", "Outcome wanted", label(NEED_LABELS, draft.need_payoff, draft.language)),
        line("紧急程度", "Priority", tier),
        line("下一步", "Next step", next_step(draft, draft.language)),
        line(
            "承诺时间",
            "Committed by",
            format_due(policy, draft.due_at, draft.language) if draft.due_at else None,
        ),
        line(
            "联系偏好",
            "Contact",
            f"{label(CHANNEL_LABELS, draft.preferences.get('contact_channel'), draft.language)}"
            f"{', ' if en else '，'}{draft.preferences.get('contact_time')}",
        ),
    ]
    if draft.special_requests:
        lines.append(line("特别要求", "Special requests", ", ".join(draft.special_requests)))
    return "\n".join(lines)


def store_need(tracker: Tracker) -> tuple[RecordDraft, int]:
    """Classifies the need and stores its record, new or corrected (blocking: use a thread)."""
    store = ticket_store()
    record_id = tracker.get_slot("spin_record_id")
    existing = store.get_record(int(record_id)) if record_id is not None else None
    created_at = existing.created_at if existing is not None else utc_now()
    draft = build_draft(tracker, classify_need(tracker), created_at)
    return draft, store.save_record(draft, existing.id if existing is not None else None)


async def store_and_summarise(
    dispatcher: CollectingDispatcher, tracker: Tracker, extra: dict[str, Any] | None = None
) -> list[EventType]:
    """Stores the record (with the `extra` slot values) and shows the need confirmation."""
    for slot, value in (extra or {}).items():
        tracker.slots[slot] = value
    draft, record_id = await asyncio.to_thread(store_need, tracker)
    dispatcher.utter_message(response="utter_need_confirmation", summary=summary(draft))
    return [SlotSet(slot, value) for slot, value in (extra or {}).items()] + [
        SlotSet("spin_record_id", float(record_id))
    ]


class ActionConfirmNeed(Action):
    """Shows the need confirmation once the SPIN questions are answered."""

    def name(self) -> str:
        """Action name used in domain.yml."""
        return "action_confirm_need"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """Stores the record and asks the customer to confirm or correct it."""
        return await store_and_summarise(dispatcher, tracker)


def inline_corrections(tracker: Tracker, reading: Reading | None) -> dict[str, Any]:
    """Corrections stated in the "that's not right" message itself (an order number, an outcome)."""
    corrections: dict[str, Any] = {}
    number = entity_value(tracker, "order_number")
    if number:
        with suppress(InvalidOrderNumber):
            corrections["spin_situation"] = normalize_order_number(number)
    payoff = reading.outcome if reading is not None else None
    if payoff is not None and payoff != tracker.get_slot("spin_need_payoff"):
        corrections["spin_need_payoff"] = payoff
    email = entity_value(tracker, "email")
    if email:
        corrections["email"] = email
    text = customer_text(tracker)
    if not corrections and text and tracker.get_intent_of_latest_message() in PROBLEM_INTENTS:
        corrections["spin_problem"] = _strip_no(text)
    return corrections


def _strip_no(text: str) -> str:
    """The correction without its leading "不对，" / "no, "."""
    return _LEADING_NO.sub("", text).strip() or text


class ActionAskCorrection(Action):
    """The customer says the summary is wrong: apply what they said or ask which part."""

    def name(self) -> str:
        """Action name used in domain.yml."""
        return "action_ask_correction"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """Counts the round; after three, an agent takes the record over."""
        rounds = int(tracker.get_slot("spin_corrections") or 0) + 1
        if rounds > MAX_CORRECTION_ROUNDS:
            return await hand_over_after_corrections(dispatcher, tracker)
        text = customer_text(tracker)
        reading = await asyncio.to_thread(read_message, text) if text else None
        corrections = inline_corrections(tracker, reading)
        if corrections:
            return await store_and_summarise(
                dispatcher, tracker, {**corrections, "spin_corrections": float(rounds)}
            )
        dispatcher.utter_message(response="utter_ask_correction_field")
        return [SlotSet("spin_corrections", float(rounds))]


async def hand_over_after_corrections(
    dispatcher: CollectingDispatcher, tracker: Tracker
) -> list[EventType]:
    """Opens the ticket for an agent (status pending_agent) with the record as it stands."""
    _, record_id = await asyncio.to_thread(store_need, tracker)
    ticket = await asyncio.to_thread(
        lambda: ticket_store().confirm(
            record_id, at=utc_now(), actor="bot", status=TicketStatus.pending_agent
        )
    )
    dispatcher.utter_message(response="utter_correction_limit", ticket_number=ticket.number)
    return reset_need() + hand_over(HandoffReason.correction_limit, ticket.number)


def hand_over(reason: HandoffReason, ticket_number: str) -> list[EventType]:
    """Events that run `action_handoff` next, for this reason and ticket."""
    return [
        SlotSet("handoff_reason", reason.value),
        SlotSet("handoff_ticket", ticket_number),
        FollowupAction("action_handoff"),
    ]


def escalation(ticket: Ticket) -> HandoffReason | None:
    """Why a just-opened ticket goes straight to an agent (handoff.yml triggers), if it does."""
    triggers = handoff_policy().triggers
    if triggers.major_complaint and ticket.complaint_grade == ComplaintGrade.major:
        return HandoffReason.major_complaint
    if triggers.urgent_tier and ticket.urgency == UrgencyTier.urgent:
        return HandoffReason.urgent_tier
    return None


def reset_need() -> list[EventType]:
    """Forgets the need once it is a ticket, so the next one starts afresh."""
    return [SlotSet(slot, None) for slot in RESET_SLOTS] + [SlotSet("spin_corrections", 0.0)]


class ActionStartCorrection(Action):
    """Clears the part the customer picked, so the SPIN form asks it again."""

    def name(self) -> str:
        """Action name used in domain.yml."""
        return "action_start_correction"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """Only SPIN slots can be picked; anything else changes nothing."""
        choice = entity_value(tracker, "choice")
        if choice not in SPIN_SLOTS:
            return []
        skipped = [s for s in tracker.get_slot("spin_skipped") or [] if s != choice]
        events: list[EventType] = [SlotSet(choice, None), SlotSet("spin_skipped", skipped)]
        if choice == "spin_need_payoff":
            events.append(SlotSet(CONTACT_TIME_SLOT, None))
        return events


class ActionOpenTicket(Action):
    """The customer confirmed: the record becomes a ticket; an email copy if asked for."""

    def name(self) -> str:
        """Action name used in domain.yml."""
        return "action_open_ticket"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """Opens (idempotently) the ticket and tells its number, next step and due time."""
        record_id = tracker.get_slot("spin_record_id")
        if record_id is None:
            dispatcher.utter_message(response="utter_anything_else")
            return []
        store = ticket_store()
        ticket = await asyncio.to_thread(
            lambda: store.confirm(int(record_id), at=utc_now(), actor="customer")
        )
        record = await asyncio.to_thread(store.get_record, int(record_id))
        assert record is not None
        language = record.language
        due = format_due(service_policy(), ticket.due_at, language)
        step = next_step(record, language)
        dispatcher.utter_message(
            response="utter_ticket_opened",
            ticket_number=ticket.number,
            tier=label(TIER_LABELS, ticket.urgency.value, language),
            next_step=step,
            due=due,
        )
        if record.email:
            await email_copy(dispatcher, record, ticket, due, step, tracker.sender_id)
        reason = escalation(ticket)
        return reset_need() + (hand_over(reason, ticket.number) if reason else [])


async def email_copy(
    dispatcher: CollectingDispatcher,
    record: ServiceRecord,
    ticket: Any,
    due: str,
    step: str,
    sender_id: str,
) -> None:
    """Sends the need confirmation by email when SMTP is configured; says if it failed.

    Only to the email on file of the caller's customer (verified), at most
    `bot.customers.DAILY_EMAILS` a day: a typed address is never mailed as given.
    """
    settings = get_settings()
    if not settings.smtp_host or not record.email:
        return  # email copies are off
    address = record.email
    allowed = await asyncio.to_thread(
        lambda: customer_directory().reserve_email(sender_id, address)
    )
    if not allowed:
        logger.info(
            "Confirmation email for %s not sent: address not on file or limit", ticket.number
        )
        dispatcher.utter_message(response="utter_confirmation_email_unverified", email=address)
        return
    letter = confirmation_letter(record, ticket, due, step)
    try:
        sent = await send_letter(settings, letter)
    except MailError as error:
        logger.warning("Confirmation email for %s failed: %s", ticket.number, error)
        dispatcher.utter_message(response="utter_confirmation_email_failed", email=record.email)
        return
    if sent:
        dispatcher.utter_message(response="utter_confirmation_emailed", email=record.email)
