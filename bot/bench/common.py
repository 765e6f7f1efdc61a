"""Helpers shared by benchmarks: percentiles, free ports, JSON reports."""

from __future__ import annotations

import json
import platform
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bot.core.settings import Settings
from nlu_bench.metrics import percentile

__all__ = ["BenchReport", "free_port", "percentile", "scratch_settings"]


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class BenchReport:
    """Named results of one benchmark, written as JSON and shown as a table."""

    name: str
    results: dict[str, Any]
    path: Path
    rows: list[tuple[str, str, str]] = field(default_factory=list)

    def write(self) -> None:
        """Writes `{name, measured_at, machine, results}` to `path`."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "name": self.name,
            "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": {"cpus": _cpu_count(), "python": platform.python_version()},
            "results": self.results,
        }
        self.path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")

    def table(self) -> str:
        """Rows of (metric, value, target) as aligned text."""
        width = max(len(row[0]) for row in self.rows) if self.rows else 10
        lines = [f"{'metric':<{width}}  {'measured':>12}  target", "-" * (width + 24)]
        lines += [f"{m:<{width}}  {v:>12}  {t}" for m, v, t in self.rows]
        return "\n".join(lines)


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0


def scratch_settings(settings: Settings, scratch: Path) -> Settings:
    """`settings` for a throwaway stack: databases under `scratch`, free loopback ports."""
    return settings.model_copy(
        update={
            "var_dir": scratch,
            "rasa_port": free_port(),
            "actions_port": free_port(),
            "web_port": free_port(),
            "rasa_public_url": "",
            "database_url": f"sqlite:///{scratch}/kefu.db",
            "tracker_store_url": f"sqlite:///{scratch}/tracker.db",
            "event_broker_url": f"sqlite:///{scratch}/events.db",
            "channel_state_url": f"sqlite:///{scratch}/channels.db",
        }
    )
