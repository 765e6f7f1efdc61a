"""The review loop end to end: a miss, an agent's answer, an editor's approval, the bot answers.

1. A customer (socket.io) asks something the knowledge base cannot answer, asks for a person;
   an agent claims the conversation and replies with the answer.
2. An editor signs in with a real browser, opens the review queue from the desk's header, sees
   the group with the customer's question and the agent's answer, and approves it as a
   knowledge entry; another group is rejected on the same page.
3. The index is rebuilt; the action server hot-reloads it; a new customer asks the same
   question over REST and gets the agent's answer from the bot, with its source.
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import select

from bot.accounts import AgentStore
from bot.core.db import (
    AgentRole,
    ReviewItem,
    ReviewSource,
    ReviewStatus,
    make_engine,
    session_factory,
)
from bot.core.settings import PROJECT_ROOT, Settings
from bot.knowledge.index import ensure_index
from knowledge_index import load_entries
from tests.e2e.chat_client import Chat
from tests.e2e.desk_client import DeskClient, ensure_agent, open_handoff_with
from tests.e2e.test_handoff import Customer

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

expect.set_options(timeout=30_000)  # as the other browser tests (a global setting)
SLOW = 90_000
"""Milliseconds for the first review list: the web service loads the sentence encoder."""
AGENT, AGENT_PASSWORD = "review.agent", "review-agent-password"
EDITOR, EDITOR_PASSWORD, EDITOR_NAME = "review.editor", "review-editor-password", "编辑小周 Zhou"
QUESTION = "能帮忙包装成礼盒吗"
"""The demo knowledge base has no answer (it only suggests unrelated entries)."""
ANSWER = "可以的。下单时在订单备注里写“礼盒包装”，我们会免费用礼盒包装并附一张贺卡。"
REJECTED_QUESTION = "你们有实体店吗"


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path).encode() + path.read_bytes())
    return digest.hexdigest()


def _items(stack: Settings, question: str) -> list[ReviewItem]:
    sessions = session_factory(make_engine(stack.database_url))
    with sessions() as session:
        return list(session.scalars(select(ReviewItem).where(ReviewItem.question == question)))


def test_an_agents_answer_is_approved_and_then_answered_by_the_bot(
    browser: Browser, stack: Settings
) -> None:
    timings: dict[str, float] = {}
    started = time.monotonic()
    project_data = _digest(PROJECT_ROOT / "data")
    ensure_agent(stack, AGENT, "客服小陈 Chen", AGENT_PASSWORD)
    engine = make_engine(stack.database_url)
    if AgentStore(engine).get(EDITOR) is None:
        AgentStore(engine).create(EDITOR, EDITOR_NAME, AgentRole.editor, EDITOR_PASSWORD)
    engine.dispose()

    # 1. The miss and the handoff: the agent answers what the bot could not.
    customer = Customer(stack)
    try:
        customer.say(QUESTION)
        assert "来源" not in (customer.hear("").get("text") or "")  # no answer, no source
        customer.say("转人工")
        customer.hear("人工客服")
        handoff = open_handoff_with(stack, QUESTION)
        desk = DeskClient(stack, AGENT, AGENT_PASSWORD)
        desk.post(f"/desk/api/handoffs/{handoff.id}/claim")
        customer.hear("已接入")
        desk.post(f"/desk/api/handoffs/{handoff.id}/messages", {"text": ANSWER})
        customer.hear("礼盒包装")  # the agent's reply reached the customer
        desk.post(f"/desk/api/handoffs/{handoff.id}/resolve")
    finally:
        customer.close()
    Chat(stack.rasa_url).say(REJECTED_QUESTION)  # another miss, for the rejection
    timings["handoff"] = time.monotonic() - started

    # 2. The editor's review in a real browser.
    errors: list[str] = []
    context = browser.new_context(locale="zh-CN")
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("dialog", lambda dialog: (errors.append(dialog.message), dialog.dismiss()))
        base = f"http://{stack.host}:{stack.web_port}"
        page.goto(f"{base}/desk")
        page.fill("#username", EDITOR)
        page.fill("#password", EDITOR_PASSWORD)
        page.click("button[type=submit]")
        # editors have no console: the desk sends them straight to the review queue
        expect(page).to_have_url(f"{base}/desk/review")

        group = page.locator("article.review-group", has_text=QUESTION)
        expect(group).to_be_visible(timeout=SLOW)  # collected and grouped on load
        timings["queue shown"] = time.monotonic() - started
        expect(group.locator(".rg-questions")).to_contain_text(QUESTION)
        expect(group.locator(".rg-head")).to_contain_text("坐席回复 Agent reply")
        # the bot's miss: buttons it was not sure of, or no answer at all
        expect(group.locator(".rg-head")).to_contain_text(
            re.compile("仅给出建议 Suggestions only|未答上 Unanswered")
        )
        expect(group.locator(".rg-count")).to_have_text(re.compile(r"×[2-9]"))  # miss + reply
        expect(group.locator(".rg-replies")).to_contain_text(ANSWER)
        expect(group.locator(".rg-answer")).to_have_value(ANSWER)
        expect(group.locator(".rg-question")).to_have_value(QUESTION)
        group.locator(".rg-alt").fill("可以礼盒包装吗\n能包成礼物吗")
        group.locator(".rg-topic").select_option("shipping")
        group.locator(".rg-approve").click()
        result = group.locator(".rg-result")
        expect(result).to_contain_text("已批准 Approved")
        expect(result).to_contain_text("data/knowledge/shipping.yml")
        expect(result).to_contain_text("make kb")

        rejected = page.locator("article.review-group", has_text=REJECTED_QUESTION)
        rejected.locator(".rg-reason").fill("门店问题另有安排 · handled elsewhere")
        rejected.locator(".rg-reject").click()
        expect(rejected.locator(".rg-result")).to_contain_text("已拒绝 Rejected")

        page.click("#review-refresh")  # decided groups leave the queue
        expect(page.locator("article.review-group", has_text=QUESTION)).to_have_count(0)
        expect(page.locator("article.review-group", has_text=REJECTED_QUESTION)).to_have_count(0)
        assert not errors, errors
    finally:
        context.close()
    timings["approved"] = time.monotonic() - started

    approved = _items(stack, QUESTION)
    assert {item.source for item in approved} in (
        {ReviewSource.suggested, ReviewSource.agent_reply},
        {ReviewSource.unanswered, ReviewSource.agent_reply},
    )
    assert {(item.status, item.decided_by) for item in approved} == {
        (ReviewStatus.approved, EDITOR)
    }
    decision = approved[0].decision or {}
    assert decision["file"] == "data/knowledge/shipping.yml"
    entries = {e.id: e for e in load_entries(stack.knowledge_source_dir)}
    entry = entries[decision["entry_id"]]
    assert (entry.question, entry.answer) == (QUESTION, ANSWER)
    assert entry.alt_questions == ("可以礼盒包装吗", "能包成礼物吗")
    assert {item.status for item in _items(stack, REJECTED_QUESTION)} == {ReviewStatus.rejected}
    assert _digest(PROJECT_ROOT / "data") == project_data  # only the stack's copy changed

    # 3. Reindex; the action server hot-reloads; a new customer gets the agent's answer.
    _, built = ensure_index(stack)
    assert built
    timings["reindexed"] = time.monotonic() - started
    deadline = time.monotonic() + 90
    reply = ""
    while time.monotonic() < deadline and ANSWER not in reply:
        reply = Chat(stack.rasa_url).say(QUESTION)
        if ANSWER not in reply:
            time.sleep(1)
    assert ANSWER in reply and "来源" in reply, reply
    timings["answered by the bot"] = time.monotonic() - started
    print("\nreview loop timings (s since start):", {k: round(v, 1) for k, v in timings.items()})
