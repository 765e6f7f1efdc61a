"""An agent on the live desk: account set-up, the desk API with a real session, the queue."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from bot.accounts import AgentStore
from bot.core.db import AgentRole, Handoff, make_engine
from bot.core.settings import Settings
from bot.handoff.store import HandoffStore


def ensure_agent(stack: Settings, username: str, display_name: str, password: str) -> str:
    """Creates the agent account once; returns its username."""
    engine = make_engine(stack.database_url)
    store = AgentStore(engine)
    if store.get(username) is None:
        store.create(username, display_name, AgentRole.agent, password)
    engine.dispose()
    return username


def open_handoff_with(stack: Settings, marker: str, timeout: float = 30) -> Handoff:
    """The open handoff whose packet transcript contains `marker`."""
    engine = make_engine(stack.database_url)
    store = HandoffStore(engine)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for handoff in store.queue():
                if any(marker in line["text"] for line in handoff.packet["transcript"]):
                    return handoff
            time.sleep(0.2)
    finally:
        engine.dispose()
    raise AssertionError(f"no open handoff mentions {marker!r}")


class DeskClient:
    """An agent using the desk API with a real session and its CSRF token."""

    def __init__(self, stack: Settings, username: str, password: str) -> None:
        self.http = httpx.Client(base_url=f"http://{stack.host}:{stack.web_port}", timeout=30)
        form = self.http.get("/desk/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert csrf
        response = self.http.post(
            "/desk/login",
            data={"csrf_token": csrf.group(1), "username": username, "password": password},
        )
        assert response.status_code == 303, response.text
        token = re.search(r'name="csrf-token" content="([^"]+)"', self.http.get("/desk").text)
        assert token
        self.csrf = token.group(1)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.post(path, json=body or {}, headers={"X-CSRF-Token": self.csrf})
        assert response.status_code == 200, response.text
        return response.json()

    def get(self, path: str) -> Any:
        response = self.http.get(path)
        assert response.status_code == 200, response.text
        return response.json()
