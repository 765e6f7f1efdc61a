"""The spreadsheet's tables and columns, its error, and what an import changes."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from bot.core.paths import shown_path
from bot.core.settings import PROJECT_ROOT

What = Literal["nlu", "knowledge"]
"""The two tables: NLU examples and knowledge entries."""


TABLES: tuple[What, ...] = ("nlu", "knowledge")


NLU_COLUMNS = ("file", "intent", "example")


KNOWLEDGE_COLUMNS = (
    "file",
    "topic",
    "id",
    "language",
    "question",
    "alt_questions",
    "answer",
    "tags",
    "link",
    "updated_at",
)


COLUMNS: dict[What, tuple[str, ...]] = {"nlu": NLU_COLUMNS, "knowledge": KNOWLEDGE_COLUMNS}


REQUIRED_CELLS: dict[What, tuple[str, ...]] = {
    "nlu": ("file", "intent", "example"),
    "knowledge": ("file", "id", "question", "answer"),
}


LANGUAGES = ("zh", "en")


FORMULA_STARTS = "=+-@\t\r"
"""First characters that make Excel, LibreOffice or Google Sheets read a cell as a formula."""
_FORMULA_LIKE = re.compile(r"'*[=+\-@\t\r]")


def neutralise(value: str) -> str:
    """`value` as exported: with a leading `'` when it could be read as a formula.

    A spreadsheet program then shows it as text (CSV/formula injection: a customer's
    `=HYPERLINK(...)` text in an NLU example must not become a live link or formula).

    Values that already start with apostrophes before such a character get one more, so
    `restore` undoes exactly this and an export followed by an import changes nothing.
    """
    return f"'{value}" if _FORMULA_LIKE.match(value) else value


def restore(value: str) -> str:
    """A cell's text as imported: the apostrophe `neutralise` added removed, nothing else."""
    if value.startswith("'") and _FORMULA_LIKE.match(value, 1):
        return value[1:]
    return value


MAX_PROBLEMS_SHOWN = 30


YAML_SUFFIXES = (".yml", ".yaml")


class SheetError(ValueError):
    """A spreadsheet or data file cannot be exported or imported; each problem names its place."""

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems: tuple[str, ...] = (
            (problems,) if isinstance(problems, str) else tuple(problems)
        )
        shown = list(self.problems[:MAX_PROBLEMS_SHOWN])
        if len(self.problems) > MAX_PROBLEMS_SHOWN:
            shown.append(f"... and {len(self.problems) - MAX_PROBLEMS_SHOWN} more problems")
        super().__init__("\n".join(shown))


@dataclass(frozen=True)
class FileChange:
    """What an import does to one data file."""

    path: Path
    what: What
    created: bool = False
    added: int = 0
    changed: int = 0
    removed: int = 0
    now_empty: bool = False

    def describe(self, root: Path) -> str:
        """One summary line: `data/nlu/orders.yml: 1 added, 2 changed, 0 removed`."""
        counts = f"{self.added} added, {self.changed} changed, {self.removed} removed"
        if not (self.added or self.changed or self.removed):
            counts = "reordered"
        line = f"{shown_path(self.path, (root,))}: {'new file, ' if self.created else ''}{counts}"
        if self.now_empty:
            unit = "examples" if self.what == "nlu" else "entries"
            line += f" (no {unit} left; the file stays: delete it by hand if no longer wanted)"
        return line


@dataclass(frozen=True)
class ImportSummary:
    """The outcome of `import_workbook`: the files changed (or that would be) and the rest."""

    changes: tuple[FileChange, ...]
    unchanged: tuple[Path, ...]
    warnings: tuple[str, ...] = ()
    dry_run: bool = False
    root: Path = field(default=PROJECT_ROOT, compare=False)

    @property
    def changed(self) -> bool:
        """Whether any data file changes."""
        return bool(self.changes)

    def lines(self) -> list[str]:
        """The summary as printed by `kefu sheet import`."""
        lines = [change.describe(self.root) for change in self.changes]
        total = len(self.changes) + len(self.unchanged)
        if self.changes:
            verb = "would change" if self.dry_run else "changed"
            lines.append(
                f"{total} data files checked: {len(self.changes)} {verb}, "
                f"{len(self.unchanged)} unchanged."
            )
        else:
            lines.append(f"Nothing to change: all {total} data files already match the sheet.")
        if self.dry_run:
            lines.append("Dry run: nothing was written.")
        return lines


@dataclass(frozen=True)
class SheetEntry:
    """A knowledge entry's cells, normalised for comparison (`""`/`()` = absent)."""

    id: str
    topic: str
    language: str
    question: str
    alt_questions: tuple[str, ...]
    answer: str
    tags: tuple[str, ...]
    link: str
    updated_at: str
