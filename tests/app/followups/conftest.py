"""Fixtures of the follow-up tests: the recording Rasa, settings pointing at it, the policy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.core.settings import Settings
from bot.service.policy import ServicePolicy, load_policy
from tests.app.followups.support import TOKEN, FakeRasa


@pytest.fixture
def rasa() -> Iterator[FakeRasa]:
    """A recording Rasa HTTP API on a free loopback port."""
    with FakeRasa() as fake:
        yield fake


@pytest.fixture
def policy() -> ServicePolicy:
    """The shipped service policy (quiet hours 21:00-09:00 Asia/Shanghai)."""
    return load_policy()


@pytest.fixture
def settings(tmp_path: Path, rasa: FakeRasa) -> Settings:
    """Settings pointing at the fake Rasa, no SMTP, the SMS log under tmp_path."""
    return Settings(
        var_dir=tmp_path / "var",
        rasa_port=rasa.port,
        rasa_token=TOKEN,
        followups_lease_seconds=60,
        followups_batch_size=100,
    )
