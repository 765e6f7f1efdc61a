"""`kefu demo-day`: a generated but realistic day of conversations to look at.

The day (`bot.supervision.daygen`) is scored at once by the QA inspector, so the dashboard,
the drill-down lists and the daily report have something to show. `kefu demo` loads
yesterday and today so far into an empty database (`KEFU_DEMO_DAY=0` turns that off).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import click
from sqlalchemy import Engine

from bot.core.settings import Settings, get_settings
from bot.service.policy import ServicePolicy, load_policy

DEMO_CONVERSATIONS = 1200
"""Conversations of a demo day (today gets the part of them that has already happened)."""


def load_day(
    settings: Settings,
    engine: Engine,
    policy: ServicePolicy,
    day: date,
    conversations: int,
    *,
    seed: int = 7,
    replace: bool = False,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Generates `day`, scores what is due, gives the agents the demo login in local runs.

    Raises `click.ClickException` when the day has generated conversations already and
    `replace` is not set. Returns the generator's counts with `removed` and `qa`.
    """
    from bot.accounts import seed_demo_agent
    from bot.core.db import AgentRole
    from bot.supervision.daygen import delete_day, ensure_agents, generate_day
    from bot.supervision.daygen import generated_conversations as existing

    now = now or datetime.now(UTC)
    removed = delete_day(engine, policy, day) if replace else 0
    already = existing(engine, policy, day)
    if already:
        raise click.ClickException(
            f"{day} has {already} generated conversations already: add --replace to redo it."
        )
    stats = generate_day(engine, policy, day, conversations, seed=seed, now=now)
    if settings.env == "local" and settings.demo_agent_password:
        for profile in ensure_agents(engine, policy).profiles:
            seed_demo_agent(engine, settings, profile.username, profile.display_name,
                            AgentRole.agent)  # fmt: skip
    return {**stats, "removed": removed, "qa": score_all(engine, policy, now)}


def score_all(engine: Engine, policy: ServicePolicy, now: datetime) -> dict[str, int]:
    """Runs the QA inspector until no ended conversation is left unscored."""
    from bot.supervision.rules import load_qa_rules
    from bot.supervision.scoring import Inspector, ScoreReport

    inspector = Inspector(engine, load_qa_rules(), policy)
    total = ScoreReport()
    while (report := inspector.score_due(now, limit=2000)).scored:
        total += report
    return total.as_dict()


def load_demo_days(settings: Settings, engine: Engine, now: datetime | None = None) -> list[str]:
    """`kefu demo`'s hook: yesterday and today so far, once (an empty dashboard otherwise)."""
    from bot.supervision.daygen import generated_conversations

    if generated_conversations(engine):
        return ["Demo day: generated conversations are loaded already."]
    policy = load_policy()
    now = now or datetime.now(UTC)
    today = now.astimezone(policy.zone).date()
    lines = []
    # today first: yesterday's late conversations run past midnight into today
    for day in (today, today - timedelta(days=1)):
        stats = load_day(settings, engine, policy, day, DEMO_CONVERSATIONS, now=now)
        lines.append(f"Demo day {day}: {summary(stats)}")
    return lines


def summary(stats: dict[str, Any]) -> str:
    """One line: conversations, shares of outcomes, handoffs, tickets, QA findings."""
    total = stats["conversations"] or 1
    outcomes = ", ".join(
        f"{name} {count / total:.0%}"
        for name, count in sorted(stats["outcomes"].items(), key=lambda item: -item[1])
    )
    qa = stats["qa"]
    return (
        f"{stats['conversations']} conversations ({outcomes}); {stats['handoffs']} handoffs, "
        f"{stats['tickets']} tickets; QA scored {qa['scored']}, {qa['findings']} findings, "
        f"{qa['red_cards']} red cards"
    )


def _parse_day(text: str | None, policy: ServicePolicy) -> date:
    if text is None:
        return datetime.now(UTC).astimezone(policy.zone).date() - timedelta(days=1)
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise click.BadParameter(
            f"{text!r} is not a date like 2026-12-06", param_hint="--date"
        ) from error


@click.command("demo-day")
@click.option("--date", "day_text", default=None, help="The day, YYYY-MM-DD  [default: yesterday]")
@click.option(
    "--conversations",
    default=DEMO_CONVERSATIONS,
    show_default=True,
    type=click.IntRange(1, 50_000),
    help="Conversations of a whole day (today: those that have already happened).",
)
@click.option("--seed", default=7, show_default=True, help="The same seed gives the same day.")
@click.option("--replace", is_flag=True, help="Delete that day's generated conversations first.")
def demo_day(day_text: str | None, conversations: int, seed: int, replace: bool) -> None:
    """Load a generated day of conversations (bot and agents, both languages, all channels).

    Then score them with the QA rules, so the dashboard (/desk/dashboard) and the daily report
    show a real-looking day. Generated rows never send or plan anything.
    """
    from bot.core.db import make_engine, upgrade

    settings = get_settings()
    policy = load_policy()
    day = _parse_day(day_text, policy)
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        stats = load_day(settings, engine, policy, day, conversations, seed=seed, replace=replace)
    finally:
        engine.dispose()
    if stats["removed"]:
        click.echo(f"Removed {stats['removed']} generated conversations of {day}.")
    if not stats["conversations"]:
        click.echo(f"Nothing to load: {day} has not begun yet (policy time zone).")
        return
    click.echo(f"{day}: {summary(stats)} ({stats['seconds']} s)")
    click.echo(f"Dashboard: http://{settings.host}:{settings.web_port}/desk/dashboard")
