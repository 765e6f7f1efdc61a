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
from bot.core.db import make_engine, upgrade
from bot.core.processes import ServiceError, ServiceGroup, kefu_services
from bot.core.settings import Settings, get_settings
from bot.core.training import ensure_model
from bot.knowledge.index import ensure_index
from bot.service.orders import seed_demo_orders
from fakes.telegram_api import FakeTelegramAPI
from fakes.wechat_api import FakeWeChatAPI

TOKEN = "e2e-test-token-0123456789"
WECHAT_TOKEN = "kefu-e2e-wechat-token"
WECHAT_APP_ID = "wx49f0ab532d5d035a"  # the public wechatpy test vector's account
WECHAT_APP_SECRET = "kefu-e2e-wechat-secret"
WECHAT_AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
TELEGRAM_TOKEN = "123456:kefu-e2e-telegram-token"
TELEGRAM_SECRET = "kefu-e2e-telegram-secret"
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
def wechat_api() -> Iterator[FakeWeChatAPI]:
    """The WeChat API (access token, customer-service messages) on a loopback port."""
    with FakeWeChatAPI(WECHAT_APP_ID, WECHAT_APP_SECRET) as api:
        yield api


@pytest.fixture(scope="session")
def telegram_api() -> Iterator[FakeTelegramAPI]:
    """The Telegram Bot API on a loopback port."""
    with FakeTelegramAPI(TELEGRAM_TOKEN) as api:
        yield api


@pytest.fixture(scope="session")
def stack_group(
    tmp_path_factory: pytest.TempPathFactory,
    mailbox: Mailbox,
    wechat_api: FakeWeChatAPI,
    telegram_api: FakeTelegramAPI,
) -> Iterator[ServiceGroup]:
    """A running stack with a fresh database, tracker store, event broker and SMTP server.

    It serves a copy of `data/` (its `data_dir`): tests may edit the knowledge sources.

    The WeChat channel runs in safe (AES) mode and Telegram in webhook mode, both against
    local fakes of their clouds.
    """
    model, _ = ensure_model(get_settings())
    var = tmp_path_factory.mktemp("var")
    (var / "webchat").symlink_to(get_settings().webchat_dir)
    data = shutil.copytree(get_settings().data_dir, tmp_path_factory.mktemp("stack") / "data")
    settings = Settings(
        var_dir=var,
        data_dir=data,
        rasa_port=free_port(),
        actions_port=free_port(),
        web_port=free_port(),
        rasa_token=TOKEN,
        smtp_host="127.0.0.1",
        smtp_port=mailbox.port,  # type: ignore[attr-defined]
        wechat_token=WECHAT_TOKEN,
        wechat_app_id=WECHAT_APP_ID,
        wechat_app_secret=WECHAT_APP_SECRET,
        wechat_encoding_aes_key=WECHAT_AES_KEY,
        wechat_api_base_url=wechat_api.url,
        telegram_token=TELEGRAM_TOKEN,
        telegram_secret_token=TELEGRAM_SECRET,
        telegram_api_base_url=telegram_api.url,
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
