"""Old command names kept, hidden from `--help`, for one release after a rename."""

from __future__ import annotations

import copy
from typing import TypeVar

import click

C = TypeVar("C", bound=click.Command)


def renamed(command: C, old_name: str, new_name: str, hidden: bool = True) -> C:
    """`command` also under `old_name` (its former invocation), left out of `--help`.

    Args:
        command: The command under its new name.
        old_name: The name the copy answers to.
        new_name: The full new invocation, shown in the copy's own `--help`.
        hidden: False for a command inside an already hidden group.
    """
    alias = copy.copy(command)
    alias.name = old_name
    alias.hidden = hidden
    alias.help = f"Old name of `{new_name}`, kept for one release.\n\n{command.help or ''}".strip()
    return alias
