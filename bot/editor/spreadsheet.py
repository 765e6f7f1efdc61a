"""Spreadsheet round trip of NLU examples and knowledge entries, for editors who do not write YAML.

`export_workbook` writes the rows of `data/nlu/*.yml` and `data/knowledge/*.yml` to one XLSX
workbook (sheets `nlu` and `knowledge`) or to one CSV. `import_workbook` reads such a spreadsheet
back: it is the whole truth for its table (a row removed removes the example or entry), data files
whose content does not change are not touched, changed files are rewritten with ruamel.yaml's round
trip (comments, key order and `|` blocks stay) after the result was validated, one temp file and
`os.replace` each. An export followed by an import changes nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import io
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from bot.core.settings import PROJECT_ROOT, Settings

if TYPE_CHECKING:
    from openpyxl.cell.cell import Cell
    from ruamel.yaml import YAML

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
DEFAULT_DOMAIN = PROJECT_ROOT / "domain.yml"
"""Intents of the NLU sheet must be declared here (an unknown intent is an error)."""

RASA_DEFAULT_INTENTS = frozenset(
    {"restart", "back", "out_of_scope", "session_start", "nlu_fallback"}
)
COLUMN_WIDTHS = {
    "file": 20,
    "intent": 24,
    "example": 60,
    "topic": 14,
    "id": 32,
    "language": 9,
    "question": 40,
    "alt_questions": 40,
    "answer": 80,
    "tags": 16,
    "link": 44,
    "updated_at": 12,
}
WRAPPED_COLUMNS = frozenset({"alt_questions", "answer", "tags"})
XLSX_CELL_LIMIT = 32767
MAX_PROBLEMS_SHOWN = 30
YAML_SUFFIXES = (".yml", ".yaml")
# (mapping, sequence, offset) indentations tried to reproduce a file byte for byte.
_INDENTS = ((2, 2, 0), (2, 4, 2), (4, 4, 2), (4, 6, 4), (4, 4, 0))
_DEFAULT_INDENT: dict[What, tuple[int, int, int]] = {"nlu": (2, 2, 0), "knowledge": (2, 4, 2)}
_TEMPLATES: dict[What, str] = {"nlu": 'version: "3.1"\n\nnlu: []\n', "knowledge": "entries: []\n"}
_ENTRY_KEYS = (
    "id",
    "topic",
    "language",
    "question",
    "alt_questions",
    "answer",
    "tags",
    "link",
    "updated_at",
)
_ID = re.compile(r"^[\w.:-]+$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T]0?0:00(?::00(?:\.0+)?)?)?$")
_AMBIGUOUS_DATE = re.compile(r"^\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}$")
_SHORTENED_NUMBER = re.compile(r"^\d(?:[.,]\d+)?E\+\d+$", re.IGNORECASE)


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
        line = f"{_shown(self.path, root)}: {'new file, ' if self.created else ''}{counts}"
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
class _Entry:
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


@dataclass(frozen=True)
class _Row:
    number: int
    cells: Mapping[str, str]


@dataclass(frozen=True)
class _Table:
    """One sheet as read: its header and non-empty rows, and where it came from."""

    what: What
    source: str
    sheet: str | None
    header: tuple[str, ...]
    rows: tuple[_Row, ...]

    def where(self, row: int, column: str) -> str:
        """`edits.xlsx knowledge!F12 (answer)` or `edits.csv row 12, column F (answer)`."""
        from openpyxl.utils import get_column_letter

        letter = get_column_letter(self.header.index(column) + 1)
        if self.sheet is None:
            return f"{self.source} row {row}, column {letter} ({column})"
        return f"{self.source} {self.sheet}!{letter}{row} ({column})"

    @property
    def name(self) -> str:
        """`edits.xlsx sheet knowledge` or `edits.csv`."""
        return self.source if self.sheet is None else f"{self.source} sheet {self.sheet}"


@dataclass
class _Doc:
    """A data file loaded with ruamel.yaml's round trip."""

    path: Path
    text: str
    data: Any
    what: What
    created: bool = False


@dataclass(frozen=True)
class _Plan:
    change: FileChange | None
    path: Path
    text: str | None = None


# ----------------------------------------------------------------------------- export


def export_workbook(settings: Settings, out: Path, what: What | None = None) -> Path:
    """Writes the NLU examples and/or knowledge entries to a spreadsheet.

    Args:
        settings: Kefu's settings (`nlu_dir`, `knowledge_source_dir`).
        out: An `.xlsx` (sheets `nlu` and `knowledge`) or a `.csv` (one table) file; replaced.
        what: Only this table; required for a `.csv`. None = both.

    Returns:
        `out`.

    Raises:
        SheetError: Bad target, or a data file that cannot be read or exported.
    """
    tables = export_tables(settings, tables_for(out, what))
    write_spreadsheet(out, tables)
    return out


def tables_for(out: Path, what: What | None) -> tuple[What, ...]:
    """The tables an export to `out` holds.

    Raises:
        SheetError: `out` is neither .xlsx nor .csv, or a .csv without `what`.
    """
    suffix = out.suffix.lower()
    if suffix == ".csv":
        if what is None:
            raise SheetError(f"{out.name}: a CSV holds one table: pass --what nlu or knowledge")
        return (what,)
    if suffix == ".xlsx":
        return TABLES if what is None else (what,)
    raise SheetError(f"{out.name}: the spreadsheet must be an .xlsx or a .csv file")


def export_tables(settings: Settings, tables: Iterable[What]) -> dict[What, list[tuple[str, ...]]]:
    """The rows of each table (columns as in `COLUMNS`), in file order then data order.

    Raises:
        SheetError: A data file cannot be read or holds something the sheet cannot represent.
    """
    root = settings.data_dir.parent
    result: dict[What, list[tuple[str, ...]]] = {}
    for what in tables:
        rows: list[tuple[str, ...]] = []
        if what == "nlu":
            for path in _data_files(settings.nlu_dir):
                data = _load_doc(path, "nlu").data
                for intent, examples, _node in _nlu_items(data, _shown(path, root)):
                    rows.extend((path.name, intent, example) for example in examples)
        else:
            for path in _data_files(settings.knowledge_source_dir):
                data = _load_doc(path, "knowledge").data
                _topic, entries = _knowledge_model(data, path.stem, _shown(path, root))
                rows.extend(_entry_row(path.name, entry) for entry in entries)
        result[what] = rows
    return result


def write_spreadsheet(out: Path, tables: Mapping[What, Sequence[Sequence[str]]]) -> None:
    """Writes the tables to `out` (.xlsx: one sheet each; .csv: exactly one table), atomically.

    Raises:
        SheetError: The file cannot be written or a value cannot go into a cell.
    """
    if out.is_dir():
        raise SheetError(f"{out}: is a folder; name the spreadsheet file to write")
    if not out.parent.is_dir():
        raise SheetError(f"{out}: the folder {out.parent} does not exist")
    if out.suffix.lower() == ".csv":
        if len(tables) != 1:
            raise SheetError(f"{out.name}: a CSV holds exactly one table")
        ((what, rows),) = tables.items()
        _atomic_write(out, lambda target: _write_csv(target, COLUMNS[what], rows))
    else:
        _atomic_write(out, lambda target: _write_xlsx(target, tables))


def _entry_row(file: str, entry: _Entry) -> tuple[str, ...]:
    return (
        file,
        entry.topic,
        entry.id,
        entry.language,
        entry.question,
        "\n".join(entry.alt_questions),
        entry.answer,
        "\n".join(entry.tags),
        entry.link,
        entry.updated_at,
    )


def _write_csv(target: Path, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    with target.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)


def _write_xlsx(target: Path, tables: Mapping[What, Sequence[Sequence[str]]]) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    for default in list(workbook.worksheets):
        workbook.remove(default)
    bold = Font(bold=True)
    wrapped = Alignment(wrap_text=True, vertical="top")
    top = Alignment(vertical="top")
    for what, rows in tables.items():
        sheet = workbook.create_sheet(what)
        columns = COLUMNS[what]
        for index, name in enumerate(columns, start=1):
            cell = sheet.cell(row=1, column=index)
            _put_text(cell, name, f"{what} header")
            cell.font = bold
        for number, row in enumerate(rows, start=2):
            for index, (name, value) in enumerate(zip(columns, row, strict=True), start=1):
                cell = sheet.cell(row=number, column=index)
                _put_text(cell, value, f"{what} row {number} ({row[0]}), column {name}")
                cell.alignment = wrapped if name in WRAPPED_COLUMNS else top
        for index, name in enumerate(columns, start=1):
            sheet.column_dimensions[get_column_letter(index)].width = COLUMN_WIDTHS[name]
        sheet.freeze_panes = "A2"
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{max(len(rows), 1) + 1}"
    workbook.save(target)


def _put_text(cell: Cell, value: str, where: str) -> Cell:
    """Writes `value` as a text cell (never a formula, number or date)."""
    from openpyxl.utils.exceptions import IllegalCharacterError

    if len(value) > XLSX_CELL_LIMIT:
        raise SheetError(f"{where}: {len(value)} characters, more than an XLSX cell holds")
    try:
        cell.value = value
    except IllegalCharacterError as error:
        raise SheetError(f"{where}: holds a control character XLSX cannot store") from error
    cell.data_type = "s"  # a text starting with "=" stays text
    cell.number_format = "@"
    return cell


# ----------------------------------------------------------------------------- import


def import_workbook(
    settings: Settings,
    path: Path,
    what: What | None = None,
    dry_run: bool = False,
    domain: Path | None = DEFAULT_DOMAIN,
) -> ImportSummary:
    """Brings the data files in line with a spreadsheet written by `export_workbook`.

    Args:
        settings: Kefu's settings (`nlu_dir`, `knowledge_source_dir`).
        path: The .xlsx or .csv file.
        what: Only this table. None = every table the file holds (a CSV's kind is told by its
            header).
        dry_run: Check and count, but write nothing.
        domain: Intents of the NLU sheet must be declared here; None or a missing file = not
            checked (a warning says so).

    Returns:
        The files changed (or that would be) and those left untouched.

    Raises:
        SheetError: Every problem found, each naming the sheet, row and column (or file and
            line); nothing was written.
    """
    tables = {table.what: table for table in _read_spreadsheet(path, what)}
    for table in tables.values():
        _check_header(table)
    warnings: list[str] = []
    problems: list[str] = []
    nlu_table, knowledge_table = tables.get("nlu"), tables.get("knowledge")
    wanted_nlu = wanted_knowledge = None
    if nlu_table is not None:
        wanted_nlu = _wanted_nlu(nlu_table, _domain_intents(domain, warnings), problems)
    if knowledge_table is not None:
        wanted_knowledge = _wanted_knowledge(knowledge_table, problems)
    if problems:
        raise SheetError(problems)
    root = settings.data_dir.parent
    plans: list[_Plan] = []
    if nlu_table is not None and wanted_nlu is not None:
        _refuse_empty(nlu_table, wanted_nlu, settings.nlu_dir)
        plans.extend(_plan_nlu(settings.nlu_dir, wanted_nlu, root))
    if knowledge_table is not None and wanted_knowledge is not None:
        folder = settings.knowledge_source_dir
        _refuse_empty(knowledge_table, wanted_knowledge, folder)
        knowledge_plans = _plan_knowledge(folder, wanted_knowledge, root)
        _validate_knowledge(folder, knowledge_plans, root)  # before anything is written
        plans.extend(knowledge_plans)
    changed = [plan for plan in plans if plan.change is not None]
    if not dry_run:
        _write_plans(changed, root)
    return ImportSummary(
        changes=tuple(plan.change for plan in changed if plan.change is not None),
        unchanged=tuple(plan.path for plan in plans if plan.change is None),
        warnings=tuple(warnings),
        dry_run=dry_run,
        root=root,
    )


def _read_spreadsheet(path: Path, what: What | None = None) -> list[_Table]:
    """The tables of an .xlsx or .csv file (header checked by the caller).

    Raises:
        SheetError: Missing or unreadable file, wrong type, bad encoding, formulas, error cells.
    """
    suffix = path.suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        raise SheetError(f"{path.name}: not an .xlsx or .csv file; save the sheet as one of these")
    if not path.is_file():
        raise SheetError(f"{path}: no such file")
    return _read_csv(path, what) if suffix == ".csv" else _read_xlsx(path, what)


def _read_xlsx(path: Path, what: What | None) -> list[_Table]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=False)
    except Exception as error:  # openpyxl raises many kinds on damaged files
        raise _unreadable(path, error) from error
    try:
        by_name = {name.strip().lower(): name for name in workbook.sheetnames}
        if what is None:
            wanted = [table for table in TABLES if table in by_name]
            if not wanted:
                raise SheetError(
                    f"{path.name}: no sheet named nlu or knowledge "
                    f"(sheets found: {', '.join(workbook.sheetnames) or 'none'})"
                )
        elif what not in by_name:
            raise SheetError(
                f"{path.name}: no sheet named {what} "
                f"(sheets found: {', '.join(workbook.sheetnames) or 'none'})"
            )
        else:
            wanted = [what]
        tables = []
        for table in wanted:
            sheet = workbook[by_name[table]]
            rows = ([_xlsx_value(cell) for cell in row] for row in sheet.iter_rows())
            tables.append(_table(table, path.name, by_name[table], rows))
        return tables
    except SheetError:
        raise
    except Exception as error:  # damage can surface while the rows are read
        raise _unreadable(path, error) from error
    finally:
        workbook.close()


def _unreadable(path: Path, error: Exception) -> SheetError:
    return SheetError(
        f"{path.name}: cannot read it as an XLSX workbook ({type(error).__name__}: {error}); "
        "open it in Excel and save it again as .xlsx"
    )


@dataclass(frozen=True)
class _Bad:
    """A cell that holds no usable value (a formula or an error) and why."""

    problem: str


def _xlsx_value(cell: Any) -> str | _Bad:
    value = cell.value
    if cell.data_type == "f":
        formula = getattr(value, "text", value)
        return _Bad(f"holds a formula ({formula}): paste it as a value")
    if cell.data_type == "e":
        return _Bad(f"holds an error value ({value}): type the value instead")
    return _text_of(value)


def _text_of(value: Any) -> str:
    """A cell's value as text: numbers without `.0`, Excel dates as ISO dates."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.replace("\r\n", "\n").replace("\r", "\n")
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        if value.time() == dt.time():
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _read_csv(path: Path, what: What | None) -> list[_Table]:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise SheetError(f"{path}: cannot read it ({error.strerror})") from error
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise SheetError(
            f"{path.name}: line {line}: not UTF-8 text (byte 0x{raw[error.start]:02x}); "
            "save it as 'CSV UTF-8' (or use the .xlsx)"
        ) from error
    if "\ufffd" in text:
        line = text[: text.index("\ufffd")].count("\n") + 1
        raise SheetError(
            f"{path.name}: line {line}: holds U+FFFD: the text was converted lossily; "
            "export again and save it as 'CSV UTF-8'"
        )
    first_line = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=lambda sign: _known_columns(first_line.split(sign)))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        rows = [[_text_of(value) for value in row] for row in reader]
    except csv.Error as error:
        raise SheetError(f"{path.name}: line {reader.line_num}: not valid CSV ({error})") from error
    header = {name.strip().lower() for name in rows[0]} if rows else set()
    if what is None:
        if {"intent", "example"} & header:
            what = "nlu"
        elif {"id", "question", "answer"} & header:
            what = "knowledge"
        else:
            raise SheetError(
                f"{path.name}: cannot tell whether it holds NLU examples or knowledge entries "
                f"(columns found: {', '.join(sorted(header - {''})) or 'none'}); pass --what"
            )
    return [_table(what, path.name, None, iter(rows))]


def _known_columns(names: Sequence[str]) -> int:
    known = set(NLU_COLUMNS) | set(KNOWLEDGE_COLUMNS)
    return sum(name.strip().strip('"').lower() in known for name in names)


def _table(
    what: What, source: str, sheet: str | None, rows: Iterator[Sequence[str | _Bad]]
) -> _Table:
    header_cells = next(rows, [])
    header = tuple(
        value.strip().lower() if isinstance(value, str) else "" for value in header_cells
    )
    wanted = {name: index for index, name in reversed(list(enumerate(header))) if name}
    problems = []
    for name in sorted({n for n in header if n and header.count(n) > 1}):
        problems.append(
            f"{source}{'' if sheet is None else f' sheet {sheet}'}: "
            f"the column {name} appears twice in the header"
        )
    table_rows = []
    for number, values in enumerate(rows, start=2):
        cells: dict[str, str] = {}
        for name in COLUMNS[what]:
            index = wanted.get(name)
            value = values[index] if index is not None and index < len(values) else ""
            if isinstance(value, _Bad):
                located = _Table(what, source, sheet, header, ())
                problems.append(f"{located.where(number, name)} {value.problem}")
                value = ""
            cells[name] = value
        if any(value.strip() for value in cells.values()):
            table_rows.append(_Row(number, cells))
    if problems:
        raise SheetError(problems)
    return _Table(what, source, sheet, header, tuple(table_rows))


def _check_header(table: _Table) -> None:
    missing = [name for name in COLUMNS[table.what] if name not in table.header]
    if missing:
        found = ", ".join(name for name in table.header if name) or "none"
        raise SheetError(
            f"{table.name}: missing the columns {', '.join(missing)} (columns found: {found}); "
            f"the {table.what} columns are {', '.join(COLUMNS[table.what])}"
        )


def _domain_intents(domain: Path | None, warnings: list[str]) -> frozenset[str] | None:
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


def _wanted_nlu(
    table: _Table, intents: frozenset[str] | None, problems: list[str]
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


def _wanted_knowledge(table: _Table, problems: list[str]) -> dict[str, list[_Entry]]:
    """{file: [entry, ...]} in sheet order; an entry's topic is "" when its cell is empty."""
    wanted: dict[str, list[_Entry]] = {}
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
                _Entry(
                    id=entry_id,
                    topic=cells["topic"],
                    language=language,
                    question=cells["question"].strip(),
                    alt_questions=_lines(cells["alt_questions"]),
                    answer=_block_text(cells["answer"]),
                    tags=_lines(cells["tags"]),
                    link=cells["link"],
                    updated_at=updated or "",
                )
            )
    return wanted


def _required(table: _Table, row: _Row, cells: Mapping[str, str], problems: list[str]) -> bool:
    empty = [name for name in REQUIRED_CELLS[table.what] if not cells[name].strip()]
    for name in empty:
        problems.append(f"{table.where(row.number, name)} is empty: the {name} is required")
    return not empty


def _file_name(table: _Table, row: _Row, name: str, problems: list[str]) -> bool:
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


def _not_shortened(table: _Table, row: _Row, column: str, value: str, problems: list[str]) -> bool:
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


def _block_text(text: str) -> str:
    """A multi-line text as compared and stored: no trailing spaces, no blank edges."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def _refuse_empty(table: _Table, wanted: Mapping[str, Any], folder: Path) -> None:
    if not wanted and _data_files(folder):
        unit = "NLU example" if table.what == "nlu" else "knowledge entry"
        raise SheetError(
            f"{table.name}: no rows: importing it would remove every {unit}; "
            "export again to start from the current data"
        )


# ----------------------------------------------------------------------------- planning


def _plan_nlu(folder: Path, wanted: Mapping[str, dict[str, list[str]]], root: Path) -> list[_Plan]:
    existing = {path.name: path for path in _data_files(folder)}
    plans = []
    for name in sorted(existing.keys() | wanted.keys()):
        want = wanted.get(name, {})
        path = existing.get(name, folder / name)
        doc = _load_doc(path, "nlu") if name in existing else _new_doc(path, "nlu", {})
        have = _merged_intents(_nlu_items(doc.data, _shown(path, root)))
        if not doc.created and list(have.items()) == list(want.items()):
            plans.append(_Plan(None, path))
            continue
        indent = _indent_of(doc)
        _apply_nlu(doc.data, want)
        text = _render(doc, indent, partial(_nlu_faithful, shown=_shown(path, root), want=want))
        added, changed, removed = _nlu_counts(have, want)
        change = FileChange(path, "nlu", doc.created, added, changed, removed, now_empty=not want)
        plans.append(_Plan(change, path, text))
    return plans


def _plan_knowledge(folder: Path, wanted: Mapping[str, list[_Entry]], root: Path) -> list[_Plan]:
    existing = {path.name: path for path in _data_files(folder)}
    plans = []
    for name in sorted(existing.keys() | wanted.keys()):
        rows = wanted.get(name, [])
        path = existing.get(name, folder / name)
        shown = _shown(path, root)
        if name in existing:
            doc = _load_doc(path, "knowledge")
            have_topic, have = _knowledge_model(doc.data, path.stem, shown)
            topic = _file_topic(have_topic, rows, path.stem)
        else:
            topic = _file_topic(None, rows, path.stem)
            doc = _new_doc(path, "knowledge", {"topic": topic})
            have_topic, have = topic, []
        want = [replace(entry, topic=entry.topic or topic) for entry in rows]
        if not doc.created and have_topic == topic and have == want:
            plans.append(_Plan(None, path))
            continue
        indent = _indent_of(doc)
        _apply_knowledge(doc.data, topic, want, path.stem)
        faithful = partial(_knowledge_faithful, stem=path.stem, shown=shown, model=(topic, want))
        text = _render(doc, indent, faithful)
        before = {entry.id: entry for entry in have}
        after = {entry.id: entry for entry in want}
        change = FileChange(
            path,
            "knowledge",
            doc.created,
            added=len(after.keys() - before.keys()),
            changed=sum(before[key] != after[key] for key in after.keys() & before.keys()),
            removed=len(before.keys() - after.keys()),
            now_empty=not want,
        )
        plans.append(_Plan(change, path, text))
    return plans


def _nlu_faithful(data: Any, shown: str, want: Mapping[str, list[str]]) -> bool:
    return list(_merged_intents(_nlu_items(data, shown)).items()) == list(want.items())


def _knowledge_faithful(data: Any, stem: str, shown: str, model: tuple[str, list[_Entry]]) -> bool:
    return _knowledge_model(data, stem, shown) == model


def _file_topic(current: str | None, rows: Sequence[_Entry], stem: str) -> str:
    """The file's `topic:`: the one every row names, else the current one (or the first named)."""
    topics = [entry.topic for entry in rows]
    if topics and all(topics) and len(set(topics)) == 1:
        return topics[0]
    if current:
        return current
    return next((topic for topic in topics if topic), stem)


def _nlu_counts(
    before: Mapping[str, list[str]], after: Mapping[str, list[str]]
) -> tuple[int, int, int]:
    added = changed = removed = 0
    for intent in before.keys() | after.keys():
        old, new = before.get(intent, []), after.get(intent, [])
        matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                continue
            both = min(i2 - i1, j2 - j1)
            changed += both
            removed += (i2 - i1) - both
            added += (j2 - j1) - both
    return added, changed, removed


def _validate_knowledge(folder: Path, plans: Sequence[_Plan], root: Path) -> None:
    """Loads the knowledge folder as it would be after the import (in a temp copy)."""
    if not any(plan.change is not None for plan in plans):
        return
    from knowledge_index import load_entries
    from knowledge_index.errors import SourceError

    with tempfile.TemporaryDirectory(prefix="kefu-sheet-") as temp:
        copy = Path(temp) / folder.name
        copy.mkdir()
        for plan in plans:
            target = copy / plan.path.name
            if plan.text is None:
                shutil.copyfile(plan.path, target)
            else:
                target.write_text(plan.text, encoding="utf-8")
        try:
            load_entries(copy)
        except SourceError as error:
            real = _shown(folder / error.path.name, root)
            where = f"{real}:{error.line}" if error.line is not None else real
            raise SheetError(
                f"{where}: {error.reason} (in the knowledge files the import would write; "
                "fix the row in the sheet: nothing was written)"
            ) from error


def _write_plans(plans: Sequence[_Plan], root: Path) -> None:
    """Writes every changed file to a temp file first, then replaces them all."""
    staged: list[tuple[Path, Path]] = []
    try:
        for plan in plans:
            if plan.text is None:
                continue
            plan.path.parent.mkdir(parents=True, exist_ok=True)
            mode = _mode_for(plan.path)
            handle, name = tempfile.mkstemp(
                prefix=f".{plan.path.name}.", suffix=".tmp", dir=plan.path.parent
            )
            staged.append((Path(name), plan.path))
            with os.fdopen(handle, "wb") as stream:
                stream.write(plan.text.encode("utf-8"))
                stream.flush()
                os.fsync(stream.fileno())
            os.chmod(name, mode)
    except OSError as error:
        for temp, _ in staged:
            temp.unlink(missing_ok=True)
        raise SheetError(f"cannot write the data files ({error}); nothing was written") from error
    for temp, target in staged:
        os.replace(temp, target)


def _mode_for(path: Path) -> int:
    for candidate in (path, *sorted(path.parent.glob("*.yml"))):
        if candidate.is_file():
            return stat.S_IMODE(candidate.stat().st_mode)
    return 0o644


def _atomic_write(target: Path, write: Callable[[Path], None]) -> None:
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    temp = Path(name)
    try:
        write(temp)
        os.chmod(temp, 0o644)
        os.replace(temp, target)
    except OSError as error:
        raise SheetError(f"{target}: cannot write it ({error})") from error
    finally:
        temp.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- YAML


def _data_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.iterdir()
        if path.suffix in YAML_SUFFIXES and not path.name.startswith(".") and path.is_file()
    )


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _yaml(indent: tuple[int, int, int] | None = None) -> YAML:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt", pure=True)
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold long lines
    if indent is not None:
        mapping, sequence, offset = indent
        yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def _load_doc(path: Path, what: What) -> _Doc:
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    from knowledge_index.errors import SourceError
    from knowledge_index.sources import read_text

    try:
        text = read_text(path)
    except SourceError as error:
        raise SheetError(str(error)) from error
    except OSError as error:
        raise SheetError(f"{path}: cannot read it ({error.strerror})") from error
    try:
        data = _yaml().load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise SheetError(f"{where}: bad YAML: {error.problem or error}") from error
    except YAMLError as error:
        raise SheetError(f"{path}: bad YAML: {error}") from error
    return _Doc(path, text, data, what)


def _new_doc(path: Path, what: What, keys: Mapping[str, str]) -> _Doc:
    text = _TEMPLATES[what]
    data = _yaml().load(text)
    for position, (key, value) in enumerate(keys.items()):
        data.insert(position, key, value)
    return _Doc(path, "", data, what, created=True)


def _indent_of(doc: _Doc) -> tuple[int, int, int]:
    """The indentation that reproduces the file (call before changing `doc.data`)."""
    if doc.created:
        return _DEFAULT_INDENT[doc.what]
    best, score = _DEFAULT_INDENT[doc.what], -1
    original = doc.text.split("\n")
    for indent in (_DEFAULT_INDENT[doc.what], *_INDENTS):
        dumped = _dump(doc.data, indent)
        if dumped == doc.text:
            return indent
        same = sum(a == b for a, b in zip(dumped.split("\n"), original, strict=False))
        if same > score:
            best, score = indent, same
    return best


def _dump(data: Any, indent: tuple[int, int, int]) -> str:
    buffer = io.StringIO()
    _yaml(indent).dump(data, buffer)
    return buffer.getvalue()


def _render(doc: _Doc, indent: tuple[int, int, int], faithful: Callable[[Any], bool]) -> str:
    """The new text of a changed file: dumped, items separated like the original, checked."""
    expected = _plain(doc.data)
    dumped = _dump(doc.data, indent)
    offset = indent[2]
    separated = doc.created or _separated(doc.text, offset)
    tidy = _tidy_items(dumped, offset, separated)
    for text in (tidy, dumped):
        data = _yaml().load(text)
        if _plain(data) == expected and faithful(data):
            return text
    raise SheetError(f"{doc.path}: could not write the file faithfully; edit it in YAML instead")


def _is_item_line(line: str, offset: int) -> bool:
    return line[:offset] == " " * offset and line[offset : offset + 2] in ("- ", "-")


def _separated(text: str, offset: int) -> bool:
    """Whether the top-level items are separated by blank lines (True with fewer than 2 items)."""
    lines = text.split("\n")
    items = [index for index, line in enumerate(lines) if _is_item_line(line, offset)]
    if len(items) < 2:
        return True
    for index in items[1:]:
        above = index - 1
        while above >= 0 and lines[above].lstrip().startswith("#"):
            above -= 1
        if above >= 0 and not lines[above].strip():
            return True
    return False


def _tidy_items(text: str, offset: int, separated: bool) -> str:
    """One blank line before each top-level item after the first (if the file had them)."""
    result: list[str] = []
    first = True
    for line in text.split("\n"):
        if _is_item_line(line, offset):
            if not first and separated:
                above = len(result)
                while above > 0 and result[above - 1].lstrip().startswith("#"):
                    above -= 1
                if above > 0 and result[above - 1].strip():
                    result.insert(above, "")
            first = False
        result.append(line)
    return "\n".join(result).rstrip("\n") + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return [(str(key), _plain(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, str):
        return str(value)
    return value


# ----------------------------------------------------------------------------- NLU files


def _nlu_items(data: Any, shown: str) -> list[tuple[str, list[str], Any]]:
    """(intent, examples, item) for each `- intent:` item, in file order.

    Raises:
        SheetError: The file is not Rasa NLU YAML the sheet can represent.
    """
    if data is None:
        return []
    if not isinstance(data, Mapping):
        raise SheetError(f"{shown}:1: expected a mapping with nlu: (Rasa NLU YAML)")
    items = data.get("nlu")
    if items is None:
        return []
    if not isinstance(items, list):
        raise SheetError(f"{shown}:{_key_line(data, 'nlu')}: nlu: must be a list")
    result = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping) or "intent" not in item:
            continue
        line = _item_line(items, index)
        intent = item["intent"]
        if not isinstance(intent, str) or not intent.strip():
            raise SheetError(f"{shown}:{line}: the intent needs a name")
        result.append((intent.strip(), _examples(item, shown, line), item))
    return result


def _examples(item: Any, shown: str, line: int) -> list[str]:
    value = item.get("examples")
    if value is None:
        return []
    if isinstance(value, list):  # the `- text: ...` form with metadata
        texts = []
        for example in value:
            text = example.get("text") if isinstance(example, Mapping) else None
            if not isinstance(text, str) or not text.strip():
                raise SheetError(f"{shown}:{line}: each example of the list needs a text:")
            texts.append(text.strip())
        return texts
    if not isinstance(value, str):
        raise SheetError(f"{shown}:{line}: examples: must be a | block of '- ' lines")
    start = _value_line(item, "examples", line)
    examples = []
    for number, raw in enumerate(value.split("\n"), start=start + 1):
        text = raw.strip()
        if not text:
            continue
        if not text.startswith("-"):
            raise SheetError(
                f"{shown}:{number}: the example line {text!r} does not start with '- ' "
                "(Rasa ignores it and every line after it): fix the YAML first"
            )
        examples.append(text[1:].strip())
    return examples


def _merged_intents(items: Iterable[tuple[str, list[str], Any]]) -> dict[str, list[str]]:
    merged: dict[str, list[str]] = {}
    for intent, examples, _item in items:
        merged.setdefault(intent, []).extend(examples)
    return merged


def _apply_nlu(data: Any, want: Mapping[str, list[str]]) -> None:
    """Changes the `nlu:` list in place: intents in sheet order where the first one was."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    items = data.get("nlu")
    if not isinstance(items, list):
        items = CommentedSeq()
        data["nlu"] = items
    before: list[Any] = []
    after: list[Any] = []
    first: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for item in items:
        if isinstance(item, Mapping) and "intent" in item:
            name = str(item["intent"]).strip()
            first.setdefault(name, item)
            counts[name] = counts.get(name, 0) + 1
        else:
            (after if first else before).append(item)
    intents = []
    for intent, examples in want.items():
        item = first.get(intent)
        if item is None:
            item = CommentedMap()
            item["intent"] = intent
            item["examples"] = _examples_block(examples)
        elif counts[intent] > 1 or _examples(item, "", 0) != examples:
            _set_examples(item, examples)
        intents.append(item)
    new = [*before, *intents, *after]
    if [id(item) for item in new] != [id(item) for item in items]:
        items.clear()
        items.extend(new)
    _block_style(items)


def _block_style(items: Any) -> None:
    """A `[]` list (of a template or an emptied file) that gets items is written as a block."""
    if items and items.fa.flow_style():
        items.fa.set_block_style()


def _examples_block(examples: Sequence[str]) -> Any:
    from ruamel.yaml.scalarstring import LiteralScalarString

    return LiteralScalarString("".join(f"- {example}\n" for example in examples))


def _set_examples(item: Any, examples: Sequence[str]) -> None:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    current = item.get("examples")
    if not isinstance(current, list):
        item["examples"] = _examples_block(examples)
        return
    unused = list(current)  # the `- text:` form: keep each example's metadata
    kept = CommentedSeq()
    for example in examples:
        node = next(
            (n for n in unused if isinstance(n, Mapping) and str(n.get("text")).strip() == example),
            None,
        )
        if node is None:
            node = CommentedMap()
            node["text"] = example
        else:
            unused.remove(node)
        kept.append(node)
    item["examples"] = kept


# ----------------------------------------------------------------------------- knowledge files


def _knowledge_model(data: Any, stem: str, shown: str) -> tuple[str, list[_Entry]]:
    """The file's topic and its entries (topic filled in), as the sheet shows them.

    Raises:
        SheetError: The file is not a knowledge topic file the sheet can represent.
    """
    if data is None:
        return stem, []
    if not isinstance(data, Mapping):
        raise SheetError(f"{shown}:1: expected a mapping with topic: and entries:")
    topic = _scalar(data.get("topic")) or stem
    entries = data.get("entries")
    if entries is None:
        return topic, []
    if not isinstance(entries, list):
        raise SheetError(f"{shown}:{_key_line(data, 'entries')}: entries: must be a list")
    result = []
    for index, raw in enumerate(entries):
        if not isinstance(raw, Mapping) or not _scalar(raw.get("id")):
            raise SheetError(f"{shown}:{_item_line(entries, index)}: each entry needs an id:")
        result.append(_entry_of(raw, topic))
    return topic, result


def _entry_of(raw: Mapping[str, Any], topic: str) -> _Entry:
    return _Entry(
        id=_scalar(raw.get("id")),
        topic=_scalar(raw.get("topic")) or topic,
        language=_scalar(raw.get("language")),
        question=_scalar(raw.get("question")),
        alt_questions=_texts(raw.get("alt_questions")),
        answer=_block_text(_text(raw.get("answer"))),
        tags=_texts(raw.get("tags")),
        link=_scalar(raw.get("link")),
        updated_at=_scalar(raw.get("updated_at")),
    )


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _scalar(value: Any) -> str:
    return _text(value).strip()


def _texts(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    return tuple(text for text in (_scalar(item) for item in items) if text)


def _apply_knowledge(data: Any, topic: str, want: Sequence[_Entry], stem: str) -> None:
    """Changes the file's topic and entries in place; unchanged entries keep their nodes."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if (_scalar(data.get("topic")) or stem) != topic:
        if "topic" in data:
            data["topic"] = topic
        else:
            data.insert(0, "topic", topic)
    entries = data.get("entries")
    if not isinstance(entries, list):
        entries = CommentedSeq()
        data["entries"] = entries
    by_id: dict[str, Any] = {}
    for raw in entries:
        by_id.setdefault(_scalar(raw.get("id")), raw)
    new = []
    for entry in want:
        node = by_id.get(entry.id)
        if node is None:
            node = CommentedMap()
            node["id"] = entry.id
        _update_entry(node, entry, topic)
        new.append(node)
    if [id(node) for node in new] != [id(node) for node in entries]:
        entries.clear()
        entries.extend(new)
    _block_style(entries)


def _update_entry(node: Any, entry: _Entry, topic: str) -> None:
    """Sets the fields whose value differs; an empty optional field is removed."""
    current = _entry_of(node, topic)
    wanted_topic = "" if entry.topic == topic else entry.topic
    if _scalar(node.get("topic")) != wanted_topic:
        _set_field(node, "topic", wanted_topic)
    for name in ("language", "question", "alt_questions", "answer", "tags", "link", "updated_at"):
        if getattr(current, name) != getattr(entry, name):
            _set_field(node, name, getattr(entry, name))


def _set_field(node: Any, key: str, value: str | tuple[str, ...]) -> None:
    if not value:
        if key in node:
            del node[key]
        return
    new = _node_value(key, value, node.get(key), key in node)
    if key in node:
        node[key] = new
        return
    rank = _ENTRY_KEYS.index(key)
    position = 0
    for index, existing in enumerate(node):
        if existing in _ENTRY_KEYS and _ENTRY_KEYS.index(existing) < rank:
            position = index + 1
    node.insert(position, key, new)


def _node_value(key: str, value: str | tuple[str, ...], old: Any, existed: bool) -> Any:
    from ruamel.yaml.comments import CommentedSeq
    from ruamel.yaml.scalarstring import LiteralScalarString

    if isinstance(value, tuple):
        sequence = CommentedSeq(value)
        old_flow = isinstance(old, CommentedSeq) and old.fa.flow_style()
        if old_flow or (key == "tags" and not existed):
            sequence.fa.set_flow_style()
        return sequence
    if key == "answer":
        if isinstance(old, LiteralScalarString) or "\n" in value or not existed:
            keep_newline = not isinstance(old, str) or old.endswith("\n")
            return LiteralScalarString(value + ("\n" if keep_newline else ""))
        return value
    if key == "updated_at" and _ISO_DATE.match(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return value
    return value


def _key_line(data: Any, key: str) -> int:
    try:
        return int(data.lc.key(key)[0]) + 1
    except (AttributeError, KeyError, TypeError):
        return 1


def _value_line(data: Any, key: str, fallback: int) -> int:
    try:
        return int(data.lc.value(key)[0]) + 1
    except (AttributeError, KeyError, TypeError):
        return fallback


def _item_line(items: Any, index: int) -> int:
    try:
        return int(items.lc.item(index)[0]) + 1
    except (AttributeError, KeyError, TypeError):
        return 1
