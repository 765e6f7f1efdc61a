"""`kefu report`: the daily report, the weekly review list and the monthly audit."""

from __future__ import annotations

import click


@click.group("report")
def report() -> None:
    """Supervisors' reports: daily (HTML + metrics.json), weekly review list, monthly audit."""
