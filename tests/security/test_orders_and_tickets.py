"""Orders and tickets by number: a stranger who types a number learns its status, nothing more.

Findings: order numbers are sequential (KF + date + sequence), and typing one showed anyone
the product, amount, carrier, tracking number and ETA, and attached the order's phone to the
caller's profile; a TK number showed its ticket the same way.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.db import ComplaintGrade, Customer, Handoff, UrgencyTier, make_engine
from bot.core.settings import Settings
from bot.service.records import RecordDraft
from bot.service.tickets import TicketStore
from tests.e2e.chat_client import Chat

pytestmark = pytest.mark.e2e

ORDER = "KF202611200001"
"""A demo order: shipped, phone 13800000001."""
DETAILS = {
    "tracking number": "SF1400007919",
    "phone": "13800000001",
    "amount": "899",
    "product (zh)": "耳机",
    "product (en)": "AuraSound",
    "carrier (zh)": "顺丰",
    "carrier (en)": "SF Express",
}


PRIVATE_NUMBERS = ("tracking number", "phone", "amount")
"""What no general answer (the knowledge base's, say) mentions either."""


def leaked(reply: str, names: tuple[str, ...] = tuple(DETAILS)) -> list[str]:
    return [name for name in names if DETAILS[name] in reply]


def stranger(stack: Settings) -> Chat:
    return Chat(stack.rasa_url, f"sec-stranger-{uuid.uuid4().hex[:10]}")


def test_another_customers_order_by_number_shows_status_only(stack: Settings) -> None:
    for opening in (f"查订单{ORDER}", f"where is my order {ORDER}"):
        chat = stranger(stack)
        reply = chat.say(opening)
        assert ORDER in reply, reply
        assert leaked(reply) == [], reply
        follow_up = chat.say("什么时候到？快递单号多少？")
        assert leaked(follow_up, PRIVATE_NUMBERS) == [], follow_up


def test_three_wrong_phone_checks_lock_the_order(stack: Settings) -> None:
    chat = stranger(stack)
    replies = [chat.say(f"查订单{ORDER}")]
    for wrong in ("1234", "5678", "9999"):
        replies.append(chat.say(wrong))
    replies.append(chat.say("0001"))  # the right last four digits, after three wrong ones
    replies.append(chat.say(f"查订单{ORDER}"))
    for reply in replies:
        assert leaked(reply, PRIVATE_NUMBERS) == [], replies
    # control: in a new conversation the right digits do unlock the details
    fresh = stranger(stack)
    first = fresh.say(f"查订单{ORDER}")
    unlocked = first + "\n" + fresh.say("0001")
    assert DETAILS["tracking number"] in unlocked, (
        "the phone check never unlocks the order's details: " + unlocked
    )


def test_ticket_by_tk_number_shows_status_only(stack: Settings) -> None:
    marker = f"秘密问题{uuid.uuid4().hex[:6]}"
    email = f"owner-{uuid.uuid4().hex[:6]}@example.com"
    now = datetime.now(UTC)
    engine = make_engine(stack.database_url)
    try:
        store = TicketStore(engine)
        record_id = store.save_record(
            RecordDraft(
                customer_id=f"sec-owner-{uuid.uuid4().hex[:10]}",
                channel="rest",
                language="zh",
                category="complaint",
                order_number="KF202611200003",
                product="Pulse Watch S3 智能手表",
                problem=f"手表充不进电 {marker}",
                urgency=UrgencyTier.normal,
                complaint_grade=ComplaintGrade.general,
                created_at=now,
                due_at=now + timedelta(hours=1),
                email=email,
            )
        )
        ticket = store.confirm(record_id, at=now)
    finally:
        engine.dispose()
    assert re.fullmatch(r"TK\d{12}", ticket.number)
    reply = stranger(stack).say(f"工单{ticket.number}进度怎么样了")
    assert ticket.number in reply, reply
    for private in (marker, "充不进电", "手表", email, "KF202611200003"):
        assert private not in reply, (private, reply)


def test_a_typed_order_number_does_not_put_its_phone_on_the_callers_profile(
    stack: Settings,
) -> None:
    chat = stranger(stack)
    chat.say(f"查订单{ORDER}")
    chat.say("转人工")
    engine = make_engine(stack.database_url)
    try:
        with Session(engine) as session:
            profile = session.get(Customer, chat.sender)
            packets = session.scalars(
                select(Handoff.packet).where(Handoff.conversation_id == chat.sender)
            ).all()
    finally:
        engine.dispose()
    assert packets, "the request for a person opened no handoff"
    assert profile is None or profile.phone != DETAILS["phone"]
    assert all(DETAILS["phone"] not in json.dumps(packet) for packet in packets), packets
