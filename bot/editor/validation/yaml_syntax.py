"""YAML with line numbers: reading a data file strictly, and the syntax check of `kefu validate`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from bot.core.data_file import DataFileError, YamlDocument, read_data_file
from bot.core.paths import shown_path
from bot.editor.validation.findings import Finding

YAML_SUFFIXES = (".yml", ".yaml")


def yaml_files(folder: Path) -> list[Path]:
    """The `*.yml` / `*.yaml` files under a folder (recursively), sorted; none if it is missing."""
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file())


class YamlProblem(ValueError):
    """A file is not readable YAML; `line` (1-based or None), `message` and `fix` say why."""

    def __init__(self, line: int | None, message: str, fix: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message
        self.fix = fix


def read_yaml(path: Path) -> YamlDocument:
    """Reads a YAML file with `bot.core.data_file`'s strict reader, adding a fix to any problem.

    Raises:
        YamlProblem: The file is unreadable, not UTF-8, not valid YAML or repeats a key.
    """
    try:
        return read_data_file(path)
    except DataFileError as problem:
        raise YamlProblem(problem.line, problem.reason, _fix(problem, path)) from problem


def _fix(problem: DataFileError, path: Path) -> str:
    """What to do about a file the strict reader refused."""
    reason = problem.reason
    if reason == "file not found" or reason.startswith("cannot read"):
        return "restore the file"
    if reason.startswith("not valid UTF-8"):
        return "save the file as UTF-8"
    if reason.startswith("duplicate key"):
        return "merge the two into one key, or rename one"
    line_text = _line_text(path, problem.line)
    indent = line_text[: len(line_text) - len(line_text.lstrip())]
    if "mapping values are not allowed" in reason:
        return 'put a text that contains ": " in quotes, or fix the indentation'
    if "\t" in indent or "'\\t'" in reason:
        return "indent with spaces, not tabs"
    if any(word in reason for word in ("expected <block end>", "expected key", "expected '-'")):
        return "line this item up with the items above it (same indentation, same '- ')"
    if "quoted scalar" in reason:
        return "close the quote on the same text"
    return "check the quotes, colons and indentation at this line"


def _line_text(path: Path, line: int | None) -> str:
    """The text of a 1-based line of a file ("" when unknown)."""
    if line is None:
        return ""
    try:
        lines = path.read_text("utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return lines[line - 1] if 0 < line <= len(lines) else ""


def parsed(path: Path) -> YamlDocument | None:
    """The document, or None when `check_yaml_syntax` reports the file."""
    try:
        return read_yaml(path)
    except YamlProblem:
        return None


def check_yaml_syntax(paths: Iterable[Path], *, roots: Sequence[Path] = ()) -> list[Finding]:
    """One error per file that is not valid YAML, at the line the parser stopped."""
    findings = []
    for path in paths:
        try:
            read_yaml(path)
        except YamlProblem as problem:
            findings.append(
                Finding(
                    "error", shown_path(path, roots), problem.line, problem.message, problem.fix
                )
            )
    return findings
