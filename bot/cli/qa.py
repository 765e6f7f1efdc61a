"""`kefu qa`: the QA rules, recording and scoring conversations, the QA service."""

from __future__ import annotations

import click


@click.group("qa")
def qa() -> None:
    """Quality inspection: check the rules, score ended conversations, run the QA service."""
