"""How a path is shown to people: relative to the data copy or the project when inside one."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bot.core.settings import PROJECT_ROOT


def shown_path(path: Path, roots: Sequence[Path] = ()) -> str:
    """The path relative to the first of `roots` (then the project) that holds it, with `/`."""
    resolved = path.resolve()
    for root in (*roots, PROJECT_ROOT):
        try:
            return resolved.relative_to(root.resolve()).as_posix()
        except ValueError:
            continue
    return str(path)
