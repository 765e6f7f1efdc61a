"""Fixtures for app-runtime unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Tracker
from sqlalchemy import Engine

from bot.core.db import make_engine, upgrade
from bot.service.orders import seed_demo_orders


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite app database with the demo orders."""
    url = f"sqlite:///{tmp_path}/kefu.db"
    upgrade(url)
    engine = make_engine(url)
    seed_demo_orders(engine)
    yield engine
    engine.dispose()


def user_event(text: str, intent: str, confidence: float = 0.9) -> dict[str, Any]:
    """A `user` event as Rasa sends it to the action server."""
    return {
        "event": "user",
        "text": text,
        "parse_data": {"intent": {"name": intent, "confidence": confidence}, "entities": []},
    }


def make_tracker(
    text: str,
    intent: str,
    confidence: float = 0.9,
    slots: dict[str, Any] | None = None,
    entities: list[dict[str, Any]] | None = None,
    events: list[dict[str, Any]] | None = None,
    metadata: dict[str, Any] | None = None,
    ranking: list[dict[str, Any]] | None = None,
) -> Tracker:
    """A tracker whose latest message is `text` classified as `intent`."""
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": confidence},
        "intent_ranking": ranking or [{"name": intent, "confidence": confidence}],
        "entities": entities or [],
        "metadata": metadata or {},
    }
    history = [*(events or []), user_event(text, intent, confidence)]
    return Tracker(
        "test-user",
        {"language": "zh", **(slots or {})},
        latest,
        history,
        False,
        None,
        None,
        "action_listen",
    )
