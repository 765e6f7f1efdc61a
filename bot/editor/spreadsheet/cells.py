"""Reading a spreadsheet back: its tables, rows and cells as text, each with its place."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.editor.spreadsheet.model import (
    COLUMNS,
    KNOWLEDGE_COLUMNS,
    NLU_COLUMNS,
    TABLES,
    SheetError,
    What,
    restore,
)


@dataclass(frozen=True)
class SheetRow:
    """A non-empty row of a sheet: its 1-based number and its cells by column name."""

    number: int
    cells: Mapping[str, str]


@dataclass(frozen=True)
class SheetTable:
    """One sheet as read: its header and non-empty rows, and where it came from."""

    what: What
    source: str
    sheet: str | None
    header: tuple[str, ...]
    rows: tuple[SheetRow, ...]

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


@dataclass(frozen=True)
class _Bad:
    """A cell that holds no usable value (a formula or an error) and why."""

    problem: str


def read_spreadsheet(path: Path, what: What | None = None) -> list[SheetTable]:
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


def _read_xlsx(path: Path, what: What | None) -> list[SheetTable]:
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
    if isinstance(value, str):  # the export's formula escape removed first
        return restore(value).replace("\r\n", "\n").replace("\r", "\n")
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


def _read_csv(path: Path, what: What | None) -> list[SheetTable]:
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
) -> SheetTable:
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
                located = SheetTable(what, source, sheet, header, ())
                problems.append(f"{located.where(number, name)} {value.problem}")
                value = ""
            cells[name] = value
        if any(value.strip() for value in cells.values()):
            table_rows.append(SheetRow(number, cells))
    if problems:
        raise SheetError(problems)
    return SheetTable(what, source, sheet, header, tuple(table_rows))


def check_header(table: SheetTable) -> None:
    """Refuses a table that lacks one of its columns.

    Raises:
        SheetError: A column is missing (the message lists the columns found).
    """
    missing = [name for name in COLUMNS[table.what] if name not in table.header]
    if missing:
        found = ", ".join(name for name in table.header if name) or "none"
        raise SheetError(
            f"{table.name}: missing the columns {', '.join(missing)} (columns found: {found}); "
            f"the {table.what} columns are {', '.join(COLUMNS[table.what])}"
        )
