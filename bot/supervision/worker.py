"""The supervision worker: record, close, score, build the reports; once or every few seconds.

One pass (`run_once`) at a given moment: drains the event broker into conversations
(`ConversationRecorder`), ends the conversations gone quiet, scores every ended one
(`Inspector.score_due`, in rounds until none is left), then builds what is due after the
policy's `supervision.daily_report_at` (policy time zone): yesterday's daily report (and its
email to the supervisors), the weekly review list of the week before, the monthly audit of
the month before. A report is built once: its `report_runs` row (which the builders of
`bot.supervision.report`, `.review_list` and `.audit` write) says so; a daily report whose
email failed or was not sent is emailed on a later pass while SMTP is configured. A pass that
missed a Monday or a 1st (the service was down) catches up on the next pass after report time.

`serve` runs a pass every `supervision_interval_seconds` with APScheduler 3's
`BlockingScheduler` (`coalesce`, `max_instances=1`), like the follow-up worker: the durable
state is in the database (the broker position, `scored_at`, `report_runs`), so a restarted
or second worker repeats nothing.
"""

from __future__ import annotations

import logging
import signal
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from bot.core.db import ReportRun, make_engine, session_factory
from bot.core.settings import Settings
from bot.handoff.broker import ClosableEventSource, event_source
from bot.service.policy import ServicePolicy, load_policy
from bot.supervision.recording import ConversationRecorder
from bot.supervision.rules import QaRules, QaRulesError, default_rules_path, load_qa_rules
from bot.supervision.scoring import Inspector, ScoreReport

logger = logging.getLogger(__name__)

SCORE_LIMIT = 500
MAX_SCORE_ROUNDS = 40
"""At most this many rounds of `SCORE_LIMIT` conversations per pass; the next pass goes on."""


def run_once(
    settings: Settings,
    engine: Engine,
    now: datetime,
    *,
    policy: ServicePolicy | None = None,
    rules: QaRules | None = None,
    recorder: ConversationRecorder | None = None,
) -> dict[str, Any]:
    """One pass at `now` (aware); returns `{"at", "recorded", "closed", "scored", "reports"}`.

    `recorded`: broker events read; `closed`: conversations ended; `scored`: the
    `ScoreReport` totals; `reports`: one dict per report built or emailed (kind, period,
    path, emailed recipients, or error). Without `recorder` the broker of `settings` is read.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"{now.isoformat()} has no time zone; pass an aware datetime")
    policy = policy if policy is not None else load_policy()
    rules = rules if rules is not None else load_qa_rules()
    source: ClosableEventSource | None = None
    if recorder is None:
        source = event_source(settings)
        recorder = ConversationRecorder(engine, source, policy)
    try:
        recorded = recorder.drain()
    finally:
        if source is not None:
            source.close()
    closed = recorder.close_idle(now)
    inspector = Inspector(engine, rules, policy, desk_url=settings.web_url)
    scored = ScoreReport()
    for _ in range(MAX_SCORE_ROUNDS):
        report = inspector.score_due(now, SCORE_LIMIT)
        scored += report
        if report.scored < SCORE_LIMIT:
            break
    return {
        "at": now.astimezone(UTC).isoformat(),
        "recorded": recorded,
        "closed": len(closed),
        "scored": scored.as_dict(),
        "reports": scheduled_reports(settings, engine, policy, now),
    }


@dataclass(frozen=True)
class DueReport:
    """A report the schedule asks for: its kind, first day and period label."""

    kind: str
    start: date
    period: str

    @property
    def key(self) -> str:
        """The `report_runs` key: `daily:2026-12-09`, `weekly:2026-12-07`, `monthly:2026-11`."""
        return f"{self.kind}:{self.period}"


def due_reports(policy: ServicePolicy, now: datetime) -> list[DueReport]:
    """Yesterday's daily report, last week's list, last month's audit, once report time passed."""
    local = now.astimezone(policy.zone)
    if local.time() < policy.supervision.daily_report_at:
        return []
    today = local.date()
    yesterday = today - timedelta(days=1)
    week = today - timedelta(days=today.weekday() + 7)
    month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    return [
        DueReport("daily", yesterday, yesterday.isoformat()),
        DueReport("weekly", week, week.isoformat()),
        DueReport("monthly", month, month.strftime("%Y-%m")),
    ]


def scheduled_reports(
    settings: Settings, engine: Engine, policy: ServicePolicy, now: datetime
) -> list[dict[str, Any]]:
    """Builds (and emails) the reports that are due and not built yet; one dict per action.

    A failing report is logged and listed with its error; the others still run.
    """
    done: list[dict[str, Any]] = []
    for due in due_reports(policy, now):
        run = _report_run(engine, due.key)
        email = due.kind == "daily" and bool(settings.smtp_host)
        if run is not None and not (email and run.emailed_at is None):
            continue
        try:
            produced = _produce(settings, engine, policy, now, due, run)
        except Exception as error:  # one broken report must not stop the others or the pass
            logger.exception("Building the %s report %s failed", due.kind, due.period)
            done.append({"kind": due.kind, "period": due.period, "error": str(error)})
        else:
            if produced is not None:
                done.append(produced)
    return done


def report_dir(settings: Settings, due: DueReport) -> Path:
    """Where a report is written: `reports_dir/<kind>/<period>/`."""
    root = settings.reports_dir or settings.var_dir / "reports"
    return Path(root) / due.kind / due.period


def _produce(
    settings: Settings,
    engine: Engine,
    policy: ServicePolicy,
    now: datetime,
    due: DueReport,
    run: ReportRun | None,
) -> dict[str, Any] | None:
    """Builds the report (unless `run` says it is built) and emails a daily one; None: nothing."""
    out = report_dir(settings, due)
    emailed: list[str] = []
    if due.kind == "daily":
        from bot.supervision.report import build_daily, email_daily

        if run is None:
            path = build_daily(settings, engine, policy, due.start, out, now=now)
        else:
            path = _report_file(Path(run.path))
        if settings.smtp_host:
            emailed = email_daily(settings, engine, policy, due.start, path, now=now)
        if run is not None and not emailed:
            return None  # no one to email yet: nothing happened
    elif due.kind == "weekly":
        from bot.supervision.review_list import build_weekly

        path = build_weekly(settings, engine, policy, due.start, out, now)
    else:
        from bot.supervision.audit import build_monthly

        path = build_monthly(settings, engine, policy, due.start, out, now)
    return {"kind": due.kind, "period": due.period, "path": str(path), "emailed": emailed}


def _report_file(path: Path) -> Path:
    return path / "report.html" if path.is_dir() else path


def _report_run(engine: Engine, key: str) -> ReportRun | None:
    with session_factory(engine)() as session:
        return session.scalars(select(ReportRun).where(ReportRun.key == key)).first()


class RulesFile:
    """The QA rules, read again when the file changes; a broken edit keeps the last good rules."""

    def __init__(self, path: Path | None = None) -> None:
        """Loads `path` (default: the shipped rules); raises `QaRulesError` if it is broken."""
        self.path = path or default_rules_path()
        self._stamp = self._mtime()
        self.rules = load_qa_rules(self.path)

    def _mtime(self) -> float:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return 0.0

    def current(self) -> QaRules:
        """The rules; reloaded when the file's modification time changed."""
        stamp = self._mtime()
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self.rules = load_qa_rules(self.path)
                logger.info("QA rules reloaded: %d rules", len(self.rules.rules))
            except QaRulesError as error:
                logger.error("QA rules not reloaded, the last good ones stay: %s", error)
        return self.rules


def serve(settings: Settings) -> None:
    """Runs `run_once` every `supervision_interval_seconds` until interrupted (blocking)."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    policy = load_policy()
    rules = RulesFile()
    engine = make_engine(settings.database_url)
    source = event_source(settings)
    recorder = ConversationRecorder(engine, source, policy)

    def tick() -> None:
        try:
            report = run_once(
                settings,
                engine,
                datetime.now(UTC),
                policy=policy,
                rules=rules.current(),
                recorder=recorder,
            )
        except Exception:  # a failed pass must not stop the service; the next one retries
            logger.exception("Supervision pass failed")
            return
        if report["closed"] or report["scored"]["scored"] or report["reports"]:
            logger.info(
                "Supervision: %d events, %d conversations ended, scored %s, reports %s",
                report["recorded"],
                report["closed"],
                report["scored"],
                [f"{r['kind']}:{r['period']}" for r in report["reports"]],
            )

    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # no INFO line per run
    scheduler = BlockingScheduler(timezone=UTC)
    scheduler.add_job(
        tick,
        "interval",
        seconds=settings.supervision_interval_seconds,
        id="supervision",
        coalesce=True,
        max_instances=1,
        next_run_time=datetime.now(UTC),
    )
    logger.info("Supervision worker: every %gs", settings.supervision_interval_seconds)
    signal.signal(signal.SIGTERM, lambda *_: scheduler.shutdown(wait=False))
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        source.close()
        engine.dispose()
