"""The desk's login, session cookie, CSRF, lockout and route protection (TestClient)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from bot.accounts import AgentStore
from bot.core.db import Agent, AgentRole, DeskSession, make_engine, upgrade
from bot.core.settings import Settings
from bot.web import create_app
from bot.web.deps import require_agent, require_csrf
from tests.app.conftest import PRODUCTION
from tests.app.web.conftest import PASSWORD


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    settings = Settings(var_dir=tmp_path)
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    store = AgentStore(engine)
    store.create("li.na", "李娜 Li Na", AgentRole.editor, PASSWORD)
    store.create("evil", "<img src=x onerror=alert(1)>", AgentRole.agent, PASSWORD)
    engine.dispose()
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app, follow_redirects=False)


def login_csrf(client: TestClient) -> str:
    page = client.get("/desk/login")
    assert page.status_code == 200
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


def log_in(client: TestClient, username: str = "li.na", password: str = PASSWORD) -> str:
    """Logs in; returns the desk page's CSRF token."""
    response = client.post(
        "/desk/login",
        data={"csrf_token": login_csrf(client), "username": username, "password": password},
    )
    assert response.status_code == 303, response.text
    page = client.get("/desk", follow_redirects=True)  # an editor's goes on to the review
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


def test_the_login_page_sets_a_csrf_cookie(client: TestClient) -> None:
    page = client.get("/desk/login")
    cookie = page.headers["set-cookie"]
    assert "kefu_login_csrf=" in cookie and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
    assert f'value="{client.cookies["kefu_login_csrf"]}"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]  # no inline scripts
    assert "<script" not in page.text


def test_login_sets_the_session_cookie_and_redirects(client: TestClient) -> None:
    response = client.post(
        "/desk/login",
        data={"csrf_token": login_csrf(client), "username": "li.na", "password": PASSWORD},
    )
    assert response.status_code == 303 and response.headers["location"] == "/desk"
    cookie = response.headers.get_list("set-cookie")
    session = next(c for c in cookie if c.startswith("kefu_desk_session="))
    assert "HttpOnly" in session and "Path=/desk" in session
    assert "samesite=strict" in session.lower() and "Secure" not in session
    page = client.get("/desk")  # an editor has no console: sent on to the review queue
    assert page.status_code == 303 and page.headers["location"] == "/desk/review"
    page = client.get("/desk/review")
    assert page.status_code == 200
    assert "李娜 Li Na" in page.text and "editor" in page.text


def test_production_cookies_are_secure(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, **PRODUCTION)
    upgrade(settings.database_url)
    AgentStore(make_engine(settings.database_url)).create(
        "li.na", "Li Na", AgentRole.agent, PASSWORD
    )
    client = TestClient(create_app(settings), follow_redirects=False)
    page = client.get("/desk/login")
    assert "Secure" in page.headers["set-cookie"]
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    response = client.post(
        "/desk/login",
        data={"csrf_token": csrf.group(1), "username": "li.na", "password": PASSWORD},
        cookies={"kefu_login_csrf": csrf.group(1)},
    )
    assert response.status_code == 303
    assert any(
        c.startswith("kefu_desk_session=") and "Secure" in c
        for c in response.headers.get_list("set-cookie")
    )


def test_a_wrong_or_missing_login_csrf_token_is_refused(client: TestClient) -> None:
    login_csrf(client)
    wrong = client.post(
        "/desk/login", data={"csrf_token": "forged", "username": "li.na", "password": PASSWORD}
    )
    assert wrong.status_code == 403 and "kefu_desk_session" not in client.cookies
    client.cookies.clear()
    missing = client.post(
        "/desk/login", data={"csrf_token": "", "username": "li.na", "password": PASSWORD}
    )
    assert missing.status_code == 403


def test_bad_credentials_get_one_generic_message(client: TestClient) -> None:
    csrf = login_csrf(client)
    wrong = client.post(
        "/desk/login", data={"csrf_token": csrf, "username": "li.na", "password": "nope nope nope"}
    )
    unknown = client.post(
        "/desk/login", data={"csrf_token": csrf, "username": "ghost", "password": PASSWORD}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong username or password" in wrong.text
    assert "Wrong username or password" in unknown.text
    assert "kefu_desk_session" not in client.cookies


def test_the_sixth_failure_is_locked_out(client: TestClient) -> None:
    csrf = login_csrf(client)
    form = {"csrf_token": csrf, "username": "li.na", "password": "nope nope nope"}
    for _ in range(5):
        assert client.post("/desk/login", data=form).status_code == 401
    locked = client.post("/desk/login", data={**form, "password": PASSWORD})
    assert locked.status_code == 429
    assert "too many failed attempts, try again in 15 minutes" in locked.text.lower()
    assert "kefu_desk_session" not in client.cookies


def test_the_desk_page_redirects_to_login_without_a_session(client: TestClient) -> None:
    response = client.get("/desk")
    assert response.status_code == 303 and response.headers["location"] == "/desk/login"
    client.cookies.set("kefu_desk_session", "made-up")
    assert client.get("/desk").status_code == 303


def test_api_me_needs_a_session(client: TestClient) -> None:
    response = client.get("/desk/api/me")
    assert response.status_code == 401 and "detail" in response.json()
    log_in(client)
    assert client.get("/desk/api/me").json() == {
        "username": "li.na",
        "display_name": "李娜 Li Na",
        "role": "editor",
    }


def test_logout_checks_csrf_and_revokes_the_session(client: TestClient) -> None:
    csrf = log_in(client)
    token = client.cookies["kefu_desk_session"]
    assert client.post("/desk/logout", data={"csrf_token": "forged"}).status_code == 403
    assert client.get("/desk/api/me").status_code == 200
    response = client.post("/desk/logout", data={"csrf_token": csrf})
    assert response.status_code == 303 and response.headers["location"] == "/desk/login"
    client.cookies.set("kefu_desk_session", token)  # a stolen copy of the cookie is dead too
    assert client.get("/desk/api/me").status_code == 401
    assert client.get("/desk").status_code == 303


def test_every_desk_route_needs_a_session(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    checked = 0
    for path, operations in paths.items():
        if not path.startswith("/desk") or path == "/desk/login":
            continue
        for method in operations:
            response = client.request(method.upper(), path)
            assert response.status_code in (401, 403, 303), (method, path, response.status_code)
            checked += 1
    assert checked >= 3


def test_display_names_are_rendered_escaped(client: TestClient) -> None:
    log_in(client, "evil")
    page = client.get("/desk")
    assert "<img src=x" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text


def test_role_and_csrf_dependencies(app: FastAPI, client: TestClient) -> None:
    @app.post("/desk/api/admin-only")
    def admin_only(
        agent: Annotated[Agent, Depends(require_agent(AgentRole.admin))],
        session: Annotated[DeskSession, Depends(require_csrf)],
    ) -> dict[str, str]:
        return {"ok": agent.username}

    assert client.post("/desk/api/admin-only").status_code == 401
    csrf = log_in(client)
    assert client.post("/desk/api/admin-only", headers={"X-CSRF-Token": csrf}).status_code == 403

    @app.post("/desk/api/editors")
    def editors(
        agent: Annotated[Agent, Depends(require_agent(AgentRole.editor, AgentRole.admin))],
        session: Annotated[DeskSession, Depends(require_csrf)],
    ) -> dict[str, str]:
        return {"ok": agent.username}

    assert client.post("/desk/api/editors").status_code == 403  # no CSRF header
    ok = client.post("/desk/api/editors", headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200 and ok.json() == {"ok": "li.na"}
