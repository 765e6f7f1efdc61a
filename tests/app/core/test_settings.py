from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.core.settings import LOCAL_RASA_TOKEN, Settings
from tests.app.conftest import PRODUCTION


def test_local_defaults_live_under_var(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path}/data/kefu.db"
    assert settings.tracker_store_url.endswith("rasa/tracker.db")
    assert settings.event_broker_url.endswith("rasa/events.db")
    assert settings.rasa_public_url == "http://127.0.0.1:5005"
    assert (
        settings.rasa_environment()["KEFU_ACTION_ENDPOINT_URL"] == "http://127.0.0.1:5055/webhook"
    )


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEFU_RASA_PORT", "6005")
    monkeypatch.setenv("KEFU_LOCK_STORE_URL", "redis://127.0.0.1:6379/0")
    settings = Settings()
    assert settings.rasa_url == "http://127.0.0.1:6005"
    assert settings.rasa_environment()["KEFU_LOCK_STORE_URL"] == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize("token", [LOCAL_RASA_TOKEN, "short"])
def test_production_refuses_placeholder_tokens(token: str) -> None:
    with pytest.raises(ValidationError, match="KEFU_RASA_TOKEN"):
        Settings(env="production", rasa_token=token)


def test_production_accepts_real_secrets() -> None:
    assert Settings(**PRODUCTION).env == "production"


@pytest.mark.parametrize("name", ["customer_session_secret", "action_token", "rest_token"])
def test_production_refuses_a_default_or_short_secret(name: str) -> None:
    with pytest.raises(ValidationError, match=f"KEFU_{name.upper()}"):
        Settings(**{**PRODUCTION, name: "short"})
    published = {"rest_token": ""}.get(name, Settings().model_dump()[name])
    with pytest.raises(ValidationError, match="at least 24 characters"):
        Settings(**{**PRODUCTION, name: published})


def test_production_refuses_a_short_telegram_secret_and_wechat_plain_mode() -> None:
    telegram = {"telegram_token": "1:abc", "telegram_secret_token": "x"}
    with pytest.raises(ValidationError, match="TELEGRAM_SECRET_TOKEN"):
        Settings(**PRODUCTION, **telegram)
    with pytest.raises(ValidationError, match="plain mode"):
        Settings(**PRODUCTION, wechat_token="w" * 32)
    assert Settings(wechat_token="w", telegram_token="1:abc").env == "local"


def test_tracker_store_and_broker_must_differ() -> None:
    with pytest.raises(ValidationError, match="separate databases"):
        Settings(tracker_store_url="sqlite:///x.db", event_broker_url="sqlite:///x.db")


def test_channel_settings_use_the_platforms_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WECHAT_TOKEN", "wechat-token")
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", "http://127.0.0.1:9999")
    settings = Settings(var_dir=tmp_path)
    assert settings.wechat_token == "wechat-token"
    assert settings.wechat_api_base_url == "https://api.weixin.qq.com"
    assert settings.channel_state_url == f"sqlite:///{tmp_path}/rasa/channels.db"
    rasa = settings.rasa_environment()
    assert rasa["WECHAT_TOKEN"] == "wechat-token" and rasa["TELEGRAM_TOKEN"] == ""
    assert rasa["TELEGRAM_API_BASE_URL"] == "http://127.0.0.1:9999"
    assert rasa["KEFU_CHANNEL_STATE_URL"] == settings.channel_state_url


def test_child_processes_read_back_the_same_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Settings(var_dir=tmp_path, wechat_app_id="wx1", rasa_port=6123)
    environment = original.as_environment()
    assert environment["WECHAT_APP_ID"] == "wx1" and "KEFU_WECHAT_APP_ID" not in environment
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert Settings() == original
