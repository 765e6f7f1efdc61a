from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.core.settings import Settings
from bot.web import create_app


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    (tmp_path / "webchat").mkdir()
    (tmp_path / "webchat" / "webchat.js").write_text("window.WebChat = {};")
    return TestClient(
        create_app(Settings(var_dir=tmp_path, rasa_public_url="http://bot.example:5005"))
    )


def test_health(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_chat_page_points_the_widget_at_rasa(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "http://bot.example:5005" in page.text
    assert "/vendor/webchat/webchat.js" in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "http://bot.example:5005" in policy
    assert page.headers["x-frame-options"] == "DENY"


def test_widget_and_own_assets_are_served_locally(client: TestClient) -> None:
    assert client.get("/vendor/webchat/webchat.js").status_code == 200
    assert client.get("/static/chat.js").status_code == 200
    assert client.get("/static/../settings.py").status_code == 404


def test_unknown_routes_are_404(client: TestClient) -> None:
    assert client.get("/nope").status_code == 404
    assert client.post("/healthz").status_code == 405
