"""The customer's tickets over the live bot: "我的工单" with buttons, reopen, add information."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.core.db import TicketStatus, make_engine
from bot.core.settings import Settings
from bot.service.records import RecordDraft
from bot.service.tickets import TicketStore
from tests.e2e.chat_client import Chat

pytestmark = [pytest.mark.e2e]


def resolved_ticket(stack: Settings, customer: str) -> str:
    """A ticket of `customer` an agent resolved just now."""
    engine = make_engine(stack.database_url)
    try:
        store = TicketStore(engine)
        now = datetime.now(UTC)
        record = store.save_record(
            RecordDraft(customer_id=customer, channel="rest", language="zh", category="problem",
                        problem="充电宝充不进电", created_at=now, due_at=now,
                        confirmation_due_at=now)
        )  # fmt: skip
        number = store.confirm(record, at=now).number
        store.transition(number, TicketStatus.in_progress, actor="li.na")
        store.transition(number, TicketStatus.resolved, actor="li.na")
        return number
    finally:
        engine.dispose()


def ticket_status(stack: Settings, number: str) -> TicketStatus:
    engine = make_engine(stack.database_url)
    try:
        ticket = TicketStore(engine).find(number)
        assert ticket is not None
        return ticket.status
    finally:
        engine.dispose()


def buttons(messages: list[dict[str, Any]]) -> list[str]:
    return [b["payload"] for m in messages for b in m.get("buttons") or []]


def test_my_tickets_lists_them_with_their_actions_and_the_buttons_work(stack: Settings) -> None:
    chat = Chat(stack.rasa_url)
    number = resolved_ticket(stack, chat.sender)
    listed = chat.send("我的工单")
    text = "\n".join(m.get("text", "") for m in listed)
    assert number in text and "下一步" in text and "充电宝" in text
    reopen = f'/ticket_reopen{{"ticket_number": "{number}"}}'
    assert buttons(listed) == [f'/ticket_confirm_fixed{{"ticket_number": "{number}"}}', reopen]

    assert "重新打开" in chat.say(reopen)
    assert ticket_status(stack, number) == TicketStatus.in_progress

    added = chat.say("补充一下：换了根线也不行")
    assert "已把您补充的内容记入工单" in added and number in added


def test_someone_elses_ticket_number_shows_the_status_only(stack: Settings) -> None:
    owner = Chat(stack.rasa_url)
    number = resolved_ticket(stack, owner.sender)
    stranger = Chat(stack.rasa_url)
    shown = stranger.send(f"查一下{number}")
    text = "\n".join(m.get("text", "") for m in shown)
    assert number in text and "充电宝" not in text and buttons(shown) == []
    refused = stranger.say(f'/ticket_reopen{{"ticket_number": "{number}"}}')
    assert "没有找到工单" in refused
    assert ticket_status(stack, number) == TicketStatus.resolved
