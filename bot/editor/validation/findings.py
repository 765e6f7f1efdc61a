"""A finding of `kefu validate`: a problem in the editors' data, its place and its fix."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from bot.core.paths import shown_path

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One problem in the editors' data.

    Attributes:
        severity: `error` (training or answers go wrong) or `warning` (worth a look).
        path: The file, relative to the project when inside it.
        line: The 1-based line, or None when the finding concerns the whole file.
        message: What is wrong.
        fix: What to do about it.
    """

    severity: Severity
    path: str
    line: int | None
    message: str
    fix: str = ""

    def format(self) -> str:
        """`path:line: severity: message`, then `  fix: ...` on the next line."""
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        text = f"{where}: {self.severity}: {self.message}"
        return f"{text}\n  fix: {self.fix}" if self.fix else text

    def to_dict(self) -> dict[str, Any]:
        """The finding as a JSON-ready dict."""
        return asdict(self)


def summary(findings: Sequence[Finding]) -> str:
    """`N errors, M warnings`."""
    errors = sum(finding.severity == "error" for finding in findings)
    return f"{errors} errors, {len(findings) - errors} warnings"


def place(path: Path, line: int | None, roots: Sequence[Path]) -> str:
    """`path:line` as shown to editors (just the path when the line is unknown)."""
    return f"{shown_path(path, roots)}:{line}" if line is not None else shown_path(path, roots)
