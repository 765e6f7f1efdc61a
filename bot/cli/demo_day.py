"""`kefu demo-day`: a generated but realistic day of conversations to look at."""

from __future__ import annotations

import click


@click.command("demo-day")
def demo_day() -> None:
    """Load a generated day of conversations (bot and agents, both languages, all channels)."""
