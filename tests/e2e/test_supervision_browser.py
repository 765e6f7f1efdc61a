"""Supervision end to end: a real conversation is recorded, inspected, red-carded and reported.

A web-chat customer asks for a person; an agent claims the conversation and answers with a
forbidden phrase. The conversation goes quiet; the QA pass (`kefu qa run --at`, the way an
operator replays a moment) records it from Rasa's event broker, scores the bot and the agent,
and gives the agent a red card: an alert on the supervisor's desk and, once the follow-up
worker delivers it, an email to the local SMTP server. In chromium the supervisor opens the
dashboard, drills down from the red-card figure to the conversation, and opens the daily
report; the agent sees the finding on the quality page and appeals; the supervisor decides.
Screenshots go to `var/test-artifacts/supervision/`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from bot.accounts import AgentStore
from bot.core.db import (
    AgentRole,
    Conversation,
    DeskAlert,
    QaFinding,
    make_engine,
    session_factory,
)
from bot.core.settings import PROJECT_ROOT, Settings
from bot.service.policy import load_policy
from tests.e2e.chat_client import Customer
from tests.e2e.conftest import Mailbox
from tests.e2e.desk_client import DeskClient, open_handoff_with

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

expect.set_options(timeout=30_000)
AGENT, AGENT_NAME = "qa.agent", "客服小吴 Wu"
SUPERVISOR, SUPERVISOR_NAME = "qa.lead", "质检主管老孙 Sun"  # the agent's team lead
SUPERVISOR_EMAIL = "lead@example.com"
PASSWORD = "qa-test-password-0123"
FORBIDDEN_REPLY = "你懂不懂啊，说明书上都写了，爱买不买"
ARTIFACTS = PROJECT_ROOT / "var" / "test-artifacts" / "supervision"


def ensure_accounts(stack: Settings) -> None:
    """The supervisor (with an email) and an agent who reports to them."""
    engine = make_engine(stack.database_url)
    store = AgentStore(engine)
    if store.get(SUPERVISOR) is None:
        store.create(SUPERVISOR, SUPERVISOR_NAME, AgentRole.supervisor, PASSWORD)
    store.set_email(SUPERVISOR, SUPERVISOR_EMAIL)
    if store.get(AGENT) is None:
        store.create(AGENT, AGENT_NAME, AgentRole.agent, PASSWORD)
    store.set_supervisor(AGENT, SUPERVISOR)
    engine.dispose()


def kefu(stack: Settings, *args: str) -> dict[str, Any]:
    """`kefu ARGS` against the stack, as an operator would run it; its JSON output."""
    environment = {**os.environ, **stack.as_environment(), "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run(
        [str(stack.app_python), "-m", "bot.cli.main", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout))


def log_in(page: Page, stack: Settings, username: str) -> None:
    desk = f"http://{stack.host}:{stack.web_port}/desk"
    page.goto(f"{desk}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).not_to_have_url(f"{desk}/login")


def shot(page: Page, name: str) -> Path:
    """A full-page screenshot under the test artefacts."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain", "html"))
    return str(body.get_content()) if body is not None else ""


def recorded(stack: Settings, conversation_id: str) -> Conversation:
    with session_factory(make_engine(stack.database_url))() as session:
        found = session.scalars(
            select(Conversation)
            .where(Conversation.conversation_id == conversation_id)
            .order_by(Conversation.id.desc())
        ).first()
        assert found is not None, f"conversation {conversation_id} was not recorded"
        session.expunge(found)
        return found


def test_a_forbidden_reply_earns_a_red_card_the_supervisor_sees_and_gets_by_email(
    browser: Browser, stack: Settings, mailbox: Mailbox
) -> None:
    ensure_accounts(stack)
    policy = load_policy()

    # 1. A customer asks for a person; the agent claims and answers with a forbidden phrase.
    customer = Customer(stack)
    marker = f"扫地机{uuid.uuid4().hex[:6]}"
    customer.say(f"我的{marker}充不进电了")
    customer.hear("")
    customer.say("转人工")
    customer.hear("人工客服")
    handoff = open_handoff_with(stack, marker)
    desk = DeskClient(stack, AGENT, PASSWORD)
    desk.post(f"/desk/api/handoffs/{handoff.id}/claim")
    customer.hear("已接入")
    customer.say("充电座指示灯不亮，我刚说过了")
    desk.post(f"/desk/api/handoffs/{handoff.id}/messages", {"text": FORBIDDEN_REPLY})
    customer.hear("爱买不买")
    desk.post(f"/desk/api/handoffs/{handoff.id}/resolve")
    customer.hear("打分")
    customer.close()

    # 2. The conversation goes quiet; the QA pass records, closes and scores it.
    quiet = datetime.now(UTC) + timedelta(minutes=policy.supervision.conversation_idle_minutes + 2)
    run = kefu(stack, "qa", "run", "--at", quiet.isoformat())
    assert run["scored"]["red_cards"] >= 1, run
    conversation = recorded(stack, customer.session_id)
    assert conversation.ended_at is not None and conversation.outcome == "handoff"
    assert AGENT in conversation.agents and conversation.red_cards >= 1
    with session_factory(make_engine(stack.database_url))() as session:
        finding = session.scalars(
            select(QaFinding).where(
                QaFinding.conversation_pk == conversation.id, QaFinding.red_card.is_(True)
            )
        ).first()
        assert finding is not None and finding.subject_key == f"agent:{AGENT}"
        alert = session.scalars(
            select(DeskAlert).where(DeskAlert.kind == "qa_red_card").order_by(DeskAlert.id.desc())
        ).first()
        assert alert is not None and f"/desk/conversations/{conversation.id}" in alert.text
        finding_id = finding.id

    # 3. The follow-up worker emails the red card to the agent's supervisor.
    before = len(mailbox.messages)
    kefu(stack, "followups", "run", "--at", quiet.isoformat())
    link = f"/desk/conversations/{conversation.id}"
    mails = [  # the live QA service may also mail the lead yesterday's report meanwhile
        m
        for m in mailbox.messages[before:]
        if SUPERVISOR_EMAIL in str(m["To"]) and link in _text(m)
    ]
    assert len(mails) == 1, [str(m["Subject"]) for m in mailbox.messages[before:]]

    errors: list[str] = []
    contexts = [
        browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 900})
        for _ in range(2)
    ]
    try:
        lead, agent = (context.new_page() for context in contexts)
        for page in (lead, agent):
            page.set_default_timeout(30_000)
            page.on("pageerror", lambda error: errors.append(str(error)))
        base = f"http://{stack.host}:{stack.web_port}"
        day = conversation.started_at.astimezone(policy.zone).date().isoformat()

        # 4. The supervisor's dashboard: live tiles, today's charts, the red card; drill down.
        log_in(lead, stack, SUPERVISOR)
        _dashboard_checks(lead, f"{base}/desk/dashboard?date={day}", conversation.id)
        shot(lead, "dashboard")
        lead.goto(f"{base}/desk/conversations/{conversation.id}")
        expect(lead.locator("body")).to_contain_text(FORBIDDEN_REPLY)
        shot(lead, "conversation")

        # 5. The daily report, as emailed every morning, opens in the browser.
        lead.goto(f"{base}/desk/reports/daily/{day}")
        expect(lead.locator("h1")).to_be_visible()
        expect(lead.locator(f'a[href$="/desk/conversations/{conversation.id}"]')).to_have_count(
            1, timeout=30_000
        )
        images = lead.locator("img")
        assert images.count() >= 3
        for index in range(images.count()):
            assert images.nth(index).evaluate("img => img.naturalWidth") > 0
        shot(lead, "daily-report")

        # 6. The agent sees the finding on their own conversation and appeals; the supervisor
        #    overturns it and the score comes back.
        log_in(agent, stack, AGENT)
        _appeal_and_decide(agent, lead, base, finding_id)
        shot(lead, "quality")
        assert not errors, errors
    finally:
        for context in contexts:
            context.close()


def _dashboard_checks(page: Page, url: str, pk: int) -> None:
    """Live tiles, the day's charts, the red card; the red-card figure drills down to it."""
    card = page.locator(f'[data-testid=red-cards] a[href$="/desk/conversations/{pk}"]')
    deadline = time.monotonic() + 90  # today's figures are kept for 30 s: reload until in
    while True:
        page.goto(url)
        expect(page.locator("#live-tiles [data-figure=open_tickets]")).to_be_visible()
        expect(page.locator("#day-tiles [data-figure=red_card_count]")).to_be_visible()
        if card.count() or time.monotonic() > deadline:
            break
        page.wait_for_timeout(5_000)
    expect(page.locator("[data-testid=live-tile]").first).to_be_visible()
    expect(card).to_be_visible()
    charts = page.locator("img[data-testid=chart]")
    assert charts.count() >= 4
    for index in range(charts.count()):
        charts.nth(index).scroll_into_view_if_needed()
        expect(charts.nth(index)).to_have_js_property("complete", True)
        assert charts.nth(index).evaluate("img => img.naturalWidth") > 0
    figure = page.locator("#day-tiles [data-figure=red_card_count]")
    expect(figure).to_contain_text(re.compile(r"[1-9]"))
    figure.click()
    expect(page).to_have_url(re.compile(r"/desk/conversations\?.*red_card=true"))
    row = page.locator(f'[data-testid=conversation-row][data-pk="{pk}"]')
    expect(row).to_be_visible()
    shot(page, "drill-down")


def _appeal_and_decide(agent: Page, lead: Page, base: str, finding_id: int) -> None:
    """The agent appeals their red card; the supervisor overturns it on the quality page."""
    agent.goto(f"{base}/desk/quality")
    card = agent.locator(f'[data-testid=finding][data-finding-id="{finding_id}"]')
    expect(card).to_contain_text("红牌")
    expect(card).to_contain_text(FORBIDDEN_REPLY)  # the evidence
    card.locator("summary").click()
    card.locator("textarea.qa-appeal-text").fill("客户先辱骂在先，我的回复是转述说明书")
    card.locator("form.qa-form button[type=submit]").click()
    expect(agent.locator(f'[data-testid=finding][data-finding-id="{finding_id}"]')).to_contain_text(
        "申诉中"
    )
    shot(agent, "appeal")

    lead.goto(f"{base}/desk/quality?status=pending")
    card = lead.locator(f'[data-testid=finding][data-finding-id="{finding_id}"]')
    expect(card).to_contain_text("客户先辱骂在先")
    card.locator("input.qa-decision-note").fill("复核录音后维持，禁语不因客户态度而豁免")
    card.locator("button[data-decision=upheld]").click()
    expect(lead.locator(f'[data-testid=finding][data-finding-id="{finding_id}"]')).to_contain_text(
        "维持"
    )
