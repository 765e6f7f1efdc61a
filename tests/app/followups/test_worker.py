"""The worker as the CLI runs it: `kefu followups run --at`, kill -9 mid-batch, two workers on
PostgreSQL. Every notice reaches its conversation exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from bot.core.db import AgentRole, NoticeStatus, TicketStatus, make_engine, upgrade
from bot.core.settings import PROJECT_ROOT, Settings
from bot.followups.delivery import Deliverer, Delivery
from bot.followups.worker import run_once, run_once_async
from bot.service.policy import ServicePolicy
from tests.app.followups.support import (
    DAY_10AM,
    TOKEN,
    FakeRasa,
    add_agent,
    add_notice,
    add_ticket,
    notice,
    notices,
)
from tests.app.postgres import postgres_server, postgres_url  # noqa: F401

UTC = timezone.utc


def worker_env(engine: Engine, tmp_path: Path, rasa: FakeRasa, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "KEFU_DATABASE_URL": str(engine.url),
        "KEFU_VAR_DIR": str(tmp_path / "var"),
        "KEFU_RASA_PORT": str(rasa.port),
        "KEFU_RASA_TOKEN": TOKEN,
        **extra,
    }


def kefu(*args: str) -> list[str]:
    return [sys.executable, "-m", "bot.cli.main", *args]


def test_run_at_prints_what_it_sent_as_json(engine: Engine, tmp_path: Path, rasa: FakeRasa) -> None:
    ticket = add_ticket(
        engine,
        DAY_10AM,
        status=TicketStatus.in_progress,
        next_progress_at=DAY_10AM + timedelta(days=3),
        due_at=DAY_10AM + timedelta(days=5),
    )
    env = worker_env(engine, tmp_path, rasa)
    before = subprocess.run(
        kefu("followups", "run", "--at", "2026-12-13T09:59"),
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT_ROOT,
    )
    assert json.loads(before.stdout)["sent"] == []
    done = subprocess.run(
        kefu("followups", "run", "--at", "2026-12-13T10:00", "--worker", "cli"),
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT_ROOT,
    )
    report = json.loads(done.stdout)
    assert report["at"] == "2026-12-13T02:00:00+00:00"  # naive: the policy's zone
    assert report["worker"] == "cli"
    assert report["planned"]["progress_notices"] == 1
    [sent] = report["sent"]
    assert sent["kind"] == "progress_notice" and sent["ticket"] == ticket.number
    assert (sent["via"], sent["status"], sent["conversation"]) == (
        "rasa",
        "sent",
        ticket.customer_id,
    )
    assert rasa.sent_notice_ids() == [sent["id"]]
    listed = subprocess.run(
        kefu("followups", "list", "--status", "sent"),
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT_ROOT,
    )
    assert ticket.number in listed.stdout and "1 notices shown" in listed.stdout


def test_run_at_refuses_a_bad_moment(engine: Engine, tmp_path: Path, rasa: FakeRasa) -> None:
    failed = subprocess.run(
        kefu("followups", "run", "--at", "next tuesday"),
        env=worker_env(engine, tmp_path, rasa),
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
    )
    assert failed.returncode == 2 and "not an ISO date-time" in failed.stderr


def test_kill_9_mid_batch_loses_and_repeats_nothing(
    engine: Engine, tmp_path: Path, rasa: FakeRasa
) -> None:
    tickets = [add_ticket(engine, DAY_10AM) for _ in range(10)]
    ids = [
        add_notice(engine, ticket, f"n:{round_}:{ticket.id}", DAY_10AM)
        for round_ in range(4)
        for ticket in tickets
    ]
    rasa.delay = 0.4  # Rasa has stored the message; the worker waits for the answer
    env = worker_env(
        engine,
        tmp_path,
        rasa,
        KEFU_FOLLOWUPS_BATCH_SIZE="8",
        KEFU_FOLLOWUPS_LEASE_SECONDS="1.5",
    )
    at = DAY_10AM.isoformat()
    worker = subprocess.Popen(
        kefu("followups", "run", "--at", at, "--worker", "doomed"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=PROJECT_ROOT,
    )
    try:
        deadline = time.monotonic() + 60
        while len(rasa.sent_notice_ids()) < 12:
            assert worker.poll() is None, "the worker ended before it could be killed"
            assert time.monotonic() < deadline, "the worker sent too little"
            time.sleep(0.005)
        worker.send_signal(signal.SIGKILL)  # mid-batch: messages are in flight
    finally:
        worker.kill()
        worker.wait()
    received_before = Counter(rasa.sent_notice_ids())
    in_flight = [n for n in received_before if notice(engine, n).status is NoticeStatus.sending]
    assert in_flight, "no message was in flight when the worker died"
    assert len(received_before) < len(ids)

    time.sleep(1.6)  # the dead worker's claims run out
    rasa.delay = 0.0
    subprocess.run(
        kefu("followups", "run", "--at", at, "--worker", "heir"),
        env=env,
        check=True,
        capture_output=True,
        cwd=PROJECT_ROOT,
    )
    received = Counter(rasa.sent_notice_ids())
    assert sorted(received) == ids and set(received.values()) == {1}
    assert {n.status for n in notices(engine)} == {NoticeStatus.sent}
    recovered = [n for n in in_flight if notice(engine, n).error]
    assert recovered == in_flight  # found in the tracker, not sent again
    assert rasa.tracker_reads >= len(in_flight)


def test_two_workers_on_postgresql_send_everything_once(
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
    rasa: FakeRasa,
    policy: ServicePolicy,
) -> None:
    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    boss = add_agent(engine, "boss", AgentRole.supervisor)
    tickets = [
        add_ticket(
            engine,
            DAY_10AM,
            supervisor_id=boss,
            status=TicketStatus.in_progress,
            due_at=DAY_10AM + timedelta(hours=10),
            sla_check_at=DAY_10AM + timedelta(hours=8),
            next_progress_at=DAY_10AM + timedelta(hours=8),
        )
        for _ in range(30)
    ]
    direct = [
        add_notice(engine, ticket, f"n:{round_}:{ticket.id}", DAY_10AM)
        for round_ in range(3)
        for ticket in tickets
    ]
    rasa.delay = 0.01
    at = DAY_10AM + timedelta(hours=9)
    settings = Settings(
        var_dir=tmp_path / "var",
        database_url=postgres_url,
        rasa_port=rasa.port,
        rasa_token=TOKEN,
        followups_batch_size=7,
    )
    reports: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def work(name: str) -> None:
        own = make_engine(postgres_url)
        try:
            reports.append(asyncio.run(run_once_async(settings, own, at, name, policy=policy)))
        except BaseException as error:
            errors.append(error)
        finally:
            own.dispose()

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(reports) == 2
    planned = [report["planned"] for report in reports]
    assert sum(p["progress_notices"] for p in planned) == 30
    assert sum(p["at_risk"] for p in planned) == 30
    handled = [d for report in reports for d in report["sent"]]
    assert Counter(d["id"] for d in handled).most_common(1)[0][1] == 1
    received = Counter(rasa.sent_notice_ids())
    assert set(received.values()) == {1}
    assert len(received) == len(direct) + 30  # the direct ones and the progress notices
    assert set(direct) <= set(received)
    stored = notices(engine)
    assert len(stored) == len(direct) + 30 + 30  # + the supervisor's at-risk emails
    assert {n.status for n in stored} == {NoticeStatus.sent}
    assert {n.via for n in stored if n.audience == "staff"} == {"desk"}

    # the same ids handed to two deliverers at the same moment (the web and the scheduler)
    contested = [add_notice(engine, ticket, f"c:{ticket.id}", at) for ticket in tickets]
    barrier = threading.Barrier(2)
    results: list[list[Delivery]] = []

    def deliver(name: str) -> None:
        own = make_engine(postgres_url)

        async def go() -> list[Delivery]:
            deliverer = Deliverer.from_settings(settings, own, policy, worker_id=name)
            try:
                barrier.wait()
                return await deliverer.deliver_ids(contested, at)
            finally:
                await deliverer.close()

        try:
            results.append(asyncio.run(go()))
        except BaseException as error:
            errors.append(error)
        finally:
            own.dispose()

    threads = [threading.Thread(target=deliver, args=(f"d{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(d.id for batch in results for d in batch) == contested
    received = Counter(rasa.sent_notice_ids())
    assert set(received.values()) == {1} and set(contested) <= set(received)
    engine.dispose()


def test_run_once_needs_an_aware_moment(engine: Engine, settings: Settings) -> None:
    with pytest.raises(ValueError, match="no time zone"):
        run_once(settings, engine, datetime(2026, 12, 10, 9, 0))
