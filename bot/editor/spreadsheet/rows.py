"""Checking the rows of an imported sheet and turning them into the wanted data, file by file."""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.core.settings import PROJECT_ROOT
from bot.editor.spreadsheet.cells import SheetRow, SheetTable
from bot.editor.spreadsheet.knowledge_files import block_text
from bot.editor.spreadsheet.model import (
    LANGUAGES,
    REQUIRED_CELLS,
    YAML_SUFFIXES,
    SheetEntry,
    SheetError,
)
from bot.editor.spreadsheet.round_trip import data_files
from bot.editor.validation.dialogue import RASA_DEFAULT_INTENTS

DEFAULT_DOMAIN = PROJECT_ROOT / "domain.yml"
"""Intents of the NLU sheet must be declared here (an unknown intent is an error)."""


_ID = re.compile(r"^[\w.:-]+$")


_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T]0?0:00(?::00(?:\.0+)?)?)?$")


_AMBIGUOUS_DATE = re.compile(r"^\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}$")


_SHORTENED_NUMBER = re.compile(r"^\d(?:[.,]\d+)?E\+\d+$", re.IGNORECASE)


def domain_intents(domain: Path | None, warnings: list[str]) -> frozenset[str] | None:
    """The intents the domain declares (and Rasa's defaults); None = not checked.

    Raises:
        SheetError: The domain cannot be read.
    """
    if domain is None:
        return None
    if not domain.is_file():
        warnings.append(f"{domain}: not found, so the intents were not checked")
        return None
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        data = YAML(typ="safe", pure=True).load(domain.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YAMLError) as error:
        raise SheetError(f"{domain}: cannot read the domain's intents ({error})") from error
    names = set(RASA_DEFAULT_INTENTS)
    for item in (data or {}).get("intents") or []:
        names.update([item] if isinstance(item, str) else map(str, dict(item)))
    return frozenset(names)


def nlu_rows_by_file(
    table: SheetTable, intents: frozenset[str] | None, problems: list[str]
) -> dict[str, dict[str, list[str]]]:
    """{file: {intent: [example, ...]}} in sheet order (an intent's rows are merged)."""
    wanted: dict[str, dict[str, list[str]]] = {}
    for row in table.rows:
        cells = {name: value.strip() for name, value in row.cells.items()}
        ok = _required(table, row, cells, problems)
        ok = _file_name(table, row, cells["file"], problems) and ok
        intent, example = cells["intent"], cells["example"]
        if intent and (any(sign.isspace() for sign in intent)):
            problems.append(
                f"{table.where(row.number, 'intent')} is {intent!r}: an intent's "
                "name has no spaces or line breaks"
            )
            ok = False
        elif intent and intents is not None and intent not in intents:
            close = difflib.get_close_matches(intent, sorted(intents), n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            problems.append(
                f"{table.where(row.number, 'intent')}: the intent {intent!r} is not in "
                f"domain.yml: {hint}declare it under intents: in domain.yml first"
            )
            ok = False
        if "\n" in example:
            problems.append(
                f"{table.where(row.number, 'example')} has a line break: "
                "an example is one line, put each example in its own row"
            )
            ok = False
        ok = _not_shortened(table, row, "example", example, problems) and ok
        if ok:
            wanted.setdefault(cells["file"], {}).setdefault(intent, []).append(example)
    return wanted


def knowledge_rows_by_file(table: SheetTable, problems: list[str]) -> dict[str, list[SheetEntry]]:
    """{file: [entry, ...]} in sheet order; an entry's topic is "" when its cell is empty."""
    wanted: dict[str, list[SheetEntry]] = {}
    first_row: dict[str, int] = {}
    for row in table.rows:
        cells = dict(row.cells)
        for name in ("file", "topic", "id", "language", "link", "updated_at"):
            cells[name] = cells[name].strip()
        ok = _required(table, row, cells, problems)
        ok = _file_name(table, row, cells["file"], problems) and ok
        entry_id = cells["id"]
        if entry_id and not _ID.match(entry_id):
            problems.append(
                f"{table.where(row.number, 'id')} is {entry_id!r}: an id has no "
                "spaces or symbols (letters, digits, . : - _ only)"
            )
            ok = False
        elif entry_id in first_row:
            problems.append(
                f"{table.where(row.number, 'id')}: duplicate id {entry_id!r} "
                f"(also in row {first_row[entry_id]}): give each entry its own id"
            )
            ok = False
        elif entry_id:
            first_row[entry_id] = row.number
        language = cells["language"].lower()
        if language and language not in LANGUAGES:
            problems.append(
                f"{table.where(row.number, 'language')}: unknown language "
                f"{cells['language']!r}: use zh or en (or leave it empty)"
            )
            ok = False
        for name in ("topic", "link", "updated_at"):
            if "\n" in cells[name]:
                problems.append(
                    f"{table.where(row.number, name)} has a line break: the {name} is one line"
                )
                ok = False
        updated = _date_text(cells["updated_at"])
        if updated is None:
            problems.append(
                f"{table.where(row.number, 'updated_at')} is "
                f"{cells['updated_at']!r}: write the date as YYYY-MM-DD"
            )
            ok = False
        for name in ("question", "alt_questions", "answer"):
            ok = _not_shortened(table, row, name, cells[name].strip(), problems) and ok
        if ok:
            wanted.setdefault(cells["file"], []).append(
                SheetEntry(
                    id=entry_id,
                    topic=cells["topic"],
                    language=language,
                    question=cells["question"].strip(),
                    alt_questions=_lines(cells["alt_questions"]),
                    answer=block_text(cells["answer"]),
                    tags=_lines(cells["tags"]),
                    link=cells["link"],
                    updated_at=updated or "",
                )
            )
    return wanted


def _required(
    table: SheetTable, row: SheetRow, cells: Mapping[str, str], problems: list[str]
) -> bool:
    empty = [name for name in REQUIRED_CELLS[table.what] if not cells[name].strip()]
    for name in empty:
        problems.append(f"{table.where(row.number, name)} is empty: the {name} is required")
    return not empty


def _file_name(table: SheetTable, row: SheetRow, name: str, problems: list[str]) -> bool:
    if not name:
        return False  # reported as an empty required cell
    path = Path(name)
    if (
        "/" in name
        or "\\" in name
        or ".." in name
        or name.startswith(".")
        or path.name != name
        or path.suffix.lower() not in YAML_SUFFIXES
        or not path.stem.strip()
        or any(not sign.isprintable() for sign in name)
    ):
        problems.append(
            f"{table.where(row.number, 'file')} is {name!r}: name a file of the "
            "data folder itself, like topic_name.yml (no folders, only .yml/.yaml)"
        )
        return False
    return True


def _not_shortened(
    table: SheetTable, row: SheetRow, column: str, value: str, problems: list[str]
) -> bool:
    if _SHORTENED_NUMBER.match(value):
        problems.append(
            f"{table.where(row.number, column)} is {value!r}: a number Excel "
            "shortened; use the .xlsx, or open the CSV with this column as text"
        )
        return False
    return True


def _date_text(text: str) -> str | None:
    """An ISO date for date-like text (2026/3/2 too), the text itself otherwise; None = bad."""
    match = _DATE.match(text)
    if match:
        try:
            return dt.date(*(int(part) for part in match.groups())).isoformat()
        except ValueError:
            return None
    if _AMBIGUOUS_DATE.match(text):
        return None
    return text


def _lines(text: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in text.split("\n") if line.strip())


def refuse_empty(table: SheetTable, wanted: Mapping[str, Any], folder: Path) -> None:
    """Refuses a sheet without rows when the folder has data files (it would empty them all).

    Raises:
        SheetError: The table has no rows.
    """
    if not wanted and data_files(folder):
        unit = "NLU example" if table.what == "nlu" else "knowledge entry"
        raise SheetError(
            f"{table.name}: no rows: importing it would remove every {unit}; "
            "export again to start from the current data"
        )
