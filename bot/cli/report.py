"""`kefu report`: the daily report, the weekly review list and the monthly audit.

Each builds into `KEFU_REPORTS_DIR/<kind>/<period>/` unless `--out` says otherwise and prints
where it went. Dates are calendar days in the service policy's time zone; the defaults are
the last complete period (yesterday, last week, last month).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from bot.core.settings import Settings, get_settings
from bot.service.policy import ServicePolicy, load_policy

OUT = click.Path(file_okay=False, dir_okay=True, writable=True, path_type=Path)


@click.group("report")
def report() -> None:
    """Supervisors' reports: daily (HTML + metrics.json), weekly review list, monthly audit."""


def _today(policy: ServicePolicy) -> date:
    return datetime.now(UTC).astimezone(policy.zone).date()


def _parse_day(text: str, option: str, today: date) -> date:
    """A YYYY-MM-DD day that has begun (a click usage error otherwise)."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a date like 2026-12-06", param_hint=option
        ) from None
    if day > today:
        raise click.BadParameter(f"{day} has not happened yet", param_hint=option)
    return day


def _folder(settings: Settings, out: Path | None, kind: str, period: str) -> Path:
    if out is not None:
        return out
    assert settings.reports_dir is not None  # Settings fills it in
    return settings.reports_dir / kind / period


def _engine(settings: Settings) -> Any:
    from bot.core.db import make_engine

    return make_engine(settings.database_url)


@report.command("daily")
@click.option("--date", "day", default=None, help="The day, YYYY-MM-DD. Default: yesterday.")
@click.option("--out", type=OUT, default=None, help="Folder. Default: REPORTS_DIR/daily/<date>.")
@click.option("--email", is_flag=True, help="Email it to supervisors and admins (needs SMTP).")
def daily_command(day: str | None, out: Path | None, email: bool) -> None:
    """Build a day's report: report.html, metrics.json and charts/; print the headline."""
    from bot.supervision.report import build_daily, email_daily, pct

    settings, policy = get_settings(), load_policy()
    today = _today(policy)
    chosen = _parse_day(day, "--date", today) if day else today - timedelta(days=1)
    folder = _folder(settings, out, "daily", chosen.isoformat())
    engine = _engine(settings)
    try:
        path = build_daily(settings, engine, policy, chosen, folder)
        metrics = json.loads((folder / "metrics.json").read_text("utf-8"))
        click.echo(f"report   {path}")
        click.echo(f"metrics  {folder / 'metrics.json'}")
        click.echo(f"charts   {folder / 'charts'}")
        click.echo(
            f"{chosen}: {metrics['conversations']} conversations, "
            f"self-service {pct(metrics['self_service_rate'])}, "
            f"handoff {pct(metrics['handoff_rate'])}, SLA hit {pct(metrics['sla_hit_rate'])}, "
            f"CSAT {metrics['csat_average'] if metrics['csat_average'] is not None else '—'}, "
            f"QA pass {pct(metrics['qa_pass_rate'])}, red cards {metrics['red_card_count']}"
        )
        if email:
            sent = email_daily(settings, engine, policy, chosen, path)
            if sent:
                click.echo(f"emailed to {', '.join(sent)}")
            elif not settings.smtp_host:
                click.echo("not emailed: KEFU_SMTP_HOST is not set")
            else:
                click.echo("not emailed: no active supervisor or admin has an email address")
    finally:
        engine.dispose()


@report.command("weekly")
@click.option("--week", default=None, help="Any day of the week, YYYY-MM-DD. Default: last week.")
@click.option("--out", type=OUT, default=None, help="Folder. Default: REPORTS_DIR/weekly/<Monday>.")
def weekly_command(week: str | None, out: Path | None) -> None:
    """Build a week's review list (weekly.html, weekly.json) and its review items."""
    from bot.supervision.review_list import build_weekly

    settings, policy = get_settings(), load_policy()
    today = _today(policy)
    day = _parse_day(week, "--week", today) if week else today - timedelta(days=7)
    monday = day - timedelta(days=day.weekday())
    folder = _folder(settings, out, "weekly", monday.isoformat())
    engine = _engine(settings)
    try:
        path = build_weekly(settings, engine, policy, monday, folder, datetime.now(UTC))
    finally:
        engine.dispose()
    data = json.loads((folder / "weekly.json").read_text("utf-8"))
    click.echo(f"review list  {path}")
    click.echo(f"week {monday} - {monday + timedelta(days=6)}: {len(data['items'])} items")
    for item in data["items"]:
        owner = item["owner"] or "-"
        click.echo(f"  {item['occurrences']:>5}  {item['title']}  ({owner}, due {item['due_on']})")


def _parse_month(text: str, today: date) -> date:
    try:
        first = datetime.strptime(text.strip(), "%Y-%m").date()
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a month like 2026-12", param_hint="--month"
        ) from None
    if first > today:
        raise click.BadParameter(f"{text.strip()} has not begun yet", param_hint="--month")
    return first


@report.command("monthly")
@click.option("--month", default=None, help="The month, YYYY-MM. Default: last month.")
@click.option("--out", type=OUT, default=None, help="Folder. Default: REPORTS_DIR/monthly/<month>.")
def monthly_command(month: str | None, out: Path | None) -> None:
    """Build a month's audit (audit.html, audit.json); queue its frequent problems for review."""
    from bot.supervision.audit import build_monthly, month_before
    from bot.supervision.report import pct

    settings, policy = get_settings(), load_policy()
    today = _today(policy)
    first = _parse_month(month, today) if month else month_before(today.replace(day=1))
    folder = _folder(settings, out, "monthly", first.strftime("%Y-%m"))
    engine = _engine(settings)
    try:
        path = build_monthly(settings, engine, policy, first, folder, datetime.now(UTC))
    finally:
        engine.dispose()
    data = json.loads((folder / "audit.json").read_text("utf-8"))
    click.echo(f"audit  {path}")
    targets = data["targets"]
    click.echo(
        f"{data['month']}: {data['conversations']} conversations, "
        f"SLA hit {pct(targets['sla_hit_rate']['actual'])}, "
        f"QA pass {pct(data['compliance']['qa_pass_rate'])}, "
        f"complaints {pct(targets['complaint_rate']['actual'])}, "
        f"{len(data['frequent_problems'])} frequent problems queued for review"
    )
