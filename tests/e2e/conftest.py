"""Starts the real Kefu stack (Rasa, action server, web service) on free loopback ports."""

from __future__ import annotations

import email.policy
import shutil
from collections.abc import Iterator
from email.message import EmailMessage
from email.parser import BytesParser
from typing import cast

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope
from playwright.sync_api import Browser, sync_playwright

from bot.bench.common import free_port
from bot.db import make_engine, upgrade
from bot.knowledge import ensure_index
from bot.orders import seed_demo_orders
from bot.services import ServiceError, ServiceGroup, kefu_services
from bot.settings import Settings, get_settings
from bot.training import ensure_model

TOKEN = "e2e-test-token-0123456789"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


class Mailbox:
    """Messages a local SMTP server (aiosmtpd) received."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: object, session: object, envelope: Envelope) -> str:
        """aiosmtpd's hook: keep the message."""
        raw = envelope.original_content or b""
        self.messages.append(
            cast(EmailMessage, BytesParser(policy=email.policy.default).parsebytes(raw))
        )
        return "250 OK"


@pytest.fixture(scope="session")
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server on a free loopback port; the stack sends confirmations to it."""
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port  # type: ignore[attr-defined]
    yield box
    controller.stop()


@pytest.fixture(scope="session")
def stack_group(
    tmp_path_factory: pytest.TempPathFactory, mailbox: Mailbox
) -> Iterator[ServiceGroup]:
    """A running stack with a fresh database, tracker store, event broker and SMTP server."""
    model, _ = ensure_model(get_settings())
    var = tmp_path_factory.mktemp("var")
    (var / "webchat").symlink_to(get_settings().webchat_dir)
    settings = Settings(
        var_dir=var,
        rasa_port=free_port(),
        actions_port=free_port(),
        web_port=free_port(),
        rasa_token=TOKEN,
        smtp_host="127.0.0.1",
        smtp_port=mailbox.port,  # type: ignore[attr-defined]
    )
    upgrade(settings.database_url)
    seed_demo_orders(make_engine(settings.database_url))
    ensure_index(settings)
    group = ServiceGroup(kefu_services(settings, model), settings)
    try:
        group.start()
    except ServiceError:
        for log in sorted((var / "logs").glob("*.log")):
            print(f"==> {log}\n{log.read_text()[-3000:]}")
        raise
    yield group
    group.stop()


@pytest.fixture(scope="session")
def stack(stack_group: ServiceGroup) -> Settings:
    """Settings of the running stack (URLs, ports, store URLs)."""
    return stack_group.settings


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium, driven by Playwright, for a module of real-browser tests."""
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
