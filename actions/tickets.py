"""Ticket progress: "我的工单进度" / "status of my ticket", on any later day and channel."""

from __future__ import annotations

import asyncio

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.customers import customer_directory
from actions.knowledge import answer_from_kb
from actions.service_plan import STATUS_LABELS, label, service_policy, ticket_store
from bot.core.db import KbOutcome, Ticket
from bot.service.sla import format_due

MAX_LISTED = 3
"""Tickets told when the customer does not name one (newest first)."""


def ticket_status_message(ticket: Ticket, language: str, *, owner: bool) -> dict[str, str]:
    """The values `utter_ticket_status` interpolates.

    Ticket numbers are sequential, so anyone can type one: only the customer who opened the
    ticket (any identity linked to theirs) sees its summary (what the problem was); others
    see status and due time only.
    """
    return {
        "ticket_number": ticket.number,
        "status": label(STATUS_LABELS, ticket.status.value, language),
        "summary": ticket.summary if owner else "",
        "due": format_due(service_policy(), ticket.due_at, language),
    }


def own_tickets(sender_id: str) -> list[Ticket]:
    """The newest tickets of every identity of the caller's customer (blocking)."""
    store = ticket_store()
    tickets = [
        ticket
        for identity in customer_directory().identities_of(sender_id)
        for ticket in store.for_customer(identity, MAX_LISTED)
    ]
    tickets.sort(key=lambda t: (t.created_at, t.id), reverse=True)
    return tickets[:MAX_LISTED]


class ActionTicketProgress(Action):
    """Tells the status and due time of the named ticket, else of the customer's latest ones."""

    def name(self) -> str:
        """Action name used in domain.yml."""
        return "action_ticket_progress"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """Looks tickets up by number or by the customer's id (sender id)."""
        language = tracker.get_slot("language") or "zh"
        number = tracker.get_slot("ticket_number")
        store = ticket_store()
        directory = customer_directory()
        if number:
            ticket = await asyncio.to_thread(store.find, number)
            if ticket is None:
                dispatcher.utter_message(response="utter_ticket_not_found", ticket_number=number)
                return [SlotSet("ticket_number", None)]
            tickets = [ticket]
        else:
            tickets = await asyncio.to_thread(own_tickets, tracker.sender_id)
        if not tickets:
            # Nothing to report: the message may be a question that only sounded like one
            # about progress ("审核要多久", "保修卡丢了还能修吗"); the knowledge base may know.
            result = await answer_from_kb(dispatcher, tracker, utter_when_none=False)
            if result.outcome == KbOutcome.no_answer:
                dispatcher.utter_message(response="utter_no_tickets")
        for ticket in tickets:
            owner = await asyncio.to_thread(
                directory.same_customer, ticket.customer_id, tracker.sender_id
            )
            dispatcher.utter_message(
                response="utter_ticket_status",
                **ticket_status_message(ticket, language, owner=owner),
            )
        return [SlotSet("ticket_number", None)]
