"""The customer's tickets: "我的工单" / "my tickets" on any later day and channel.

`action_ticket_progress` tells the named ticket, else the customer's latest ones (every
identity linked to theirs), each with its status, next step and due time, and buttons for
what the customer may do with it: add information, confirm the fix (resolved ones), reopen
(resolved or closed within the policy's reopen window). The button payloads name the ticket
(`/ticket_reopen{"ticket_number": "TK..."}`), so they work on every channel that has buttons;
typed requests go through the same actions (`actions.ticket_requests`).

Ticket numbers are sequential, so anyone can type one: a ticket of someone else shows its
status and due time only, never its summary, and offers no actions.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from functools import lru_cache
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.customers import customer_directory
from actions.knowledge import answer_from_kb
from actions.service_plan import app_engine, service_policy, ticket_store
from bot.casework import CaseWork
from bot.core.db import KbOutcome, Ticket, TicketStatus
from bot.service import notices
from bot.service.sla import format_due
from bot.service.tickets import normalize_ticket_number

MAX_LISTED = 3
"""Tickets told when the customer does not name one (newest first)."""

ADD_INFO = "add_info"
CONFIRM = "confirm"
REOPEN = "reopen"
"""What a customer may do with a ticket (`CaseWork.customer_tickets` rows' `actions`)."""

INTENT_OF: dict[str, str] = {
    ADD_INFO: "ticket_add_info",
    CONFIRM: "ticket_confirm_fixed",
    REOPEN: "ticket_reopen",
}
"""The intent each ticket action's button sends."""

BUTTON_TITLES: dict[str, tuple[str, str]] = {
    ADD_INFO: ("补充信息", "Add information"),
    CONFIRM: ("已解决", "It's fixed"),
    REOPEN: ("重新打开", "Reopen"),
}


@lru_cache(maxsize=1)
def case_work() -> CaseWork:
    """The ticket operations on the app database (blocking: call them in a thread)."""
    return CaseWork(app_engine(), service_policy(), customer_directory())


def language_of(tracker: Tracker) -> str:
    """The language to answer in, "en" or "zh" (the `language` slot)."""
    return "en" if tracker.get_slot("language") == "en" else "zh"


def ticket_number_in(tracker: Tracker) -> str | None:
    """The ticket number the latest message names (typed or a button's entity), normalised."""
    value = next(tracker.get_latest_entity_values("ticket_number"), None)
    return normalize_ticket_number(str(value)) if value else None


def action_button(action: str, number: str, language: str) -> dict[str, str]:
    """The button that asks for `action` on ticket `number`."""
    zh, en = BUTTON_TITLES[action]
    payload = json.dumps({"ticket_number": number})
    return {"title": en if language == "en" else zh, "payload": f"/{INTENT_OF[action]}{payload}"}


def row_message(row: dict[str, Any], language: str) -> dict[str, Any]:
    """The values and buttons of `utter_ticket_status` for one of the customer's own tickets.

    Labels are in the conversation's language (a row's own are in the ticket's language).
    """
    number = str(row["number"])
    status = TicketStatus(row["status_code"])
    finished = status in (TicketStatus.resolved, TicketStatus.closed)
    due = (
        "-"
        if finished
        else format_due(service_policy(), datetime.fromisoformat(row["due_at"]), language)
    )
    return {
        "ticket_number": number,
        "status": notices.status_label(status, language),
        "summary": str(row.get("summary") or ""),
        "next_step": notices.next_step(status, language),
        "due": due,
        "buttons": [action_button(a, number, language) for a in row.get("actions") or []],
    }


def stranger_message(ticket: Ticket, language: str) -> dict[str, Any]:
    """`utter_ticket_status` values for someone else's ticket: status and due time only."""
    return {
        "ticket_number": ticket.number,
        "status": notices.status_label(ticket.status, language),
        "summary": "",
        "next_step": notices.next_step(ticket.status, language),
        "due": format_due(service_policy(), ticket.due_at, language),
    }


def own_rows(sender_id: str, limit: int = MAX_LISTED) -> list[dict[str, Any]]:
    """The customer's newest tickets as `CaseWork.customer_tickets` rows (blocking)."""
    return case_work().customer_tickets(sender_id, limit=limit)


def named_ticket(number: str, sender_id: str) -> tuple[Ticket | None, dict[str, Any] | None]:
    """The ticket `number`, and its row with actions when it is the caller's own (blocking)."""
    ticket = ticket_store().find(number)
    if ticket is None:
        return None, None
    if not customer_directory().same_customer(ticket.customer_id, sender_id):
        return ticket, None
    limit = 50  # the customer's own tickets; a named older one is found among them
    rows = case_work().customer_tickets(sender_id, limit=limit)
    return ticket, next((row for row in rows if row["number"] == ticket.number), None)


class ActionTicketProgress(Action):
    """Tells the named ticket, else the customer's latest ones, with buttons for their actions."""

    def name(self) -> str:
        """Action name used in domain.yml."""
        return "action_ticket_progress"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """Looks tickets up by number or by the customer's id (sender id)."""
        language = language_of(tracker)
        number = tracker.get_slot("ticket_number")
        reset = [SlotSet("ticket_number", None)]
        if number:
            ticket, row = await asyncio.to_thread(
                named_ticket, normalize_ticket_number(str(number)), tracker.sender_id
            )
            if ticket is None:
                dispatcher.utter_message(response="utter_ticket_not_found", ticket_number=number)
            elif row is None:
                dispatcher.utter_message(
                    response="utter_ticket_status", **stranger_message(ticket, language)
                )
            else:
                dispatcher.utter_message(
                    response="utter_ticket_status", **row_message(row, language)
                )
            return reset
        rows = await asyncio.to_thread(own_rows, tracker.sender_id)
        if not rows:
            # Nothing to report: the message may be a question that only sounded like one
            # about progress ("审核要多久", "保修卡丢了还能修吗"); the knowledge base may know.
            result = await answer_from_kb(dispatcher, tracker, utter_when_none=False)
            if result.outcome == KbOutcome.no_answer:
                dispatcher.utter_message(response="utter_no_tickets")
        for row in rows:
            dispatcher.utter_message(response="utter_ticket_status", **row_message(row, language))
        return reset
