"""What a customer asks to do with their own ticket: add information, "it's fixed", reopen.

The requests come typed ("补充一下：…", "好了 已经解决了", "问题还没解决 重新处理一下", "reopen
it") or from the buttons of the ticket list, whose payloads name the ticket. A confident
wrong change is worse than a question, so:

- a request that names a ticket (typed number or button) is carried out at once, when the
  ticket is the caller's own (`CaseWork` checks every linked identity; a stranger's number is
  "not found");
- without a number, the one ticket it can apply to is asked about with yes/no buttons before
  closing or reopening it (information is added at once: the reply names the ticket), several
  are offered as buttons, none gets a clarifying question;
- information the message does not carry is asked for by `ticket_info_form`.

Slots: `ticket_step` (where the exchange stands, read by the rules), `ticket_pending` (the
ticket asked about), `ticket_info` (the text to add, or the reason to reopen).
"""

from __future__ import annotations

import asyncio
import re
from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.service_plan import service_policy
from actions.tickets import (
    ADD_INFO,
    CONFIRM,
    INTENT_OF,
    REOPEN,
    action_button,
    case_work,
    language_of,
    own_rows,
    ticket_number_in,
)
from bot.casework import CaseError, CaseNotFound
from bot.service.sla import format_due
from bot.service.tickets import TICKET_NUMBER

STEP_SLOT = "ticket_step"
PENDING_SLOT = "ticket_pending"
INFO_SLOT = "ticket_info"
ASK_INFO, CONFIRM_FIXED, CONFIRM_REOPEN, DONE = (
    "ask_info",
    "confirm_fixed",
    "confirm_reopen",
    "done",
)
FORM = "ticket_info_form"
MAX_INFO = 2000
"""The longest text added to a ticket, in characters."""
CANDIDATES = 10
"""How many of the customer's newest tickets a request without a number looks at."""
CANCEL_INTENTS = frozenset({"deny", "skip", "goodbye"})

_TICKET = re.compile(r"[Tt][Kk][\s-]?\d{12}")
_REQUEST = re.compile(
    r"^\s*(?:再|我(?:想|要)?)?\s*(?:给?(?:我的)?(?:工单|售后单|单子)?)?\s*"
    r"(?:补充(?:一下|下|一?点儿?|几句)?(?:说明|信息|材料|情况|内容)?|加个?(?:备注|说明))"
    r"|^\s*(?:one more (?:thing|detail)|additional info(?:rmation)?|adding to my \w+ request"
    r"|update my ticket with this|add(?:ing)? (?:some |more )?(?:info(?:rmation)?|details?))"
    r"(?: (?:to|for) (?:my )?(?:ticket|case|complaint|request))?",
    re.IGNORECASE,
)
"""The request words in front of added information ("补充一下：", "one more detail for")."""
_ASK_ONLY = re.compile(
    r"补充|加点?信息|加个?(?:备注|说明)|add (?:some |more )?(?:info|details?)|more details",
    re.IGNORECASE,
)
"""Words that, left after the request words without a colon, make the message a request only."""
_MEANINGFUL = re.compile(r"[\u4e00-\u9fff]|[A-Za-z0-9]{2,}")


def last_action(tracker: Tracker) -> str | None:
    """The latest action before this one that is not `action_listen`."""
    for event in reversed(tracker.events):
        if event.get("event") == "action" and event.get("name") != "action_listen":
            return str(event.get("name"))
    return None


def information_in(text: str) -> str:
    """The information a message carries after its request words ("补充一下：X" -> "X").

    Empty when the message only asks to add something ("我想给工单补充点情况", "add info").
    """
    if text.startswith("/"):
        return ""  # a button payload carries no information
    cleaned = _TICKET.sub(" ", text).strip()
    _, colon, tail = cleaned.partition("：" if "：" in cleaned else ":")
    if colon and len(_MEANINGFUL.findall(tail)) >= 2:
        return tail.strip()[:MAX_INFO]
    rest = _REQUEST.sub("", cleaned, count=1).strip(" ，,。.：:;；!！")
    if _ASK_ONLY.search(rest) or len(_MEANINGFUL.findall(rest)) < 3:
        return ""
    return rest[:MAX_INFO]


def candidates(sender_id: str, action: str) -> list[dict[str, Any]]:
    """The customer's tickets `action` applies to, newest first (blocking)."""
    return [row for row in own_rows(sender_id, CANDIDATES) if action in (row.get("actions") or [])]


def _label(row: dict[str, Any]) -> str:
    summary = str(row.get("summary") or "")
    return f"{row['number']} {summary[:16]}".strip()


def _choose(
    dispatcher: CollectingDispatcher, rows: list[dict[str, Any]], action: str, language: str
) -> None:
    """Asks which ticket, one button per ticket (its payload names it)."""
    buttons = []
    for row in rows[:5]:
        button = action_button(action, str(row["number"]), language)
        buttons.append({"title": _label(row), "payload": button["payload"]})
    dispatcher.utter_message(response="utter_clarify_which_ticket", buttons=buttons)


def _slots(step: str, pending: str | None = None, info: str | None = None) -> list[EventType]:
    return [SlotSet(STEP_SLOT, step), SlotSet(PENDING_SLOT, pending), SlotSet(INFO_SLOT, info)]


REFUSALS: dict[str, tuple[str, str]] = {
    ADD_INFO: (
        "已解决或已关闭的工单不能再补充信息；如果问题还在，可以说“重新打开”。",
        "a resolved or closed ticket takes no more information; if the problem is back, "
        'say "reopen".',
    ),
    CONFIRM: (
        "只有已解决的工单可以确认解决。",
        "only a resolved ticket can be confirmed fixed.",
    ),
    REOPEN: (
        "只有解决后 {days} 天内的工单可以重新打开（还在处理中的工单不需要重新打开）。"
        "请直接描述问题，我为您新建工单。",
        "only a ticket resolved within the last {days} days can be reopened (one still in "
        "progress needs no reopening). Please describe the problem and I'll open a new ticket.",
    ),
}
"""Why a change was refused, in the customer's words (CaseWork's own messages are English)."""


def _refused(
    dispatcher: CollectingDispatcher, number: str, action: str, error: CaseError, language: str
) -> None:
    if isinstance(error, CaseNotFound):
        dispatcher.utter_message(response="utter_ticket_not_found", ticket_number=number)
        return
    zh, en = REFUSALS[action]
    days = f"{service_policy().service_loop.reopen_within_days:g}"
    reason = (en if language == "en" else zh).format(days=days)
    dispatcher.utter_message(
        response="utter_ticket_not_changed", ticket_number=number, reason=reason
    )


class ActionTicketAddInfo(Action):
    """Adds what the customer writes to their ticket (asks for the text or the ticket first)."""

    def name(self) -> str:
        """Action name used in domain.yml."""
        return "action_ticket_add_info"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """Text from the message or the form; ticket from the message, the chooser or the one."""
        previous = last_action(tracker)
        number = ticket_number_in(tracker)
        if previous == FORM:  # the form ended: the text was given, or the customer cancelled
            text = str(tracker.get_slot(INFO_SLOT) or "").strip()
            number = tracker.get_slot(PENDING_SLOT)
            if not text or not number:
                dispatcher.utter_message(response="utter_ticket_info_cancelled")
                return _slots(DONE)
        else:
            text = information_in(tracker.latest_message.get("text") or "")
            if not text and number and previous == self.name():  # a chooser's button
                text = str(tracker.get_slot(INFO_SLOT) or "")
        if not number:
            rows = await asyncio.to_thread(candidates, tracker.sender_id, ADD_INFO)
            if not rows:
                dispatcher.utter_message(response="utter_clarify_no_ticket")
                return _slots(DONE)
            if len(rows) > 1:
                _choose(dispatcher, rows, ADD_INFO, language_of(tracker))
                return _slots(DONE, None, text or None)
            number = str(rows[0]["number"])
        if not text:
            return _slots(ASK_INFO, number)  # ticket_info_form asks for it
        try:
            await asyncio.to_thread(
                case_work().customer_add_info, number, tracker.sender_id, text[:MAX_INFO]
            )
        except CaseError as error:
            _refused(dispatcher, number, ADD_INFO, error, language_of(tracker))
            return _slots(DONE)
        dispatcher.utter_message(response="utter_ticket_info_added", ticket_number=number)
        return _slots(DONE)


class _ConfirmedChange(Action, ABC):
    """A change asked about first unless the message names the ticket: fixed, or reopen.

    Abstract, so the action server registers only its subclasses.
    """

    action = CONFIRM
    step = CONFIRM_FIXED
    question = "utter_clarify_ticket_fixed"

    @abstractmethod
    def name(self) -> str:
        """Action name used in domain.yml."""

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """Carries out a named or confirmed request; otherwise asks yes/no or which ticket."""
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        pending = tracker.get_slot(PENDING_SLOT)
        reason = str(tracker.get_slot(INFO_SLOT) or "")
        asked = last_action(tracker) == self.name() and tracker.get_slot(STEP_SLOT) == self.step
        if asked and intent in ("affirm", "deny") and pending:
            if intent == "deny":
                dispatcher.utter_message(response="utter_ticket_unchanged")
                return _slots(DONE)
            return await self._change(dispatcher, tracker, str(pending), reason)
        text = tracker.latest_message.get("text") or ""
        reason = "" if text.startswith("/") else text.strip()[:MAX_INFO]
        number = ticket_number_in(tracker)
        if number:
            if not reason and asked:
                reason = str(tracker.get_slot(INFO_SLOT) or "")
            return await self._change(dispatcher, tracker, number, reason)
        rows = await asyncio.to_thread(candidates, tracker.sender_id, self.action)
        if not rows:
            self.nothing(dispatcher)
            return _slots(DONE)
        if len(rows) > 1:
            _choose(dispatcher, rows, self.action, language_of(tracker))
            return _slots(self.step, None, reason or None)
        row = rows[0]
        buttons = [
            action_button(self.action, str(row["number"]), language_of(tracker)),
            {"title": "不用了" if language_of(tracker) == "zh" else "No", "payload": "/deny"},
        ]
        dispatcher.utter_message(
            response=self.question,
            ticket_number=row["number"],
            summary=str(row.get("summary") or "-"),
            buttons=buttons,
        )
        return _slots(self.step, str(row["number"]), reason or None)

    def nothing(self, dispatcher: CollectingDispatcher) -> None:
        """No ticket of the customer's the request applies to."""
        dispatcher.utter_message(response="utter_clarify_no_ticket")

    async def _change(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, number: str, reason: str
    ) -> list[EventType]:
        if not TICKET_NUMBER.match(number):
            dispatcher.utter_message(response="utter_ticket_not_found", ticket_number=number)
            return _slots(DONE)
        try:
            change = await asyncio.to_thread(self.apply, number, tracker.sender_id, reason)
        except CaseError as error:
            _refused(dispatcher, number, self.action, error, language_of(tracker))
            return _slots(DONE)
        self.done(dispatcher, number, change.ticket, language_of(tracker))
        return _slots(DONE)

    def apply(self, number: str, sender_id: str, reason: str) -> Any:
        """Carries the change out (blocking); `CaseError` when it is refused."""
        return case_work().customer_confirm_fixed(number, sender_id)

    def done(
        self, dispatcher: CollectingDispatcher, number: str, ticket: dict[str, Any], language: str
    ) -> None:
        """Tells the customer the change was made."""
        dispatcher.utter_message(response="utter_ticket_closed", ticket_number=number)


class ActionTicketConfirmFixed(_ConfirmedChange):
    """The customer confirms their resolved ticket is fixed: it is closed."""

    def name(self) -> str:
        """Action name used in domain.yml."""
        return "action_ticket_confirm_fixed"

    def nothing(self, dispatcher: CollectingDispatcher) -> None:
        """Said "好了 已经解决了" without a resolved ticket: glad to hear it, anything else?"""
        dispatcher.utter_message(response="utter_anything_else")


class ActionTicketReopen(_ConfirmedChange):
    """The customer's resolved or recently closed ticket goes back to the agents."""

    action = REOPEN
    step = CONFIRM_REOPEN
    question = "utter_clarify_ticket_reopen"

    def name(self) -> str:
        """Action name used in domain.yml."""
        return "action_ticket_reopen"

    def apply(self, number: str, sender_id: str, reason: str) -> Any:
        """Reopens the ticket with the customer's words as the reason (blocking)."""
        return case_work().customer_reopen(number, sender_id, reason or "客户要求重新处理")

    def done(
        self, dispatcher: CollectingDispatcher, number: str, ticket: dict[str, Any], language: str
    ) -> None:
        """Tells the new due time."""
        due = ticket.get("due_at")
        when = (
            format_due(service_policy(), datetime.fromisoformat(due), language)
            if isinstance(due, str) and due
            else "-"
        )
        dispatcher.utter_message(response="utter_ticket_reopened", ticket_number=number, due=when)


class ValidateTicketInfoForm(FormValidationAction):
    """Takes the customer's next message as the information; "算了" cancels."""

    def name(self) -> str:
        """Action name used in domain.yml."""
        return "validate_ticket_info_form"

    async def validate_ticket_info(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        """The text, at most 2000 characters; a cancel word ends the form without it."""
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        text = str(value or "").strip()
        if intent in CANCEL_INTENTS or text in ("算了", "取消", "cancel", "不补充了"):
            return {INFO_SLOT: None, "requested_slot": None}
        if not text or text.startswith("/") or not _MEANINGFUL.search(text):
            return {INFO_SLOT: None}  # asked again
        return {INFO_SLOT: text[:MAX_INFO]}


__all__ = [
    "INTENT_OF",
    "ActionTicketAddInfo",
    "ActionTicketConfirmFixed",
    "ActionTicketReopen",
    "ValidateTicketInfoForm",
    "information_in",
]
