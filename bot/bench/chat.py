"""Reply latency and throughput of the bot over Rasa's REST channel."""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from bot.bench.common import BenchReport, percentile, scratch_settings
from bot.core.db import make_engine, upgrade
from bot.core.processes import ServiceGroup, kefu_services
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


async def _send(client: httpx.AsyncClient, url: str, sender: str, text: str) -> float:
    """Posts one message and returns the seconds until the full reply arrived."""
    started = time.perf_counter()
    response = await client.post(url, json={"sender": sender, "message": text})
    response.raise_for_status()
    if not response.json():
        raise RuntimeError(f"No reply to {text!r}")
    return time.perf_counter() - started


async def _sequential(url: str, count: int, run: str) -> list[float]:
    async with httpx.AsyncClient(timeout=30) as client:
        await _send(client, url, f"bench-{run}-warmup", "你好")
        return [
            await _send(client, url, f"bench-{run}-seq-{i // 10}", MESSAGES[i % len(MESSAGES)])
            for i in range(count)
        ]


async def _concurrent(
    url: str, conversations: int, each: int, run: str
) -> tuple[float, list[float]]:
    async with httpx.AsyncClient(timeout=60) as client:

        async def conversation(index: int) -> list[float]:
            return [
                await _send(
                    client, url, f"bench-{run}-conc-{index}", MESSAGES[(index + i) % len(MESSAGES)]
                )
                for i in range(each)
            ]

        started = time.perf_counter()
        latencies = await asyncio.gather(*(conversation(i) for i in range(conversations)))
        return time.perf_counter() - started, [x for per in latencies for x in per]


def run_chat_benchmark(
    settings: Settings,
    messages: int,
    conversations: int,
    each: int,
    url: str = "",
    time_training: bool = True,
) -> BenchReport:
    """Measures on `url`, or on a fresh stack (trained model reused) on free ports.

    With `time_training`, a fresh stack also times a cold training (empty Rasa cache).
    """
    results: dict[str, float] = {}
    if url:
        results.update(_measure(url.rstrip("/"), messages, conversations, each))
    else:
        with tempfile.TemporaryDirectory(prefix="kefu-bench-") as scratch:
            if time_training:
                started = time.perf_counter()
                ensure_model(
                    settings.model_copy(update={"var_dir": Path(scratch)}),
                    cache_dir=Path(scratch) / "rasa-cache",  # empty: a cold training
                )
                results["train_seconds"] = round(time.perf_counter() - started, 1)
            model, _ = ensure_model(settings)
            run = scratch_settings(settings, Path(scratch))
            upgrade(run.database_url)
            seed_demo_orders(make_engine(run.database_url))
            ensure_index(run)  # knowledge-base questions are searched, as in service
            with ServiceGroup(kefu_services(run, model), run):
                results.update(_measure(run.rasa_url, messages, conversations, each))
    report = BenchReport("chat", results, settings.var_dir / "bench" / "chat.json")
    report.rows = [
        ("sequential p50 (ms)", f"{results['sequential_p50_ms']:.1f}", ""),
        ("sequential p95 (ms)", f"{results['sequential_p95_ms']:.1f}", "<= 150"),
        (
            f"{conversations} concurrent: messages/s",
            f"{results['concurrent_messages_per_s']:.1f}",
            ">= 30",
        ),
        (f"{conversations} concurrent: p95 (ms)", f"{results['concurrent_p95_ms']:.1f}", ""),
    ]
    if "train_seconds" in results:
        report.rows.append(("training time (s)", f"{results['train_seconds']:.0f}", ""))
    report.write()
    return report


def _measure(rasa_url: str, messages: int, conversations: int, each: int) -> dict[str, float]:
    url = f"{rasa_url}/webhooks/rest/webhook"
    run = uuid.uuid4().hex[:8]  # fresh conversations: every one is 10 messages long
    sequential = asyncio.run(_sequential(url, messages, run))
    wall, concurrent = asyncio.run(_concurrent(url, conversations, each, run))
    return {
        "sequential_messages": messages,
        "sequential_p50_ms": round(percentile(sequential, 50) * 1000, 1),
        "sequential_p95_ms": round(percentile(sequential, 95) * 1000, 1),
        "concurrent_conversations": conversations,
        "concurrent_messages": conversations * each,
        "concurrent_messages_per_s": round(conversations * each / wall, 1),
        "concurrent_p50_ms": round(percentile(concurrent, 50) * 1000, 1),
        "concurrent_p95_ms": round(percentile(concurrent, 95) * 1000, 1),
    }
