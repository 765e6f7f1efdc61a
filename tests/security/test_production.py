"""What production refuses: unauthenticated REST, Rasa's API from elsewhere, unsafe settings.

Findings: the REST channel took any sender from anyone; Rasa's HTTP API (trackers, events
with side effects, the model) was reachable from any address that could reach Rasa, guarded
by one token; production started with WeChat in plain mode (unsigned message bodies) and with
a guessable Telegram webhook secret.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from bot.core.settings import PROJECT_ROOT, Settings
from tests.security.conftest import PRODUCTION_SECRETS

pytestmark = pytest.mark.e2e

CHANNEL_VARIABLES = (
    "WECHAT_TOKEN",
    "WECHAT_APP_ID",
    "WECHAT_APP_SECRET",
    "WECHAT_ENCODING_AES_KEY",
    "TELEGRAM_TOKEN",
    "TELEGRAM_SECRET_TOKEN",
)


def rest(stack: Settings, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(
        f"{stack.rasa_url}/webhooks/rest/webhook",
        json={"sender": f"sec-prod-{uuid.uuid4().hex[:8]}", "message": "你好"},
        headers=headers,
        timeout=30,
    )


def test_rest_without_token_in_production_is_refused(production_stack: Settings) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": production_stack.rest_token},  # no scheme
        {"Authorization": f"Bearer {production_stack.rasa_token}"},  # another secret
    ):
        response = rest(production_stack, headers)
        assert response.status_code in (401, 403), (headers, response.text)
    # control: the calling server with the token is answered
    response = rest(production_stack, {"Authorization": f"Bearer {production_stack.rest_token}"})
    assert response.status_code == 200, response.text


def test_rasa_api_from_a_non_allowed_address_is_refused(production_stack: Settings) -> None:
    rasa, token = production_stack.rasa_url, {"token": production_stack.rasa_token}
    sender = f"sec-prod-{uuid.uuid4().hex[:8]}"
    calls = [
        ("GET", "/status", None),
        ("GET", f"/conversations/{sender}/tracker", None),
        (
            "POST",
            f"/conversations/{sender}/tracker/events",
            [{"event": "bot", "text": "from an attacker"}],
        ),
        ("POST", f"/conversations/{sender}/execute", {"name": "action_session_start"}),
        ("POST", "/model/parse", {"text": "你好"}),
    ]
    for method, path, body in calls:
        response = httpx.request(method, f"{rasa}{path}", params=token, json=body, timeout=30)
        assert response.status_code == 403, (method, path, response.status_code, response.text)
    # the channels' webhooks stay public
    assert httpx.get(f"{rasa}/webhooks/rest/", timeout=10).status_code == 200
    handshake = httpx.get(
        f"{rasa}/socket.io/", params={"EIO": "4", "transport": "polling"}, timeout=10
    )
    assert handshake.status_code == 200


def kefu_in_production(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """`kefu channels status` under production settings plus `variables`."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("KEFU_") and name not in CHANNEL_VARIABLES
    }
    environment.update(
        {
            "KEFU_ENV": "production",
            "KEFU_VAR_DIR": str(tmp_path / "var"),
            **{f"KEFU_{name.upper()}": value for name, value in PRODUCTION_SECRETS.items()},
            **variables,
        }
    )
    return subprocess.run(
        [str(PROJECT_ROOT / ".venv-app" / "bin" / "kefu"), "channels", "status"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        timeout=60,
        check=False,
    )


WECHAT = {
    "WECHAT_TOKEN": "prod-wechat-token-0123456789",
    "WECHAT_APP_ID": "wx49f0ab532d5d035a",
    "WECHAT_APP_SECRET": "prod-wechat-app-secret-0123456789",
}


def test_production_refuses_wechat_plain_mode(tmp_path: Path) -> None:
    refused = kefu_in_production(tmp_path, **WECHAT)
    assert refused.returncode != 0, refused.stdout
    assert "WECHAT_ENCODING_AES_KEY" in refused.stderr, refused.stderr[-1500:]
    # control: safe mode starts
    safe = kefu_in_production(
        tmp_path, **WECHAT, WECHAT_ENCODING_AES_KEY="kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
    )
    assert safe.returncode == 0, safe.stderr[-1500:]


@pytest.mark.parametrize("secret", ["", "short-secret"], ids=["missing", "short"])
def test_production_refuses_a_short_telegram_secret(tmp_path: Path, secret: str) -> None:
    refused = kefu_in_production(
        tmp_path, TELEGRAM_TOKEN="123456:prod-telegram-token", TELEGRAM_SECRET_TOKEN=secret
    )
    assert refused.returncode != 0, refused.stdout
    assert "TELEGRAM_SECRET_TOKEN" in refused.stderr, refused.stderr[-1500:]
