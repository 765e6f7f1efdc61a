"""Human handoff end to end: real Rasa, action server, desk service, web chat and browser.

1. Two browser pages: the customer in the web chat asks for a person; the agent sees the
   packet in the console, claims, replies; hostile customer text stays inert; the agent
   resolves; the customer rates 5; the bot answers again.
2. The desk service restarts in the middle of a handoff: the message the customer sent
   while it was down reaches the console once, and the conversation carries on.
"""

from __future__ import annotations

import queue
import re
import time
import uuid

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from bot.core.db import (
    Handoff,
    HandoffStatus,
    TicketEvent,
    TicketEventKind,
    make_engine,
    session_factory,
)
from bot.core.processes import ServiceGroup
from bot.core.settings import Settings
from bot.handoff.store import HandoffStore
from tests.e2e.chat_client import Chat, Customer
from tests.e2e.desk_client import DeskClient, ensure_agent, open_handoff_with

pytestmark = [pytest.mark.e2e]

expect.set_options(timeout=30_000)
USERNAME = "handoff.agent"
PASSWORD = "handoff-agent-password"
DISPLAY_NAME = "客服小李 Li"
HOSTILE = ["<img src=x onerror=alert(1)>", "<script>alert(2)</script>"]


@pytest.fixture(scope="module")
def agent(stack: Settings) -> str:
    return ensure_agent(stack, USERNAME, DISPLAY_NAME, PASSWORD)


def log_in_page(page: Page, stack: Settings) -> None:
    desk = f"http://{stack.host}:{stack.web_port}/desk"
    page.goto(desk)
    page.fill("#username", USERNAME)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(desk)
    expect(page.locator("#ws-status")).to_have_attribute("data-state", "open")


def send(page: Page, text: str) -> None:
    box = page.locator(".rw-new-message")
    box.fill(text)
    box.press("Enter")


@pytest.mark.browser
def test_the_whole_handoff_loop_in_two_browser_pages(
    browser: Browser, stack: Settings, agent: str
) -> None:
    dialogs: list[str] = []
    errors: list[str] = []
    desk_context = browser.new_context(locale="zh-CN")
    chat_context = browser.new_context(locale="zh-CN")
    try:
        desk = desk_context.new_page()
        chat = chat_context.new_page()
        for page in (desk, chat):
            page.set_default_timeout(30_000)
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.on("pageerror", lambda error: errors.append(str(error)))
        log_in_page(desk, stack)

        marker = f"扫地机器人{uuid.uuid4().hex[:6]}"
        chat.goto(f"http://{stack.host}:{stack.web_port}/")
        send(chat, f"我的{marker}一直报错，怎么办")
        expect(chat.locator(".rw-response")).to_have_count(2)
        send(chat, "转人工")
        expect(chat.locator(".rw-response").last).to_contain_text("人工客服")

        handoff = open_handoff_with(stack, marker)
        item = desk.locator(f'li.queue-item[data-handoff-id="{handoff.id}"]')
        expect(item).to_be_visible()  # arrived over the WebSocket, no reload
        expect(item.locator(".countdown")).not_to_be_empty()
        item.click()
        expect(desk.locator("#packet")).to_contain_text(marker)  # the transcript
        expect(desk.locator("#conv-ticket")).to_contain_text(handoff.ticket.number)
        expect(desk.locator("#packet")).to_contain_text("客户要求人工")  # reason, next step
        expect(desk.locator("#messages")).to_contain_text(marker)

        desk.click("#btn-claim")
        expect(chat.locator(".rw-response").last).to_contain_text(f"客服 {DISPLAY_NAME} 已接入")

        send(chat, "还要等多久？")
        expect(desk.locator("#messages .message-customer").last).to_contain_text("还要等多久？")
        for text in HOSTILE:
            send(chat, text)
            expect(desk.locator("#messages .message-customer").last).to_have_text(
                re.compile(re.escape(text))
            )
        assert desk.locator("#messages img, #messages script").count() == 0
        send(chat, "好的，请尽快处理")  # Chinese again (the markup read as English)
        expect(desk.locator("#messages .message-customer").last).to_contain_text("请尽快处理")

        desk.click("#tab-assist")  # knowledge-base suggestions for the latest message
        expect(desk.locator("#assist-query")).to_contain_text("请尽快处理")
        expect(desk.locator("#assist .assist-item").first).to_be_visible()
        desk.locator("#assist .assist-insert").first.click()
        expect(desk.locator("#reply-text")).to_have_value(re.compile("来源"))
        desk.click("#tab-canned")  # a canned reply goes into the box, not to the customer
        desk.fill("#reply-text", "")
        desk.locator(".canned-reply").first.click()
        expect(desk.locator("#reply-text")).not_to_have_value("")
        desk.fill("#reply-text", "您好，我是小李，马上为您重置机器人的固件。")
        desk.click("#reply-send")
        expect(chat.locator(".rw-response").last).to_contain_text("马上为您重置机器人的固件")
        expect(desk.locator("#messages .message-agent").last).to_contain_text("重置机器人的固件")

        desk.fill("#note-text", "客户很着急，固件问题已知")
        desk.click("#note-add")
        expect(desk.locator("#messages .message-note").last).to_contain_text("固件问题已知")

        desk.click("#btn-resolve")
        expect(chat.locator(".rw-response").last).to_contain_text("打分")
        expect(item).to_have_count(0)  # off the queue
        chat.locator(".rw-reply", has_text="5 非常满意").click()
        expect(chat.locator(".rw-response").last).to_contain_text("感谢您的 5 分评价")

        send(chat, "怎么开发票？")  # the bot again: an answer, or the questions as buttons
        expect(chat.locator(".rw-response, .rw-reply").filter(has_text="发票").last).to_be_visible()

        engine = make_engine(stack.database_url)
        ended = HandoffStore(engine).get(handoff.id)
        assert ended is not None and ended.status == HandoffStatus.resolved
        assert ended.ticket.satisfaction == 5
        engine.dispose()
        assert not dialogs, dialogs
        assert not errors, errors
    finally:
        desk_context.close()
        chat_context.close()


def test_restarting_the_desk_during_a_handoff_loses_nothing(
    stack_group: ServiceGroup, agent: str
) -> None:
    stack = stack_group.settings
    customer = Customer(stack)
    marker = f"耳机{uuid.uuid4().hex[:6]}"
    customer.say(f"我的{marker}左耳没声音")
    customer.hear("")
    customer.say("转人工")
    customer.hear("人工客服")
    handoff = open_handoff_with(stack, marker)
    desk = DeskClient(stack, USERNAME, PASSWORD)
    desk.post(f"/desk/api/handoffs/{handoff.id}/claim")
    customer.hear("已接入")

    stack_group.stop_service("web")
    customer.say("客服还在吗？我等了好久")  # the desk is down; Rasa keeps the message
    time.sleep(2)
    with pytest.raises(queue.Empty):
        customer.replies.get(timeout=1)  # the bot stays quiet: an agent has the conversation
    stack_group.start_service("web")

    desk = DeskClient(
        stack, USERNAME, PASSWORD
    )  # the same agent signs in again (sessions survive too)
    deadline = time.monotonic() + 30
    texts: list[str] = []
    while time.monotonic() < deadline:
        detail = desk.get(f"/desk/api/handoffs/{handoff.id}")
        texts = [m["text"] for m in detail["messages"] if m["kind"] == "customer"]
        if "客服还在吗？我等了好久" in texts:
            break
        time.sleep(0.2)
    assert texts.count("客服还在吗？我等了好久") == 1, texts
    assert detail["handoff"]["status"] == "active"
    assert detail["handoff"]["agent"]["username"] == USERNAME

    desk.post(f"/desk/api/handoffs/{handoff.id}/messages", {"text": "在的，已为您补发耳机。"})
    customer.hear("已为您补发耳机")
    desk.post(f"/desk/api/handoffs/{handoff.id}/resolve")
    question = customer.hear("打分")
    assert len(question.get("quick_replies") or question.get("buttons") or []) == 5
    customer.say('/rate_service{"score": 4}')
    customer.hear("4 分")
    customer.say("怎么开发票？")
    customer.hear("发票")
    customer.close()


def test_a_customer_waiting_for_an_agent_is_never_met_with_silence(stack: Settings) -> None:
    customer = Customer(stack)
    marker = f"充电宝{uuid.uuid4().hex[:6]}"
    customer.say(f"我的{marker}充不进电")
    customer.hear("")
    customer.say("转人工")
    customer.hear("人工客服")
    handoff = open_handoff_with(stack, marker)
    number = handoff.ticket.number

    customer.say("补充一下，指示灯一直闪红灯")  # nobody has claimed it yet
    ack = customer.hear("已记入工单")
    assert number in ack["text"]
    customer.say("还有人吗")
    with pytest.raises(queue.Empty):  # acknowledged once, not on every message
        customer.replies.get(timeout=4)
    customer.say("我的工单呢")  # a progress question is answered every time
    status = customer.hear("下一步")
    assert number in status["text"] and "等待客服接手" in status["text"]
    customer.close()

    engine = make_engine(stack.database_url)
    try:
        with session_factory(engine)() as session:
            notes = session.scalars(
                select(TicketEvent.note).where(
                    TicketEvent.ticket_id == handoff.ticket_id,
                    TicketEvent.kind == TicketEventKind.customer,
                )
            ).all()
    finally:
        engine.dispose()
    assert "补充一下，指示灯一直闪红灯" in notes and "还有人吗" in notes


def latest_handoff(stack: Settings, conversation_id: str) -> Handoff | None:
    engine = make_engine(stack.database_url)
    try:
        return HandoffStore(engine).latest_for(conversation_id)
    finally:
        engine.dispose()


def test_three_angry_messages_in_a_row_reach_a_person(stack: Settings) -> None:
    chat = Chat(stack.rasa_url)
    chat.say("你们的服务太差了")
    chat.say("真是气死我了")
    assert latest_handoff(stack, chat.sender) is None  # two are not a streak yet
    reply = chat.say("垃圾客服，我受够了")
    assert "人工客服" in reply
    handoff = latest_handoff(stack, chat.sender)
    assert handoff is not None and handoff.reason == "negative_sentiment"
    assert chat.say("你好") == ""  # paused


def test_a_vip_goes_to_a_person_on_the_first_message_of_a_session(stack: Settings) -> None:
    chat = Chat(stack.rasa_url)
    engine = make_engine(stack.database_url)
    HandoffStore(engine).set_vip(chat.sender, True, "rest")
    engine.dispose()
    reply = chat.say("hello")
    assert "human agent" in reply or "agents" in reply
    handoff = latest_handoff(stack, chat.sender)
    assert handoff is not None and handoff.reason == "vip_customer"
    assert handoff.packet["customer"]["vip"] is True
