"""Supervision at scale: a generated day scored and reported, a generated month queried.

1. **Day** (SQLite): 10,000 conversations generated into one day of a fresh database
   (`bot.supervision.daygen`, timed on its own), then timed: the QA inspector
   (`Inspector.score_due` until nothing is left) and the daily report (`build_daily`:
   figures, charts, HTML). Target: both together within 60 s on 2 cores.
2. **Month**: 100,000 conversations over 30 days, in SQLite and in PostgreSQL (a throwaway
   cluster when `initdb` and `pg_ctl` are installed, `make install-postgres`, or an empty
   database named by `--postgres-url`). The earlier days are marked scored without scoring
   them (the timed queries read the measured day's QA rows only: scoring 100,000 would take
   minutes and measure nothing new); the last day, "today" as of 23:00, is scored. Timed:
   `live_overview` (p50 and p95 of 20 calls after a first one; target 200 ms), the first
   page of `conversation_rows` for the last day and `day_metrics` of the last day.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, text, update

from bot.bench.common import BenchReport, free_port, percentile
from bot.core.db import GENERATED, Conversation, make_engine, upgrade
from bot.core.settings import Settings
from bot.service.policy import ServicePolicy, load_policy
from bot.supervision.daygen import generate_day, generate_month
from bot.supervision.metrics import (
    ConversationFilter,
    conversation_rows,
    day_metrics,
    live_overview,
)
from bot.supervision.report import build_daily
from bot.supervision.rules import load_qa_rules
from bot.supervision.scoring import Inspector, ScoreReport

DAY = date(2026, 12, 8)
LAST_DAY = date(2026, 12, 9)
DAY_TARGET_SECONDS = 60.0
LIVE_TARGET_MS = 200.0
LIVE_CALLS = 20
T = TypeVar("T")


def _timed(function: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[float, T]:
    started = time.perf_counter()
    value = function(*args, **kwargs)
    return time.perf_counter() - started, value


def _local(policy: ServicePolicy, day: date, hour: int) -> datetime:
    return datetime.combine(day, clock_time(hour), tzinfo=policy.zone).astimezone(UTC)


def score_everything(engine: Engine, policy: ServicePolicy, now: datetime) -> ScoreReport:
    """`Inspector.score_due` until no ended conversation is left unscored."""
    inspector = Inspector(engine, load_qa_rules(), policy)
    total = ScoreReport()
    while (report := inspector.score_due(now, limit=5000)).scored:
        total += report
    return total


# ---------------------------------------------------------------------- 1. one day
def bench_day(settings: Settings, policy: ServicePolicy, conversations: int) -> dict[str, Any]:
    """A day of `conversations` in a fresh SQLite database: generate, score, report."""
    now = _local(policy, DAY + timedelta(days=1), 16)
    with tempfile.TemporaryDirectory(prefix="kefu-bench-supervision-") as scratch:
        url = f"sqlite:///{scratch}/kefu.db"
        upgrade(url)
        engine = make_engine(url)
        try:
            generated, stats = _timed(generate_day, engine, policy, DAY, conversations, now=now)
            scored, report = _timed(score_everything, engine, policy, now)
            run = settings.model_copy(update={"database_url": url, "reports_dir": Path(scratch)})
            out = Path(scratch) / "daily"
            built, _ = _timed(build_daily, run, engine, policy, DAY, out, now=now)
        finally:
            engine.dispose()
    return {
        "date": DAY.isoformat(),
        "conversations": stats["conversations"],
        "messages": stats["messages"],
        "outcomes": stats["outcomes"],
        "generate_seconds": round(generated, 2),
        "score_seconds": round(scored, 2),
        "scored": report.as_dict(),
        "report_seconds": round(built, 2),
        "score_and_report_seconds": round(scored + built, 2),
    }


# ---------------------------------------------------------------------- 2. one month
def bench_month(url: str, policy: ServicePolicy, conversations: int, days: int) -> dict[str, Any]:
    """A month at `url` (an empty database): generate, score the last day, time the queries."""
    upgrade(url)
    engine = make_engine(url)
    now = _local(policy, LAST_DAY, 23)  # "today" is nearly over: its queries read a full day
    per_day = max(1, round(conversations / days))
    try:
        earlier, month = _timed(
            generate_month, engine, policy, LAST_DAY - timedelta(days=1), days - 1, per_day,
            now=now,
        )  # fmt: skip
        with engine.begin() as connection:
            connection.execute(
                update(Conversation)
                .where(Conversation.source == GENERATED, Conversation.scored_at.is_(None))
                .values(scored_at=now)
            )
        last, stats = _timed(generate_day, engine, policy, LAST_DAY, per_day, now=now)
        scored, report = _timed(score_everything, engine, policy, now)
        if engine.dialect.name == "postgresql":
            with engine.begin() as connection:
                connection.execute(text("ANALYZE"))
        live = [_timed(live_overview, engine, policy, now)[0] for _ in range(LIVE_CALLS + 1)][1:]
        flt = ConversationFilter(start=LAST_DAY, end=LAST_DAY)
        rows_seconds, (total, _) = _timed(conversation_rows, engine, policy, flt, 100, 0, now=now)
        metrics_seconds, _ = _timed(day_metrics, engine, policy, LAST_DAY, now=now)
        return {
            "conversations": int(month["conversations"]) + stats["conversations"],
            "messages": int(month["messages"]) + stats["messages"],
            "generate_seconds": round(earlier + last, 1),
            "last_day_conversations": stats["conversations"],
            "last_day_score_seconds": round(scored, 2),
            "last_day_scored": report.as_dict(),
            "live_overview_ms_p50": round(statistics.median(live) * 1000, 1),
            "live_overview_ms_p95": round(percentile(live, 95) * 1000, 1),
            "live_overview_calls": LIVE_CALLS,
            "conversation_rows_first_page_ms": round(rows_seconds * 1000, 1),
            "conversation_rows_total": total,
            "day_metrics_ms": round(metrics_seconds * 1000, 1),
        }
    finally:
        engine.dispose()


# ---------------------------------------------------------------------- PostgreSQL
def _binary(name: str) -> str | None:
    found = shutil.which(name) or shutil.which(name, path="/usr/local/bin")
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str | None]:
    """A temporary PostgreSQL cluster's URL, or None when the binaries are missing.

    As root, the server runs as `postgres` (or `nobody`) through `runuser`, since PostgreSQL
    refuses to run as root (like tests/app/postgres.py).
    """
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        yield None
        return
    root = Path(tempfile.mkdtemp(prefix="kefu-bench-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        user = next((_user(name) for name in ("postgres", "nobody") if _user(name)), None)
        runuser = shutil.which("runuser")
        if user is None or runuser is None:
            shutil.rmtree(root, ignore_errors=True)
            yield None
            return
        os.chown(root, user.pw_uid, user.pw_gid)
        prefix = [runuser, "-u", user.pw_name, "--"]
    data, log, port = root / "data", root / "postgres.log", free_port()

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], cwd=root, check=True, capture_output=True, timeout=120)

    try:
        run(initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale")
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"],
                       cwd=root, capture_output=True, timeout=120, check=False)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


def _user(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


# ---------------------------------------------------------------------- the benchmark
def run_supervision_benchmark(
    settings: Settings,
    day_conversations: int = 10_000,
    month_conversations: int = 100_000,
    days: int = 30,
    postgres_url: str = "",
    postgres: bool = True,
) -> BenchReport:
    """Runs both parts, writes var/bench/supervision.json, returns the report."""
    policy = load_policy()
    results: dict[str, Any] = {"day": bench_day(settings, policy, day_conversations), "month": {}}
    with tempfile.TemporaryDirectory(prefix="kefu-bench-month-") as scratch:
        results["month"]["sqlite"] = bench_month(
            f"sqlite:///{scratch}/kefu.db", policy, month_conversations, days
        )
    if postgres_url:
        results["month"]["postgresql"] = bench_month(
            postgres_url, policy, month_conversations, days
        )
    elif postgres:
        with throwaway_postgres() as url:
            if url is None:
                results["month"]["postgresql"] = {"skipped": "initdb/pg_ctl not found"}
            else:
                results["month"]["postgresql"] = bench_month(url, policy, month_conversations, days)
    report = BenchReport("supervision", results, settings.var_dir / "bench" / "supervision.json")
    day = results["day"]
    report.rows += [
        (f"day: generate {day['conversations']:,} conversations",
         f"{day['generate_seconds']} s", ""),
        ("day: QA scoring", f"{day['score_seconds']} s", ""),
        ("day: daily report", f"{day['report_seconds']} s", ""),
        ("day: scoring + report", f"{day['score_and_report_seconds']} s",
         f"<= {DAY_TARGET_SECONDS:g} s"),
    ]  # fmt: skip
    for name, block in results["month"].items():
        if "skipped" in block:
            report.rows.append((f"{name}: month", "skipped", block["skipped"]))
            continue
        report.rows += [
            (f"{name}: generate {block['conversations']:,} conversations",
             f"{block['generate_seconds']} s", f"{days} days"),
            (f"{name}: live_overview p50", f"{block['live_overview_ms_p50']} ms",
             f"<= {LIVE_TARGET_MS:g} ms"),
            (f"{name}: live_overview p95", f"{block['live_overview_ms_p95']} ms",
             f"<= {LIVE_TARGET_MS:g} ms"),
            (f"{name}: conversation_rows page 1", f"{block['conversation_rows_first_page_ms']} ms",
             f"{block['conversation_rows_total']:,} that day"),
            (f"{name}: day_metrics", f"{block['day_metrics_ms']} ms", "one day"),
        ]  # fmt: skip
    report.write()
    return report
