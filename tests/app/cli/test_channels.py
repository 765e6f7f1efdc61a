from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.channels.status import channel_status
from bot.cli.channels import channels
from bot.core.settings import Settings, get_settings
from connectors.channel_state import open_channel_state


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("KEFU_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def test_a_channel_without_its_token_is_off() -> None:
    status = dict((name, (on, detail)) for name, on, detail in channel_status(Settings()))
    assert status["wechat"][0] is False and "WECHAT_TOKEN" in status["wechat"][1]
    on = channel_status(Settings(wechat_token="t", wechat_encoding_aes_key="k" * 43))
    assert on[0][1] is True and "safe mode" in on[0][2]


def test_status_prints_the_webhook_of_enabled_channels(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEGRAM_TOKEN", "123:abc")
    get_settings.cache_clear()
    output = CliRunner().invoke(channels, ["status"]).output
    assert "telegram  on" in output and "/webhooks/telegram/webhook" in output
    assert "wechat    off" in output


def test_undelivered_lists_what_a_channel_recorded(settings: Settings) -> None:
    runner = CliRunner()
    assert "Every message was delivered" in runner.invoke(channels, ["undelivered"]).output
    open_channel_state(settings.channel_state_url).record_undelivered(
        {
            "channel": "wechat",
            "recipient": "o123",
            "text": "您的退款已到账",
            "reason": "48-hour window closed: follow up another way",
        }
    )
    output = runner.invoke(channels, ["undelivered"]).output
    assert "o123" in output and "48-hour window" in output and "您的退款已到账" in output
