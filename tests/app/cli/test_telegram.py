"""`kefu telegram` against the fake Bot API; a stdlib receiver stands in for Rasa's webhook."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bot.cli.main import main
from bot.core.settings import get_settings
from fakes.telegram_api import FakeTelegramAPI
from fakes.telegram_user import telegram_update

TOKEN = "123456:kefu-cli-test-token"
SECRET = "kefu-cli-test-secret"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class Receiver:
    """Records what is POSTed to it and answers `status` (Rasa's webhook stand-in)."""

    def __init__(self) -> None:
        self.status = 200
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append((self.path, dict(self.headers), json.loads(body)))
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api() -> Iterator[FakeTelegramAPI]:
    with FakeTelegramAPI(TOKEN) as api:
        yield api


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.stop()


@pytest.fixture(autouse=True)
def settings(
    api: FakeTelegramAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    monkeypatch.setenv("KEFU_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_SECRET_TOKEN", SECRET)
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", api.url + "/")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def kefu(*args: str) -> Result:
    return CliRunner().invoke(main, ["telegram", *args])


def test_webhook_set_registers_the_url_with_the_secret(api: FakeTelegramAPI) -> None:
    result = kefu("webhook", "set", "https://kefu.example.com/")
    assert result.exit_code == 0, result.output
    assert "https://kefu.example.com/webhooks/telegram/webhook" in result.output
    assert api.webhook == {
        "url": "https://kefu.example.com/webhooks/telegram/webhook",
        "secret_token": SECRET,
        "allowed_updates": ["message", "callback_query"],
        "drop_pending_updates": False,
    }


@pytest.mark.parametrize("url", ["http://kefu.example.com", "kefu.example.com", "https://"])
def test_webhook_set_wants_https(api: FakeTelegramAPI, url: str) -> None:
    result = kefu("webhook", "set", url)
    assert result.exit_code == 2 and "https://" in result.output
    assert "setWebhook" not in api.methods()


def test_allow_http_is_for_local_testing(api: FakeTelegramAPI) -> None:
    result = kefu("webhook", "set", "--allow-http", "http://127.0.0.1:5005")
    assert result.exit_code == 0, result.output
    assert api.webhook["url"] == "http://127.0.0.1:5005/webhooks/telegram/webhook"


@pytest.mark.parametrize(
    ("unset", "args"),
    [
        ("TELEGRAM_SECRET_TOKEN", ["webhook", "set", "https://kefu.example.com"]),
        ("TELEGRAM_TOKEN", ["webhook", "set", "https://kefu.example.com"]),
        ("TELEGRAM_TOKEN", ["webhook", "info"]),
        ("TELEGRAM_TOKEN", ["webhook", "delete"]),
        ("TELEGRAM_SECRET_TOKEN", ["poll", "--once"]),
    ],
)
def test_commands_refuse_without_credentials(
    api: FakeTelegramAPI, monkeypatch: pytest.MonkeyPatch, unset: str, args: list[str]
) -> None:
    monkeypatch.setenv(unset, "")
    get_settings.cache_clear()
    result = kefu(*args)
    assert result.exit_code == 2 and unset in result.output
    assert api.calls == []


def test_webhook_info_shows_the_url_pending_updates_and_last_error(api: FakeTelegramAPI) -> None:
    assert kefu("webhook", "set", "https://kefu.example.com").exit_code == 0
    api.push_update(telegram_update(1, 42, text="你好"))
    api.report_webhook_error("Wrong response from the webhook: 403 Forbidden")
    output = kefu("webhook", "info").output
    assert "url:             https://kefu.example.com/webhooks/telegram/webhook" in output
    assert "pending updates: 1" in output
    assert "Wrong response from the webhook: 403 Forbidden" in output
    assert "message, callback_query" in output


def test_webhook_delete(api: FakeTelegramAPI) -> None:
    assert kefu("webhook", "set", "https://kefu.example.com").exit_code == 0
    result = kefu("webhook", "delete")
    assert result.exit_code == 0 and "deleted" in result.output
    assert "url:             (none)" in kefu("webhook", "info").output
    assert "last error:      none" in kefu("webhook", "info").output


def test_a_wrong_token_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_TOKEN", "999:wrong")
    get_settings.cache_clear()
    result = kefu("webhook", "info")
    assert result.exit_code == 1 and "Telegram refused" in result.output


def test_poll_forwards_updates_with_the_secret_and_confirms_them(
    api: FakeTelegramAPI, receiver: Receiver
) -> None:
    assert kefu("webhook", "set", "https://kefu.example.com").exit_code == 0
    updates = [
        telegram_update(41, 42, text="你好"),
        telegram_update(42, 42, callback_data="/order_status", message_id=9),
    ]
    for update in updates:
        api.push_update(update)
    result = kefu("poll", "--once", "--timeout", "1", "--rasa-url", receiver.url + "/")
    assert result.exit_code == 0, result.output
    assert "Forwarded 2 update(s)" in result.output
    assert [path for path, _, _ in receiver.requests] == ["/webhooks/telegram/webhook"] * 2
    assert all(headers[SECRET_HEADER] == SECRET for _, headers, _ in receiver.requests)
    text, press = (body for _, _, body in receiver.requests)
    assert text["update_id"] == 41 and text["message"]["text"] == "你好"
    assert text["message"]["chat"]["id"] == 42 and text["message"]["from"]["id"] == 42
    assert press["callback_query"]["data"] == "/order_status"
    assert (
        press["callback_query"]["message"]["reply_markup"]
        == updates[1]["callback_query"]["message"]["reply_markup"]
    )
    methods = api.methods()
    assert methods.index("deleteWebhook") < methods.index("getUpdates")
    assert "pending updates: 0" in kefu("webhook", "info").output  # confirmed


def test_poll_keeps_updates_rasa_did_not_take(api: FakeTelegramAPI, receiver: Receiver) -> None:
    receiver.status = 403
    api.push_update(telegram_update(7, 42, text="你好"))
    result = kefu("poll", "--once", "--timeout", "0", "--rasa-url", receiver.url)
    assert result.exit_code == 1 and "403" in result.output
    assert len(receiver.requests) == 1
    assert "pending updates: 1" in kefu("webhook", "info").output  # not confirmed
    receiver.status = 200
    assert kefu("poll", "--once", "--timeout", "0", "--rasa-url", receiver.url).exit_code == 0
    assert [body["update_id"] for _, _, body in receiver.requests] == [7, 7]


def test_poll_skips_updates_rasa_will_never_take(api: FakeTelegramAPI, receiver: Receiver) -> None:
    receiver.status = 400
    api.push_update(telegram_update(8, 42, text="?"))
    result = kefu("poll", "--once", "--timeout", "0", "--rasa-url", receiver.url)
    assert result.exit_code == 0 and "skipped" in result.output
    assert "pending updates: 0" in kefu("webhook", "info").output


def test_poll_without_rasa_running(api: FakeTelegramAPI) -> None:
    api.push_update(telegram_update(9, 42, text="你好"))
    result = kefu("poll", "--once", "--timeout", "0", "--rasa-url", "http://127.0.0.1:9")
    assert result.exit_code == 1 and "not reachable" in result.output


def test_poll_with_nothing_to_do(api: FakeTelegramAPI, receiver: Receiver) -> None:
    result = kefu("poll", "--once", "--timeout", "0", "--rasa-url", receiver.url)
    assert result.exit_code == 0 and "Forwarded 0 update(s)" in result.output
    assert receiver.requests == []
