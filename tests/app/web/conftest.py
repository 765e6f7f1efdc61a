"""What the web tests share: the desk password, a Rasa client that records, signing in."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

PASSWORD = "correct horse battery"


class RecordingRasa:
    """Stands in for `RasaClient`: keeps what the desk appends."""

    def __init__(self) -> None:
        self.appended: list[tuple[str, list[dict[str, Any]]]] = []

    async def append(self, conversation_id: str, events: list[dict[str, Any]]) -> None:
        self.appended.append((conversation_id, events))

    async def close(self) -> None:
        """Nothing to close."""


def signed_in(app: FastAPI, username: str = "li.na") -> tuple[TestClient, str]:
    """A client signed in to the desk as `username`, and its CSRF token."""
    client = TestClient(app, follow_redirects=False)
    form = client.get("/desk/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf
    response = client.post(
        "/desk/login",
        data={"csrf_token": csrf.group(1), "username": username, "password": PASSWORD},
    )
    assert response.status_code == 303
    page = client.get("/desk", follow_redirects=True)  # editors: on to the review queue
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert token
    return client, token.group(1)
