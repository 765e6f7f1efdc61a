"""A real browser (Debian chromium via Playwright) chats on the web page."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from bot.core.settings import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

expect.set_options(timeout=30_000)  # the bot may be slow on a loaded 2-core machine


@pytest.fixture
def page(browser: Browser, stack: Settings) -> Iterator[Page]:
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def send(page: Page, text: str) -> None:
    box = page.locator(".rw-new-message")
    box.fill(text)
    box.press("Enter")


def test_customer_chats_in_the_browser(page: Page, stack: Settings) -> None:
    hosts: set[str] = set()
    page.on("request", lambda request: hosts.add(urlsplit(request.url).hostname or ""))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(f"http://{stack.host}:{stack.web_port}/")
    expect(page.locator(".rw-new-message")).to_be_visible()

    expect(page.locator(".rw-response").first).to_contain_text("您好")  # greeted on open
    send(page, "你好")
    expect(page.locator(".rw-response")).to_have_count(2)
    expect(page.locator(".rw-response").last).to_contain_text("您好")

    send(page, "我的订单到哪了")
    expect(page.locator(".rw-response").last).to_contain_text("订单号")

    send(page, "KF202611200001")
    expect(page.locator(".rw-response").last).to_contain_text("KF202611200001")

    assert hosts <= {stack.host}, f"the page reached other hosts: {hosts}"
    assert not errors, errors


def test_customer_text_is_rendered_inert(page: Page, stack: Settings) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"http://{stack.host}:{stack.web_port}/")
    send(page, "<img src=x onerror=alert(1)>")
    expect(page.locator(".rw-client").last).to_contain_text("<img src=x onerror=alert(1)>")
    expect(page.locator(".rw-response").last).to_be_visible()
    assert not dialogs


def test_the_conversation_survives_a_reload(page: Page, stack: Settings) -> None:
    page.goto(f"http://{stack.host}:{stack.web_port}/")
    expect(page.locator(".rw-response").first).to_contain_text("您好")
    send(page, "我的订单到哪了")
    expect(page.locator(".rw-response").last).to_contain_text("订单号")
    token = page.evaluate("sessionStorage.getItem('kefu_chat_token')")
    sender = token.split(".")[1]
    assert token.startswith("v1.web:") and len(sender) == len("web:") + 32

    page.reload()
    expect(page.locator(".rw-new-message")).to_be_visible()
    send(page, "KF202611200001")  # the order lookup goes on in the same conversation
    expect(page.locator(".rw-response").last).to_contain_text("KF202611200001")
    renewed = page.evaluate("sessionStorage.getItem('kefu_chat_token')")
    assert renewed.split(".")[1] == sender
    deadline = time.monotonic() + 30
    while True:  # the prompt may already name an example order number: ask the tracker
        tracker = httpx.get(
            f"{stack.rasa_url}/conversations/{sender}/tracker",
            params={"token": stack.rasa_token},
        ).json()
        said = [event.get("text") for event in tracker["events"] if event["event"] == "user"]
        if "KF202611200001" in said or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert "我的订单到哪了" in said and "KF202611200001" in said, said


def test_a_forged_session_gets_a_new_conversation(page: Page, stack: Settings) -> None:
    page.goto(f"http://{stack.host}:{stack.web_port}/")
    expect(page.locator(".rw-response").first).to_contain_text("您好")
    forged = f"v1.web:{'0' * 32}.9999999999.{'0' * 64}"
    page.evaluate("t => sessionStorage.setItem('kefu_chat_token', t)", forged)
    page.reload()
    expect(page.locator(".rw-response").first).to_contain_text("您好")  # greeted anew
    token = page.evaluate("sessionStorage.getItem('kefu_chat_token')")
    assert token != forged and token.startswith("v1.web:")
