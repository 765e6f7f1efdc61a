"""The follow-up worker: plan what is due, then deliver it; once, or every few seconds.

`run_once` is one pass at a given moment (`kefu followups run --at …`); `serve` runs it every
`followups_interval_seconds` with APScheduler 3's `BlockingScheduler` (memory job store,
`coalesce`, `max_instances=1`: a slow pass is never overlapped by the next, and missed runs
collapse into one).

The durable state is the outbox (`notices`) and the indexed due columns of the tickets, not
APScheduler's job store: APScheduler 3's SQLAlchemy job store must not be shared by several
schedulers (each would run every job), so two workers sharing it would plan and send twice.
Here each worker keeps its own in-memory schedule and any number of them may run: the
planner's compare-and-set updates, the unique notice keys and the delivery claims make a
second worker harmless, and a worker that dies (even with kill -9) leaves nothing behind
that the next pass does not pick up.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine

from bot.core.db import make_engine
from bot.core.settings import Settings
from bot.followups.delivery import Deliverer, Delivery, default_worker_id
from bot.followups.planner import Planner
from bot.service.policy import ServicePolicy, load_policy

logger = logging.getLogger(__name__)


async def run_once_async(
    settings: Settings,
    engine: Engine,
    now: datetime,
    worker_id: str | None = None,
    *,
    policy: ServicePolicy | None = None,
    deliverer: Deliverer | None = None,
) -> dict[str, Any]:
    """Plans at `now`, then delivers every notice due at `now`.

    Returns `{"at", "worker", "planned": {pass: count}, "sent": [delivery, …]}`; `sent` lists
    every notice handled, with its status (`sent`, `undeliverable`, `deferred`, `retry`).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"{now.isoformat()} has no time zone; pass an aware datetime")
    policy = policy if policy is not None else load_policy()
    worker = worker_id or default_worker_id()
    planned = await asyncio.to_thread(Planner(engine, policy).plan, now)
    own = deliverer is None
    deliverer = deliverer or Deliverer.from_settings(settings, engine, policy, worker_id=worker)
    try:
        deliveries: list[Delivery] = await deliverer.deliver_due(now)
    finally:
        if own:
            await deliverer.close()
    return {
        "at": now.astimezone(timezone.utc).isoformat(),
        "worker": worker,
        "planned": planned.as_dict(),
        "sent": [delivery.as_dict() for delivery in deliveries],
    }


def run_once(
    settings: Settings,
    engine: Engine,
    now: datetime,
    worker_id: str | None = None,
    *,
    policy: ServicePolicy | None = None,
) -> dict[str, Any]:
    """`run_once_async` on a fresh event loop (for the CLI and the scheduler's thread)."""
    return asyncio.run(run_once_async(settings, engine, now, worker_id, policy=policy))


def serve(settings: Settings, worker_id: str | None = None) -> None:
    """Runs `run_once` every `followups_interval_seconds` until interrupted (blocking)."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    policy = load_policy()
    engine = make_engine(settings.database_url)
    worker = worker_id or default_worker_id()

    def tick() -> None:
        try:
            report = run_once(settings, engine, datetime.now(timezone.utc), worker, policy=policy)
        except Exception:  # a failed pass must not stop the service; the next one retries
            logger.exception("Follow-up pass failed")
            return
        if report["sent"] or any(report["planned"].values()):
            logger.info(
                "Follow-ups: planned %s, handled %d notices",
                {k: v for k, v in report["planned"].items() if v},
                len(report["sent"]),
            )

    # APScheduler logs every run at INFO (two lines every few seconds); its warnings (a
    # missed or overlapping run) still show, and the passes that did something log above
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    scheduler = BlockingScheduler(timezone=timezone.utc)
    scheduler.add_job(
        tick,
        "interval",
        seconds=settings.followups_interval_seconds,
        id="followups",
        coalesce=True,
        max_instances=1,
        next_run_time=datetime.now(timezone.utc),
    )
    logger.info("Follow-up scheduler %s: every %gs", worker, settings.followups_interval_seconds)
    signal.signal(signal.SIGTERM, lambda *_: scheduler.shutdown(wait=False))
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        engine.dispose()
