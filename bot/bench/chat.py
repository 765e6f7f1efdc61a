"""Reply latency and throughput of Kefu over REST, measured next to a bare `rasa init` bot.

One run starts Kefu's full stack and the untouched Rasa sample (`bot.bench.bare_bot`) side
by side and measures both: sequential latency (Kefu's and the sample's messages alternate, so
a change of the machine's load hits both alike), throughput of 20 concurrent conversations,
and the latency of turns 1-20 against turns 101-120 of one long conversation. Kefu/bare ratios
are judged against the issue's targets. Optional: a soak (many slow conversations for minutes;
every message sent must be in Rasa's tracker afterwards), 1 against N Rasa instances behind
HAProxy (the scale-out stack), and py-spy profiles of the concurrent phase. The worst reply
wait of the last deploys under load (var/bench/deploy*.json) is reported when present.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from bot.bench.bare_bot import BARE_MESSAGES, bare_service, ensure_bare_bot
from bot.bench.chat_table import TARGETS, Row, comparison_rows, extra_rows, ratio, render
from bot.bench.common import BenchReport, free_port, percentile, scratch_settings
from bot.core.db import make_engine, upgrade
from bot.core.processes import Service, ServiceGroup, kefu_services
from bot.core.settings import Settings
from bot.core.training import ensure_model
from bot.knowledge.index import ensure_index
from bot.service.orders import seed_demo_orders

MESSAGES = [
    "你好",
    "我的订单KF202611200001到哪了",
    "怎么退货",
    "能开增值税专用发票吗",
    "付款失败了怎么办",
    "where is my order KF202611200002",
    "how do I return an item",
    "can I get an invoice",
    "积分怎么用",
    "thanks, bye",
]
"""What Kefu's customers say: orders, returns, invoices, payments, points, in zh and en."""

EARLY_TURNS = (1, 20)
LATE_TURNS = (101, 120)
REQUEST_TIMEOUT_S = 60.0
TRACKER_READERS = 8
"""Trackers read back at once after a soak."""


# ------------------------------------------------------------------ pure maths and accounting


def turns_median(latencies: Sequence[float | None], first: int, last: int) -> float | None:
    """Median of turns `first`..`last` (1-based, inclusive) that got a reply; None if none did.

    Raises:
        ValueError: the conversation is shorter than `last` turns.
    """
    if len(latencies) < last:
        raise ValueError(f"{len(latencies)} turns measured; turn {last} is needed.")
    values = [x for x in latencies[first - 1 : last] if x is not None]
    return statistics.median(values) if values else None


def turn_growth(latencies: Sequence[float | None]) -> float | None:
    """Median latency of turns 101-120 over that of turns 1-20 of one conversation."""
    return ratio(turns_median(latencies, *LATE_TURNS), turns_median(latencies, *EARLY_TURNS))


def user_texts(events: Iterable[Mapping[str, Any]]) -> list[str]:
    """The customer messages (`user` events) of a tracker's events, in order."""
    return [str(e.get("text") or "") for e in events if e.get("event") == "user"]


@dataclass(frozen=True)
class LostCount:
    """Messages sent but not found in Rasa's trackers."""

    sent: int
    lost: int
    duplicated: int
    unread_conversations: int


def lost_messages(
    sent: Mapping[str, Sequence[str]], stored: Mapping[str, Sequence[str] | None]
) -> LostCount:
    """Counts, per conversation, the sent messages missing from its stored user messages.

    Compared as multisets (a message said twice must be stored twice). A conversation whose
    tracker could not be read (missing, or None) counts every message it sent as lost; stored
    messages beyond those sent (a replay stored twice) are counted as duplicated.
    """
    lost = duplicated = unread = 0
    for sender, texts in sent.items():
        found = stored.get(sender)
        if found is None:
            unread += 1
            lost += len(texts)
            continue
        want, have = Counter(texts), Counter(found)
        lost += sum((want - have).values())
        duplicated += sum((have - want).values())
    return LostCount(sum(len(t) for t in sent.values()), lost, duplicated, unread)


@dataclass
class Phase:
    """Latencies of one phase (None: that message failed), its wall time and its errors."""

    latencies: list[float | None] = field(default_factory=list)
    wall_s: float = 0.0
    error_samples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> list[float]:
        """Latencies of the messages that got a reply."""
        return [x for x in self.latencies if x is not None]

    @property
    def errors(self) -> int:
        """Messages without a reply."""
        return len(self.latencies) - len(self.ok)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _pct_ms(values: list[float], p: float) -> float | None:
    return _ms(percentile(values, p)) if values else None


def rate(phase: Phase) -> float | None:
    """Replies per second of a phase (None without wall time)."""
    return len(phase.ok) / phase.wall_s if phase.wall_s > 0 else None


def bot_summary(sequential: Phase, rounds: Sequence[Phase], long: Phase) -> dict[str, Any]:
    """One bot's figures: sequential p50/p95, concurrent throughput, the long conversation.

    Throughput is the median over the concurrent `rounds` (a burst of other work on the
    machine during one round does not decide it); their latencies are pooled.
    """
    growth = turn_growth(long.latencies)
    pooled = Phase([x for r in rounds for x in r.latencies])
    rates = [x for x in map(rate, rounds) if x is not None]
    errors = [*sequential.error_samples, *(e for r in rounds for e in r.error_samples)]
    return {
        "sequential_messages": len(sequential.latencies),
        "sequential_p50_ms": _pct_ms(sequential.ok, 50),
        "sequential_p95_ms": _pct_ms(sequential.ok, 95),
        "concurrent_messages": len(pooled.latencies),
        "concurrent_messages_per_s": round(statistics.median(rates), 2) if rates else None,
        "concurrent_rounds_per_s": [round(x, 2) for x in rates],
        "concurrent_p50_ms": _pct_ms(pooled.ok, 50),
        "concurrent_p95_ms": _pct_ms(pooled.ok, 95),
        "long_turns": len(long.latencies),
        "turns_1_20_median_ms": _ms(turns_median(long.latencies, *EARLY_TURNS)),
        "turns_101_120_median_ms": _ms(turns_median(long.latencies, *LATE_TURNS)),
        "turn_growth": None if growth is None else round(growth, 3),
        "errors": sequential.errors + pooled.errors + long.errors,
        "error_samples": errors[:5] + long.error_samples[:5],
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def comparison(kefu: Mapping[str, Any], bare: Mapping[str, Any]) -> dict[str, float | None]:
    """Kefu/bare ratios: sequential p50, throughput; turn growth of each and Kefu's over bare's."""
    return {
        "sequential_p50_ratio": _rounded(
            ratio(kefu["sequential_p50_ms"], bare["sequential_p50_ms"])
        ),
        "throughput_ratio": _rounded(
            ratio(kefu["concurrent_messages_per_s"], bare["concurrent_messages_per_s"])
        ),
        "turn_growth_kefu": kefu["turn_growth"],
        "turn_growth_bare": bare["turn_growth"],
        "turn_growth_ratio": _rounded(ratio(kefu["turn_growth"], bare["turn_growth"])),
    }


def judged(values: Mapping[str, float | None]) -> dict[str, bool]:
    """For each value that has a target: whether it met it."""
    return {key: TARGETS[key].met(value) for key, value in values.items() if key in TARGETS}


@dataclass
class ChatReport(BenchReport):
    """The chat benchmark's report: JSON as every benchmark, a wider table."""

    lines: list[Row] = field(default_factory=list)

    def table(self) -> str:
        """Kefu, bare, Kefu/bare, target and verdict per figure, and the load averages."""
        loads = self.results.get("load_average") or {}
        notes = [f"load average (1, 5, 15 min) at {k}: {v}" for k, v in loads.items()]
        return "\n".join([render(self.lines), *notes])


# ------------------------------------------------------------------ measuring


def load_average() -> list[float]:
    """The machine's load average over 1, 5 and 15 minutes."""
    return [round(x, 2) for x in os.getloadavg()]


@dataclass(frozen=True)
class Bot:
    """A bot under measurement: its REST webhook and what its customers say.

    `must_reply`: an empty answer is a failure (Kefu answers every message; the sample bot
    rightly stays silent on a "no" its stories do not expect).
    """

    name: str
    rasa_url: str
    messages: Sequence[str]
    must_reply: bool = True

    @property
    def webhook(self) -> str:
        """Rasa's REST channel."""
        return f"{self.rasa_url}/webhooks/rest/webhook"


async def _send(client: httpx.AsyncClient, bot: Bot, sender: str, text: str) -> float:
    """Posts one message; the seconds until the full reply arrived (raises without one)."""
    started = time.perf_counter()
    response = await client.post(bot.webhook, json={"sender": sender, "message": text})
    response.raise_for_status()
    if not response.json() and bot.must_reply:
        raise RuntimeError(f"no reply to {text!r}")
    return time.perf_counter() - started


async def attempt(
    client: httpx.AsyncClient, bot: Bot, sender: str, text: str, phase: Phase
) -> float | None:
    """`_send`, the failure recorded in `phase` (latency None) instead of raised."""
    try:
        latency: float | None = await _send(client, bot, sender, text)
    except (httpx.HTTPError, RuntimeError, ValueError) as error:
        latency = None
        if len(phase.error_samples) < 5:
            phase.error_samples.append(f"{bot.name} {sender}: {type(error).__name__}: {error}")
    phase.latencies.append(latency)
    return latency


def _client() -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    return httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, limits=limits)


async def alternating(bots: Sequence[Bot], turns: int, sender: str, per_sender: int) -> list[Phase]:
    """Turn by turn, one message to each bot in turn; a new sender every `per_sender` turns."""
    phases = [Phase() for _ in bots]
    async with _client() as client:
        for bot in bots:  # a first message loads lazy parts; not measured
            await attempt(client, bot, f"{sender}-warmup", bot.messages[0], Phase())
        started = time.perf_counter()
        for turn in range(turns):
            for bot, phase in zip(bots, phases, strict=True):
                text = bot.messages[turn % len(bot.messages)]
                await attempt(client, bot, f"{sender}-{turn // per_sender}", text, phase)
        for phase in phases:
            phase.wall_s = time.perf_counter() - started
    return phases


async def concurrent(bot: Bot, conversations: int, each: int, sender: str) -> Phase:
    """`conversations` at once, each sending `each` messages back to back."""
    phase = Phase()
    async with _client() as client:

        async def conversation(index: int) -> None:
            for i in range(each):
                text = bot.messages[(index + i) % len(bot.messages)]
                await attempt(client, bot, f"{sender}-{index}", text, phase)

        started = time.perf_counter()
        await asyncio.gather(*(conversation(i) for i in range(conversations)))
        phase.wall_s = time.perf_counter() - started
    return phase


@dataclass
class Soak:
    """What a soak sent per conversation and how each message went."""

    sent: dict[str, list[str]] = field(default_factory=dict)
    phase: Phase = field(default_factory=Phase)


async def soak(bot: Bot, conversations: int, seconds: float, pause: float, run: str) -> Soak:
    """`conversations` customers for `seconds`, started spread over the first `pause`.

    Each says something, waits for the reply, pauses about `pause` s, until the time is up.
    """
    result = Soak()
    deadline = time.monotonic() + seconds
    async with _client() as client:

        async def customer(index: int) -> None:
            sender = f"soak-{run}-{index}"
            texts = result.sent.setdefault(sender, [])
            await asyncio.sleep(pause * index / conversations)
            turn = 0
            while time.monotonic() < deadline:
                text = bot.messages[(index + turn) % len(bot.messages)]
                texts.append(text)
                await attempt(client, bot, sender, text, result.phase)
                turn += 1
                await asyncio.sleep(pause * random.uniform(0.5, 1.5))  # noqa: S311 (jitter)

        started = time.perf_counter()
        await asyncio.gather(*(customer(i) for i in range(conversations)))
        result.phase.wall_s = time.perf_counter() - started
    return result


async def stored_texts(
    rasa_url: str, token: str, senders: Iterable[str]
) -> dict[str, list[str] | None]:
    """Each conversation's customer messages read back through Rasa's HTTP API (None: failed)."""
    gate = asyncio.Semaphore(TRACKER_READERS)
    found: dict[str, list[str] | None] = {}
    async with _client() as client:

        async def read(sender: str) -> None:
            async with gate:
                try:
                    response = await client.get(
                        f"{rasa_url}/conversations/{quote(sender, safe='')}/tracker",
                        params={"include_events": "ALL", "token": token},
                    )
                    response.raise_for_status()
                    found[sender] = user_texts(response.json().get("events") or [])
                except (httpx.HTTPError, ValueError):
                    found[sender] = None

        await asyncio.gather(*(read(s) for s in senders))
    return found


def soak_results(
    run: Soak, stored: Mapping[str, Sequence[str] | None], seconds: float, pause: float = 0.0
) -> dict[str, Any]:
    """The soak's figures: messages, errors, lost and duplicated messages, latency."""
    count = lost_messages(run.sent, stored)
    return {
        "conversations": len(run.sent),
        "seconds": seconds,
        "pause_s": pause,
        "request_timeout_s": REQUEST_TIMEOUT_S,
        "messages": count.sent,
        "errors": run.phase.errors,
        "lost_messages": count.lost,
        "duplicated_messages": count.duplicated,
        "unread_conversations": count.unread_conversations,
        "messages_per_s": round(count.sent / run.phase.wall_s, 2) if run.phase.wall_s else None,
        "p50_ms": _pct_ms(run.phase.ok, 50),
        "p95_ms": _pct_ms(run.phase.ok, 95),
        "max_ms": _ms(max(run.phase.ok)) if run.phase.ok else None,
        "error_samples": run.phase.error_samples,
    }


@contextlib.contextmanager
def profiled(
    py_spy: Path | None, targets: Mapping[str, int], out: Path, seconds: float
) -> Iterator[None]:
    """py-spy samples each `name: pid` of `targets` into `out/<name>.txt` (collapsed stacks).

    Sampling stops when the block ends, or after `seconds`; nothing happens without `py_spy`.
    """
    if py_spy is None:
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    spies = [
        subprocess.Popen(
            [
                str(py_spy),
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                "50",
                "--format",
                "raw",
                "--subprocesses",  # the action server's Sanic worker is a child process
                "--output",
                str(out / f"{name}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in targets.items()
    ]
    try:
        yield
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes what it has
        for spy in spies:
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()


@dataclass(frozen=True)
class Plan:
    """What one run measures."""

    messages: int = 200
    conversations: int = 20
    each: int = 10
    long_turns: int = LATE_TURNS[1]
    soak_conversations: int = 0
    soak_seconds: float = 300.0
    soak_pause: float = 10.0
    rounds: int = 3
    instances: int = 1
    py_spy: Path | None = None


def _pids(group: ServiceGroup) -> dict[str, int]:
    return {s.name: s.process.pid for s in group.services if s.process is not None}


def measure_pair(
    kefu: Bot,
    bare: Bot,
    plan: Plan,
    loads: dict[str, list[float]],
    pids: Mapping[str, int],
    out: Path,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both bots' summaries: sequential and the long conversation alternate, concurrent in turn."""
    run = uuid.uuid4().hex[:8]
    loads["sequential"] = load_average()
    seq_k, seq_b = asyncio.run(alternating([kefu, bare], plan.messages, f"seq-{run}", 10))
    profile_s = REQUEST_TIMEOUT_S * 2
    kefu_pids = {f"kefu-{k}": v for k, v in pids.items() if k in ("rasa", "actions")}
    bare_pids = {"bare-rasa": pids["bare-rasa"]} if "bare-rasa" in pids else {}
    con_k: list[Phase] = []
    con_b: list[Phase] = []
    for index in range(plan.rounds):  # in turn, so a burst of other work hits both alike
        first = index == 0  # py-spy samples the first round only
        loads[f"concurrent_{index + 1}"] = load_average()
        with profiled(plan.py_spy if first else None, kefu_pids, out, profile_s):
            con_k.append(
                asyncio.run(concurrent(kefu, plan.conversations, plan.each, f"con{index}-{run}"))
            )
        with profiled(plan.py_spy if first else None, bare_pids, out, profile_s):
            con_b.append(
                asyncio.run(concurrent(bare, plan.conversations, plan.each, f"con{index}-{run}"))
            )
    loads["long_conversation"] = load_average()
    long_k, long_b = asyncio.run(alternating([kefu, bare], plan.long_turns, f"long-{run}", 10**6))
    return bot_summary(seq_k, con_k, long_k), bot_summary(seq_b, con_b, long_b)


def run_soak(kefu: Bot, token: str, plan: Plan, loads: dict[str, list[float]]) -> dict[str, Any]:
    """The soak on `kefu`, then every conversation read back."""
    loads["soak"] = load_average()
    run = uuid.uuid4().hex[:8]
    done = asyncio.run(soak(kefu, plan.soak_conversations, plan.soak_seconds, plan.soak_pause, run))
    loads["soak_end"] = load_average()
    time.sleep(2.0)  # a spooled message is replayed within a second or two
    stored = asyncio.run(stored_texts(kefu.rasa_url, token, done.sent))
    return soak_results(done, stored, plan.soak_seconds, plan.soak_pause)


def _prepare(settings: Settings) -> None:
    """The scale-out stack's app data: demo orders and the knowledge-base index."""
    seed_demo_orders(make_engine(settings.database_url))
    ensure_index(settings)


def measure_instances(
    settings: Settings, model: Path, plan: Plan, scratch: Path, loads: dict[str, list[float]]
) -> dict[str, Any]:
    """Throughput of 20 concurrent conversations through HAProxy: 1 instance, then N.

    Each stack gets `plan.rounds` rounds; the median counts.
    """
    from bot.core.scaleout import ScaleOutStack  # PostgreSQL, Redis, HAProxy: only here

    per_s: dict[str, float | None] = {}
    p95: dict[str, float | None] = {}
    run_id = uuid.uuid4().hex[:8]
    for count in (1, plan.instances):
        folder = scratch / f"scaleout-{count}"
        run = scratch_settings(settings, folder).model_copy(update={"rasa_instances": count})
        # a throwaway stack: its engines' data goes when it stops (durable=False)
        with ScaleOutStack(run, model, prepare=_prepare, durable=False) as scaleout:
            stack = json.loads(scaleout.stack_file.read_text("utf-8"))
            bot = Bot(f"kefu-{count}", str(stack["balancer_url"]).rstrip("/"), MESSAGES)
            asyncio.run(alternating([bot], 10, f"warm-{uuid.uuid4().hex[:6]}", 5))
            loads[f"instances_{count}"] = load_average()
            rounds = [
                asyncio.run(concurrent(bot, plan.conversations, plan.each, f"inst{i}-{run_id}"))
                for i in range(plan.rounds)
            ]
        summary = bot_summary(Phase(), rounds, Phase([None] * LATE_TURNS[1]))
        per_s[str(count)] = summary["concurrent_messages_per_s"]
        p95[str(count)] = summary["concurrent_p95_ms"]
    return {
        "instances": plan.instances,
        "messages_per_s": per_s,
        "p95_ms": p95,
        "instances_throughput_ratio": _rounded(ratio(per_s[str(plan.instances)], per_s["1"])),
    }


DEPLOY_FILES = ("deploy.json", "deploy-rolling.json")
"""What `tests/e2e/test_rolling_deploy.py` writes: one Rasa, then two instances rolling."""


def read_deploy(settings: Settings) -> dict[str, Any] | None:
    """The last deploys' figures from var/bench/deploy*.json: the worst wait of them all.

    `runs` keeps each file's own figures; None when no file is there.
    """
    runs: dict[str, dict[str, Any]] = {}
    for name in DEPLOY_FILES:
        try:
            payload = json.loads((settings.var_dir / "bench" / name).read_text("utf-8"))
        except (OSError, ValueError):
            continue
        results = payload.get("results", payload) if isinstance(payload, dict) else None
        if isinstance(results, dict):
            keys = ("worst_wait_seconds", "failed", "messages")
            runs[name.removesuffix(".json")] = {k: results.get(k) for k in keys} | {
                "measured_at": payload.get("measured_at")
            }
    if not runs:
        return None
    waits = [run["worst_wait_seconds"] for run in runs.values()]
    return {
        "worst_wait_seconds": max(waits) if None not in waits else None,
        "failed": sum(int(run["failed"] or 0) for run in runs.values()),
        "messages": sum(int(run["messages"] or 0) for run in runs.values()),
        "runs": runs,
    }


def assemble(
    kefu: dict[str, Any],
    bare: dict[str, Any],
    loads: dict[str, list[float]],
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    """The JSON results: both bots, ratios, the optional parts, verdicts, load averages."""
    ratios = comparison(kefu, bare)
    results: dict[str, Any] = {"kefu": kefu, "bare": bare, "ratios": ratios, **extra}
    checked: dict[str, float | None] = dict(ratios)
    if scale := extra.get("instances"):
        checked["instances_throughput_ratio"] = scale["instances_throughput_ratio"]
    if soaked := extra.get("soak"):
        checked["soak_errors"] = soaked["errors"]
        checked["soak_lost_messages"] = soaked["lost_messages"]
    if deploy := extra.get("deploy"):
        checked["deploy_worst_wait_s"] = deploy.get("worst_wait_seconds")
    results["targets"] = {k: str(TARGETS[k]) for k in judged(checked)}
    results["met"] = judged(checked)
    results["all_met"] = all(results["met"].values()) and kefu["errors"] == 0
    results["load_average"] = loads
    return results


def run_chat_benchmark(
    settings: Settings,
    plan: Plan,
    url: str = "",
    time_training: bool = False,
) -> ChatReport:
    """Measures Kefu (on `url`, or a fresh stack on free ports) next to the bare sample bot.

    With `time_training`, a fresh stack also times a cold training (empty Rasa cache).
    """
    extra: dict[str, Any] = {}
    loads: dict[str, list[float]] = {"start": load_average()}
    bare_model = ensure_bare_bot(settings)
    model, _ = ensure_model(settings)
    profiles = settings.var_dir / "bench" / "profile"
    with tempfile.TemporaryDirectory(prefix="kefu-bench-") as name:
        scratch = Path(name)
        if time_training:
            started = time.perf_counter()
            ensure_model(
                settings.model_copy(update={"var_dir": scratch / "train"}),
                cache_dir=scratch / "rasa-cache",  # empty: a cold training
            )
            extra["train_seconds"] = round(time.perf_counter() - started, 1)
        (scratch / "kefu").mkdir()
        run = scratch_settings(settings, scratch / "kefu")
        bare_port = free_port()
        bare = Bot("bare", f"http://{run.host}:{bare_port}", BARE_MESSAGES, must_reply=False)
        services: list[Service] = [bare_service(run, bare_model, bare_port)]
        if not url:
            upgrade(run.database_url)
            seed_demo_orders(make_engine(run.database_url))
            ensure_index(run)  # knowledge-base questions are searched, as in service
            services = kefu_services(run, model) + services
        kefu = Bot("kefu", (url or run.rasa_url).rstrip("/"), MESSAGES)
        token = settings.rasa_token if url else run.rasa_token
        with ServiceGroup(services, run) as group:
            kefu_sum, bare_sum = measure_pair(kefu, bare, plan, loads, _pids(group), profiles)
            if plan.soak_conversations > 0:
                extra["soak"] = run_soak(kefu, token, plan, loads)
        if plan.instances > 1:
            try:
                extra["instances"] = measure_instances(settings, model, plan, scratch, loads)
            except (RuntimeError, OSError) as error:  # the stack did not start: say so
                extra["instances_error"] = f"{type(error).__name__}: {error}"
    if deploy := read_deploy(settings):
        extra["deploy"] = deploy
    results = assemble(kefu_sum, bare_sum, loads, extra)
    report = ChatReport("chat", results, settings.var_dir / "bench" / "chat.json")
    report.lines = comparison_rows(kefu_sum, bare_sum, results["ratios"]) + extra_rows(results)
    if "train_seconds" in extra:
        report.lines.append(Row("cold training (s)", f"{extra['train_seconds']:.0f}"))
    report.write()
    return report
