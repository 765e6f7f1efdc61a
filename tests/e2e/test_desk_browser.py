"""A real browser (Debian chromium via Playwright) signs in to the agent desk and out again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from bot.accounts import AgentStore
from bot.core.db import AgentRole, make_engine
from bot.core.settings import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

expect.set_options(timeout=30_000)
USERNAME = "e2e.agent"
PASSWORD = "e2e-agent-password"
DISPLAY_NAME = "王小明 Wang <b>Xiaoming</b>"


@pytest.fixture(scope="module")
def agent(stack: Settings) -> str:
    engine = make_engine(stack.database_url)
    store = AgentStore(engine)
    if store.get(USERNAME) is None:
        store.create(USERNAME, DISPLAY_NAME, AgentRole.agent, PASSWORD)
    engine.dispose()
    return USERNAME


@pytest.fixture
def page(browser: Browser, stack: Settings) -> Iterator[Page]:
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def test_agent_logs_in_and_out(page: Page, stack: Settings, agent: str) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    desk = f"http://{stack.host}:{stack.web_port}/desk"

    page.goto(desk)  # no session yet: sent to the login form
    expect(page).to_have_url(f"{desk}/login")
    page.fill("#username", agent)
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    expect(page.locator(".desk-error")).to_contain_text("Wrong username or password")

    page.fill("#username", agent)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(desk)
    expect(page.locator("#agent-name")).to_have_text(DISPLAY_NAME)  # as text, not markup
    expect(page.locator("#agent-role")).to_have_text("agent")
    cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
    assert cookies["kefu_desk_session"]["httpOnly"]

    page.click("text=退出 Sign out")
    expect(page).to_have_url(f"{desk}/login")
    page.goto(desk)
    expect(page).to_have_url(f"{desk}/login")  # the session is gone
    assert not errors, errors
