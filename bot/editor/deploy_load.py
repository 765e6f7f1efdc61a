"""`deploy_under_load`: customers chat over REST while a deploy runs; what they saw.

Each simulated customer reads the reply and types the next message: it pauses a think time
drawn from `think_seconds` (uniformly) after every reply, then sends (a new conversation per
customer, keep-alive connections like a real client, no retries). `think_seconds=(0, 0)` is
the non-stop load that saturates the machine. The result states the load (customers, think
time, messages per second offered, the machine's load average) and counts every message, every
failure (an error status, an empty reply, a broken connection) and the longest any message
waited, overall and around the deploy.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx

from bot.core.files import replace_text

MESSAGES = ("你好", "谢谢", "hello", "我的订单到哪了", "七天无理由退货要满足什么条件")
T = TypeVar("T")


@dataclass(frozen=True)
class Reply:
    """One message: when it was sent, how long the reply took, what went wrong (if anything)."""

    sent: float
    wait: float
    problem: str = ""


@dataclass
class DeployLoad:
    """What the customers saw while a deploy ran."""

    users: int
    think_seconds: tuple[float, float]
    """Each customer's pause after a reply (uniform between the two), like reading and typing."""
    messages_per_second: float
    """The load the customers made: messages answered per second over the whole run."""
    load_average: tuple[float, float, float]
    """The machine's 1, 5 and 15 minute load average when the deploy finished."""
    messages: int
    failed: int
    worst_wait_seconds: float
    worst_wait_before_seconds: float
    """The longest wait before the deploy started (the machine's own load)."""
    p50_wait_seconds: float
    p95_wait_seconds: float
    deploy_seconds: float
    failures: list[str] = field(default_factory=list)
    slowest: list[tuple[float, float]] = field(default_factory=list)
    """The ten longest waits: (seconds after the deploy started when sent, wait)."""

    def write(self, path: Path) -> None:
        """Writes the result as JSON (the chat benchmark reads `worst_wait_seconds`)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_text(path, json.dumps(asdict(self), ensure_ascii=False, indent=2) + "\n")


class RestCustomers:
    """Customers chatting over Rasa's REST channel in threads, each reply timed."""

    def __init__(
        self, rasa_url: str, users: int, think_seconds: tuple[float, float] = (0.0, 0.0)
    ) -> None:
        self.url = f"{rasa_url}/webhooks/rest/webhook"
        self.users = users
        self.think_seconds = think_seconds
        self.replies: list[Reply] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._chat, args=(n,), daemon=True) for n in range(users)
        ]

    def _chat(self, number: int) -> None:
        sender = f"deploy-load-{number}-{uuid.uuid4().hex[:8]}"
        pauses = random.Random(number)  # noqa: S311 (think times, not secrets)
        with httpx.Client(timeout=120) as client:
            turn = 0
            while not self.stop.wait(pauses.uniform(*self.think_seconds) if turn else 0):
                text = MESSAGES[turn % len(MESSAGES)]
                turn += 1
                sent = time.monotonic()
                try:
                    response = client.post(self.url, json={"sender": sender, "message": text})
                    ok = response.status_code == 200 and bool(response.json())
                    answer = f"{response.status_code} {response.text[:200]}"
                    problem = "" if ok else f"{text!r}: {answer}"
                except (httpx.HTTPError, ValueError) as error:
                    problem = f"{text!r}: {error!r}"
                with self.lock:
                    self.replies.append(Reply(sent, time.monotonic() - sent, problem))

    def count(self) -> int:
        """Messages answered (or failed) so far."""
        with self.lock:
            return len(self.replies)

    def __enter__(self) -> RestCustomers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=150)


def _percentile(values: list[float], share: float) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def deploy_under_load(
    rasa_url: str,
    deploy: Callable[[], T],
    users: int = 4,
    think_seconds: tuple[float, float] = (0.0, 0.0),
    warm_up_messages: int = 12,
    settle_seconds: float = 5.0,
    result_path: Path | None = None,
) -> tuple[T, DeployLoad]:
    """Runs `deploy()` while `users` customers chat; returns its result and what they saw.

    Each customer pauses `think_seconds` (uniform) after every reply; (0, 0) is non-stop.

    The load starts first (until `warm_up_messages` were answered) and goes on for
    `settle_seconds` after the deploy returns, so the switch-over is inside the window.
    """
    with RestCustomers(rasa_url, users, think_seconds) as customers:
        first = time.monotonic()
        deadline = time.monotonic() + 300
        while customers.count() < warm_up_messages and time.monotonic() < deadline:
            time.sleep(0.2)
        started = time.monotonic()
        outcome = deploy()
        finished = time.monotonic()
        load_average = os.getloadavg()
        time.sleep(settle_seconds)
        last = time.monotonic()
    replies = list(customers.replies)
    before = [r.wait for r in replies if r.sent + r.wait < started]
    window = [r.wait for r in replies if r.sent + r.wait >= started]
    failures = [r.problem for r in replies if r.problem]
    load = DeployLoad(
        users=users,
        think_seconds=think_seconds,
        messages_per_second=round(len(replies) / max(last - first, 1e-9), 2),
        load_average=(
            round(load_average[0], 2),
            round(load_average[1], 2),
            round(load_average[2], 2),
        ),
        messages=len(replies),
        failed=len(failures),
        worst_wait_seconds=round(max(r.wait for r in replies), 3) if replies else 0.0,
        worst_wait_before_seconds=round(max(before), 3) if before else 0.0,
        p50_wait_seconds=round(_percentile(window, 0.5), 3),
        p95_wait_seconds=round(_percentile(window, 0.95), 3),
        deploy_seconds=round(finished - started, 1),
        failures=failures[:20],
        slowest=sorted(
            ((round(r.sent - started, 1), round(r.wait, 3)) for r in replies),
            key=lambda item: -item[1],
        )[:10],
    )
    if result_path is not None:
        load.write(result_path)
    return outcome, load
