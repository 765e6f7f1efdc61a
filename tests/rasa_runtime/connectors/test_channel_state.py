import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from connectors import channel_state
from connectors.channel_state import SqliteChannelState, open_channel_state


def _claim(path: str, key: str) -> bool:
    return open_channel_state(f"sqlite:///{path}").claim(key)


def test_only_the_first_claim_wins_across_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "channels.db")  # a new file: the processes also race to set it up
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.starmap(_claim, [(path, "wechat:msg:42")] * 4)
    assert sorted(results) == [False, False, False, True]


def test_instances_racing_on_a_new_file_claim_once(tmp_path: Path) -> None:
    """Switching a new file to WAL answered "database is locked" at once (seen in CI)."""
    for round_ in range(10):
        path = tmp_path / f"channels-{round_}.db"
        states = [SqliteChannelState(path) for _ in range(8)]
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda state: state.claim("wechat:msg:1"), states))
        assert sorted(results) == [False] * 7 + [True]


def test_an_expired_claim_can_be_made_again(tmp_path: Path) -> None:
    state = SqliteChannelState(tmp_path / "channels.db")
    assert state.claim("k", ttl_seconds=1) and not state.claim("k", ttl_seconds=1)
    time.sleep(1.1)
    assert state.claim("k", ttl_seconds=1)


def test_values_expire_and_can_be_deleted(tmp_path: Path) -> None:
    state = SqliteChannelState(tmp_path / "channels.db")
    state.set("options", '["/a", "/b"]', ttl_seconds=60)
    state.set("short", "x", ttl_seconds=-1)
    assert state.get("options") == '["/a", "/b"]' and state.get("short") is None
    state.delete("options")
    assert state.get("options") is None and state.get("missing") is None


def test_undelivered_records_are_capped_newest_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(channel_state, "UNDELIVERED_KEPT", 3)
    state = SqliteChannelState(tmp_path / "channels.db")
    for number in range(5):
        state.record_undelivered({"channel": "wechat", "text": f"m{number}"})
    assert [r["text"] for r in state.undelivered()] == ["m4", "m3", "m2"]
    assert state.undelivered(limit=1)[0]["recorded_at"] > 0


def test_unknown_urls_are_refused() -> None:
    with pytest.raises(ValueError, match="sqlite:///PATH or redis://HOST"):
        open_channel_state("mysql://db")
