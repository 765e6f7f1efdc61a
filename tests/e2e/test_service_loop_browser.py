"""The service loop in real browsers: a complaint from the web chat to its second follow-up.

The customer complains in the web chat and confirms the need; the ticket appears in the
agent's Tickets view; the scheduler, run at a later time (`kefu followups run --at`, the
way an operator replays a day), warns that the first response is at risk before it is
breached; the agent posts a progress update the customer sees at once; three days later the
automatic progress notice reaches the customer once, however often the scheduler runs; the
agent resolves with a result and an improvement measure; the customer receives the result
and the satisfaction question, answers 2, and the supervisor's follow-up task appears with
its 48-hour due time.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from bot.accounts import AgentStore
from bot.core.db import (
    AgentRole,
    FollowupTask,
    Notice,
    NoticeStatus,
    Ticket,
    make_engine,
    session_factory,
)
from bot.core.settings import PROJECT_ROOT, Settings
from bot.service.policy import load_policy

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

expect.set_options(timeout=30_000)
AGENT, AGENT_NAME = "loop.agent", "客服小周 Zhou"
SUPERVISOR, SUPERVISOR_NAME = "supervisor", "主管老陈 Chen"  # the policy's default_supervisor
PASSWORD = "loop-test-password-0123"
TICKET_NUMBER = re.compile(r"TK\d{12}")


def ensure_account(stack: Settings, username: str, name: str, role: AgentRole) -> None:
    engine = make_engine(stack.database_url)
    store = AgentStore(engine)
    if store.get(username) is None:
        store.create(username, name, role, PASSWORD)
    engine.dispose()


def log_in(page: Page, stack: Settings, username: str) -> None:
    desk = f"http://{stack.host}:{stack.web_port}/desk"
    page.goto(f"{desk}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).not_to_have_url(f"{desk}/login")


def send(page: Page, text: str) -> None:
    box = page.locator(".rw-new-message")
    box.fill(text)
    box.press("Enter")


def followups_run(stack: Settings, at: datetime) -> dict[str, Any]:
    """`kefu followups run --at AT` against the stack, as an operator would; its JSON."""
    environment = {**os.environ, **stack.as_environment(), "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run(
        [str(stack.app_python), "-m", "bot.cli.main", "followups", "run", "--at", at.isoformat()],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout))


def ticket(stack: Settings, number: str) -> Ticket:
    with session_factory(make_engine(stack.database_url))() as session:
        found = session.scalars(select(Ticket).where(Ticket.number == number)).one()
        session.expunge(found)
        return found


def outside_quiet_hours(moment: datetime) -> datetime:
    """`moment`, or 10:00 of the policy's next morning when it falls in the quiet hours."""
    policy = load_policy()
    quiet = policy.service_loop.quiet_hours
    local = moment.astimezone(policy.zone)
    if quiet is None or not quiet.contains(local.time()):
        return moment
    morning = local.replace(hour=10, minute=0, second=0, microsecond=0)
    return (morning if morning > local else morning + timedelta(days=1)).astimezone(UTC)


def test_a_complaint_goes_round_the_whole_service_loop(browser: Browser, stack: Settings) -> None:
    ensure_account(stack, AGENT, AGENT_NAME, AgentRole.agent)
    ensure_account(stack, SUPERVISOR, SUPERVISOR_NAME, AgentRole.supervisor)
    errors: list[str] = []
    contexts = [browser.new_context(locale="zh-CN") for _ in range(3)]
    try:
        chat, desk, lead = (context.new_page() for context in contexts)
        for page in (chat, desk, lead):
            page.set_default_timeout(30_000)
            page.on("pageerror", lambda error: errors.append(str(error)))

        # 1. The customer complains in the web chat and confirms the need: a ticket opens.
        marker = f"右耳没声音{uuid.uuid4().hex[:4]}"
        chat.goto(f"http://{stack.host}:{stack.web_port}/")
        expect(chat.locator(".rw-response").first).to_be_visible()
        for text in ("我要投诉", f"耳机{marker}，前天开始的", "花了九百块买的，通勤路上都没法用"):
            count = chat.locator(".rw-response").count()
            send(chat, text)
            expect(chat.locator(".rw-response")).not_to_have_count(count)
        chat.locator(".rw-reply", has_text="退款").first.click()
        expect(chat.locator(".rw-response", has_text=marker).last).to_be_visible()  # confirmation
        expect(chat.locator(".rw-response").last).to_contain_text("准确吗")
        send(chat, "对的")
        expect(chat.locator(".rw-response").last).to_contain_text("TK")
        number = TICKET_NUMBER.findall(chat.locator(".rw-response").last.inner_text())[-1]
        opened = ticket(stack, number)
        assert opened.supervisor_id is not None  # the policy's default supervisor

        # 2. It appears in the agent's Tickets view, live.
        log_in(desk, stack, AGENT)
        desk.goto(f"http://{stack.host}:{stack.web_port}/desk/tickets")
        expect(desk.locator("#ws-status")).to_have_attribute("data-state", "open")
        row = desk.locator(f'tr.ticket-row[data-number="{number}"]')
        expect(row).to_be_visible()
        expect(row).to_have_attribute("data-sla", "ok")

        # 3. Most of the response window gone, no answer yet: an at-risk warning, no breach.
        assert opened.response_due_at is not None
        window = opened.response_due_at - opened.created_at
        planned = followups_run(stack, opened.created_at + window * 0.85)
        assert planned["planned"]["at_risk"] >= 1
        expect(row).to_have_attribute("data-sla", "at_risk")  # live: no reload
        expect(row).to_contain_text("即将超时")
        warning = desk.locator("#alerts li.alert[data-kind=sla_at_risk]", has_text=number)
        expect(warning).to_be_visible()
        expect(
            desk.locator("#alerts li.alert[data-kind=sla_breach]", has_text=number)
        ).to_have_count(0)

        # 4. The agent posts a progress update; the customer sees it in the web chat.
        row.get_by_role("link", name=number).click()
        expect(desk).to_have_url(re.compile(f"/desk/tickets/{number}$"))
        expect(desk.locator("#ticket-record")).to_contain_text(marker)  # the SPIN answers
        update = f"已联系仓库为您安排退款，单号 {uuid.uuid4().hex[:6]}"
        desk.fill("#update-text", update)
        desk.click("#update-submit")
        expect(chat.locator(".rw-response").last).to_contain_text(update)
        expect(desk.locator("#ticket-history")).to_contain_text(update)
        updated = ticket(stack, number)
        assert updated.first_responded_at is not None and updated.next_progress_at is not None

        # 5. Three days on, the automatic progress notice goes out once, however often it runs.
        later = outside_quiet_hours(updated.next_progress_at + timedelta(minutes=5))
        sent = [followups_run(stack, later) for _ in range(2)]
        sent.append(followups_run(stack, later + timedelta(minutes=1)))
        kinds = [[item["kind"] for item in run["sent"] if item["ticket"] == number] for run in sent]
        assert kinds[0].count("progress_notice") == 1, kinds
        assert "progress_notice" not in kinds[1] + kinds[2], kinds
        notice = chat.locator(".rw-response", has_text=f"工单 {number} 仍在处理中")
        expect(notice).to_have_count(1)

        # 6. The agent resolves with the result and an improvement measure.
        desk.reload()
        desk.fill("#resolve-result", "已为您办理全额退款，预计 1-3 个工作日到账")
        desk.fill("#resolve-improvement", "该批次耳机已下架复检")
        desk.click("#resolve-submit")
        expect(desk.locator("#ticket")).to_have_attribute("data-status", "resolved")

        # 7. The customer gets the result and the satisfaction question, and answers 2.
        expect(chat.locator(".rw-response", has_text="已为您办理全额退款")).to_be_visible()
        expect(chat.locator(".rw-response", has_text="该批次耳机已下架复检")).to_be_visible()
        expect(
            chat.locator(".rw-response", has_text=f"您对工单 {number} 的处理满意吗")
        ).to_be_visible()
        chat.locator(".rw-reply", has_text="2 不满意").last.click()
        expect(chat.locator(".rw-response", has_text="主管会在 48 小时内联系您")).to_be_visible()

        # 8. The supervisor's follow-up task appears, due 48 hours after the score.
        with session_factory(make_engine(stack.database_url))() as session:
            task = session.scalars(
                select(FollowupTask).where(FollowupTask.ticket_id == opened.id)
            ).one()
            assert task.score == 2 and task.assignee_id == opened.supervisor_id
            assert task.due_at - task.created_at == timedelta(hours=48)
            asked = session.scalars(
                select(Notice).where(Notice.ticket_id == opened.id, Notice.kind == "csat")
            ).one()
            assert asked.status is NoticeStatus.sent
        log_in(lead, stack, SUPERVISOR)
        lead.goto(f"http://{stack.host}:{stack.web_port}/desk/tickets")
        lead.click("#tab-followups")
        followup = lead.locator(f'#followups li.followup[data-task-id="{task.id}"]')
        expect(followup).to_contain_text(number)
        expect(followup).to_contain_text("剩余 1天23小时")  # counting down the 48 hours
        due = followup.locator("time.followup-due")
        minute = task.due_at.strftime("%Y-%m-%dT%H:%M")
        expect(due).to_have_attribute("datetime", re.compile(minute))
        assert ticket(stack, number).satisfaction == 2
        assert not errors, errors
    finally:
        for context in contexts:
            context.close()
