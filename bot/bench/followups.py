"""The follow-up scheduler under load, and a simulated week of the SLA clock.

1. **Due scan**: 100,000 open tickets whose SLA check and progress notice moments are spread
   over 100 days (about 1 % due at the measured moment). Times the planner's indexed scans
   (what is due now; median of several runs) and a full planning pass that acts on the due 1 %
   (alerts, notices, history, compare-and-set updates). SQLite always; PostgreSQL too when a
   URL is given (`--postgres-url` or `KEFU_BENCH_POSTGRES_URL`).
2. **Delivery**: the progress notices that pass planned, delivered to a local recording
   server speaking Rasa's `POST /conversations/<id>/tracker/events` (notices per second).
3. **SLA simulation** (a simulation, not a measurement of real service): a week of tickets at
   a given arrival rate through the real policy's response windows and business hours, with
   N agents answering in due order while the team works and resolving within a day or two;
   the overdue rates per tier come from `bot.service.sla_report.overdue_rates`.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, text

from bot.bench.common import BenchReport
from bot.core.db import (
    ComplaintGrade,
    ServiceRecord,
    Ticket,
    TicketStatus,
    UrgencyTier,
    make_engine,
    upgrade,
)
from bot.core.settings import Settings
from bot.followups.delivery import Deliverer
from bot.followups.planner import Planner
from bot.handoff.rasa_api import RasaClient
from bot.service.classification import Classification
from bot.service.policy import ServicePolicy, load_policy
from bot.service.sla import due_at, resolution_due_at
from bot.service.sla_report import overdue_rates

OPEN_TICKETS = 100_000
SPREAD_DAYS = 100
SCAN_TARGET_SECONDS = 1.0
MOMENT = datetime(2026, 12, 10, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
_STATUSES = (TicketStatus.open, TicketStatus.in_progress, TicketStatus.waiting_customer)
_TIERS = ((UrgencyTier.urgent, 0.1), (UrgencyTier.normal, 0.7), (UrgencyTier.consultation, 0.2))


# ---------------------------------------------------------------------- data
def seed_open_tickets(engine: Engine, count: int, moment: datetime, seed: int = 0) -> None:
    """`count` open tickets whose due moments spread over `SPREAD_DAYS` from a day before."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    start = moment - timedelta(days=1)
    span = timedelta(days=SPREAD_DAYS).total_seconds()
    chunk = 5_000
    with engine.begin() as connection:
        for first in range(0, count, chunk):
            ids = range(first + 1, min(count, first + chunk) + 1)
            records, tickets = [], []
            for n in ids:
                created = start - timedelta(hours=rng.uniform(0, 72))
                tier = rng.choices([t for t, _ in _TIERS], [w for _, w in _TIERS])[0]
                records.append(
                    {
                        "id": n,
                        "customer_id": f"web:b{n}",
                        "channel": "web",
                        "language": "zh",
                        "category": "problem",
                        "impacts": [],
                        "need_points": [],
                        "preferences": {},
                        "special_requests": [],
                        "skipped": [],
                        "urgency": tier,
                        "classification_reasons": [],
                        "correction_rounds": 0,
                        "completeness": 1.0,
                        "created_at": created,
                    }
                )
                check = start + timedelta(seconds=rng.uniform(0, span))
                progress = start + timedelta(seconds=rng.uniform(0, span))
                tickets.append(
                    {
                        "id": n,
                        "number": f"TK{n:012d}",
                        "record_id": n,
                        "customer_id": f"web:b{n}",
                        "channel": "web",
                        "language": "zh",
                        "status": rng.choice(_STATUSES),
                        "urgency": tier,
                        "due_at": check + timedelta(hours=6),
                        "response_due_at": check + timedelta(hours=6),
                        "created_at": created,
                        "updated_at": created,
                        "summary": f"bench ticket {n}",
                        "sla_state": "ok",
                        "sla_check_at": check,
                        "next_progress_at": progress,
                        "reopen_count": 0,
                    }
                )
            connection.execute(insert(ServiceRecord), records)
            connection.execute(insert(Ticket), tickets)


def _timed(function: Any, *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    value = function(*args)
    return time.perf_counter() - started, value


# ---------------------------------------------------------------------- recording Rasa
class _Recorder:
    """A loopback HTTP server that accepts Rasa event appends and counts them."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                """Quiet."""

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with recorder.lock:
                    recorder.count += 1
                body = b"{}"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Recorder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------- one database
def bench_database(
    url: str, settings: Settings, policy: ServicePolicy, tickets: int, scans: int = 5
) -> dict[str, Any]:
    """Seeds `tickets` open tickets at `url`, times the scans, one pass and the delivery."""
    upgrade(url)
    engine = make_engine(url)
    try:
        seeded, _ = _timed(seed_open_tickets, engine, tickets, MOMENT)
        if engine.dialect.name == "postgresql":
            with engine.begin() as connection:
                connection.execute(text("ANALYZE"))
        planner = Planner(engine, policy)
        scan_times: list[float] = []
        due: dict[str, int] = {}
        for _ in range(scans):
            seconds, due = _timed(planner.due, MOMENT)
            scan_times.append(seconds)
        pass_seconds, planned = _timed(planner.plan, MOMENT)
        idle_seconds, idle = _timed(planner.plan, MOMENT)
        with _Recorder() as recorder:
            run = settings.model_copy(update={"rasa_port": recorder.port, "database_url": url})
            deliver_seconds, deliveries = _timed(_deliver, run, engine, policy)
        sent = sum(1 for d in deliveries if d["status"] == "sent")
        return {
            "open_tickets": tickets,
            "seed_seconds": round(seeded, 1),
            "due_at_moment": due,
            "scan_seconds_median": round(statistics.median(scan_times), 4),
            "scan_seconds_max": round(max(scan_times), 4),
            "pass_seconds": round(pass_seconds, 3),
            "pass_changes": planned.as_dict(),
            "idle_pass_seconds": round(idle_seconds, 4),
            "idle_pass_changes": idle.total,
            "delivered": sent,
            "delivery_seconds": round(deliver_seconds, 2),
            "delivery_per_second": round(sent / deliver_seconds, 1) if deliver_seconds else None,
            "rasa_appends": recorder.count,
        }
    finally:
        engine.dispose()


def _deliver(settings: Settings, engine: Engine, policy: ServicePolicy) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        deliverer = Deliverer(
            settings, engine, policy, RasaClient.from_settings(settings), worker_id="bench"
        )
        try:
            return [d.as_dict() for d in await deliverer.deliver_due(MOMENT)]
        finally:
            await deliverer.close()

    return asyncio.run(run())


# ---------------------------------------------------------------------- SLA simulation
def simulate_week(
    policy: ServicePolicy, per_hour: float, agents: int, seed: int = 0
) -> dict[str, Any]:
    """A simulated week: arrivals, agents answering in due order in business hours.

    Each first response takes 10 minutes of an agent's time; the case is then resolved
    after a random 2 to 60 hours. The result is `overdue_rates` over the stored week.
    """
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    start = datetime(2026, 12, 7, 0, 0, tzinfo=policy.zone).astimezone(timezone.utc)
    end = start + timedelta(days=7)
    arrivals: list[tuple[datetime, UrgencyTier]] = []
    moment = start
    while True:
        moment += timedelta(hours=rng.expovariate(per_hour))
        if moment >= end:
            break
        tier = rng.choices([t for t, _ in _TIERS], [w for _, w in _TIERS])[0]
        arrivals.append((moment, tier))
    rows: list[dict[str, Any]] = []
    for n, (created, tier) in enumerate(arrivals, 1):
        grade = ComplaintGrade.general if rng.random() < 0.1 else None
        kind = Classification(tier, grade, frozenset(), ())
        response_due = due_at(policy, kind, created)
        rows.append(
            {
                "n": n,
                "created": created,
                "tier": tier,
                "grade": grade,
                "response_due": response_due,
                "resolution_due": resolution_due_at(policy, tier, grade, created, response_due),
            }
        )
    free = [start] * agents
    hours = policy.business_hours
    waiting: list[dict[str, Any]] = []
    pending = sorted(rows, key=lambda r: r["created"])
    clock = start
    step = timedelta(minutes=10)
    while clock < end + timedelta(days=3) and (pending or waiting):
        while pending and pending[0]["created"] <= clock:
            waiting.append(pending.pop(0))
        local = clock.astimezone(policy.zone)
        open_now = hours is None or (
            hours.is_open_on(local.date()) and hours.start <= local.time() < hours.end
        )
        if open_now:
            waiting.sort(key=lambda r: r["response_due"])
            for agent in range(agents):
                if waiting and free[agent] <= clock:
                    row = waiting.pop(0)
                    row["responded"] = clock
                    row["resolved"] = clock + timedelta(hours=rng.uniform(2, 60))
                    free[agent] = clock + step
        clock += step
    path = Path(tempfile.mkdtemp(prefix="kefu-sla-sim-")) / "sim.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    try:
        _store_simulation(engine, rows)
        report = overdue_rates(engine, start, end, end + timedelta(days=3))
    finally:
        engine.dispose()
    return {
        "label": "simulation",
        "tickets_per_hour": per_hour,
        "agents": agents,
        "tickets": len(rows),
        "rates": report,
    }


def _store_simulation(engine: Engine, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as connection:
        records = []
        tickets = []
        for row in rows:
            n, created = row["n"], row["created"]
            responded, resolved = row.get("responded"), row.get("resolved")
            records.append(
                {
                    "id": n,
                    "customer_id": f"web:s{n}",
                    "channel": "web",
                    "language": "zh",
                    "category": "problem",
                    "impacts": [],
                    "need_points": [],
                    "preferences": {},
                    "special_requests": [],
                    "skipped": [],
                    "urgency": row["tier"],
                    "complaint_grade": row["grade"],
                    "classification_reasons": [],
                    "correction_rounds": 0,
                    "completeness": 1.0,
                    "created_at": created,
                }
            )
            tickets.append(
                {
                    "id": n,
                    "number": f"TS{n:012d}",
                    "record_id": n,
                    "customer_id": f"web:s{n}",
                    "channel": "web",
                    "language": "zh",
                    "status": TicketStatus.resolved if resolved else TicketStatus.open,
                    "urgency": row["tier"],
                    "complaint_grade": row["grade"],
                    "due_at": row["resolution_due"] if responded else row["response_due"],
                    "response_due_at": row["response_due"],
                    "resolution_due_at": row["resolution_due"],
                    "first_responded_at": responded,
                    "created_at": created,
                    "updated_at": created,
                    "resolved_at": resolved,
                    "summary": "simulated",
                    "sla_state": "ok",
                    "reopen_count": 0,
                }
            )
        if records:
            connection.execute(insert(ServiceRecord), records)
            connection.execute(insert(Ticket), tickets)


# ---------------------------------------------------------------------- the benchmark
def run_followups_benchmark(
    settings: Settings,
    tickets: int = OPEN_TICKETS,
    postgres_url: str = "",
    per_hour: float = 6.0,
    agents: int = 2,
) -> BenchReport:
    """Runs every part, writes var/bench/followups.json, returns the report."""
    policy = load_policy()
    results: dict[str, Any] = {"moment": MOMENT.isoformat(), "databases": {}}
    with tempfile.TemporaryDirectory(prefix="kefu-bench-followups-") as scratch:
        sqlite_url = f"sqlite:///{scratch}/kefu.db"
        results["databases"]["sqlite"] = bench_database(sqlite_url, settings, policy, tickets)
    if postgres_url:
        results["databases"]["postgresql"] = bench_database(postgres_url, settings, policy, tickets)
    results["sla_simulation"] = simulate_week(policy, per_hour, agents)
    report = BenchReport("followups", results, settings.var_dir / "bench" / "followups.json")
    for name, block in results["databases"].items():
        target = f"<= {SCAN_TARGET_SECONDS:g} s"
        report.rows += [
            (
                f"{name}: due scan, {block['open_tickets']:,} open",
                _s(block, "scan_seconds_median"),
                target,
            ),
            (
                f"{name}: full pass, {_changes(block)} changes",
                _s(block, "pass_seconds"),
                "acts on ~1 % due",
            ),
            (f"{name}: idle pass", _s(block, "idle_pass_seconds"), ""),
            (f"{name}: delivery", f"{block['delivery_per_second']}/s", "notices to Rasa"),
        ]
    simulation = results["sla_simulation"]
    for tier, bucket in simulation["rates"]["tiers"].items():
        rate = bucket["response_overdue_rate"]
        report.rows.append(
            (
                f"simulation: {tier} response overdue",
                "-" if rate is None else f"{rate:.1%}",
                f"{simulation['tickets_per_hour']:g}/h, {simulation['agents']} agents",
            )
        )
    report.write()
    return report


def _s(block: dict[str, Any], key: str) -> str:
    return f"{block[key]:.3f} s"


def _changes(block: dict[str, Any]) -> int:
    return int(sum(block["pass_changes"].values()))
