"""Exporting NLU examples and knowledge entries to an XLSX workbook or a CSV file.

Cells that a spreadsheet program could read as a formula (starting with = + - @ tab or CR:
customer texts end up in NLU examples) are written with a leading apostrophe
(`model.neutralise`); the import removes exactly that one (`model.restore`).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from bot.core.files import replace_file
from bot.core.paths import shown_path
from bot.core.settings import Settings
from bot.editor.spreadsheet.knowledge_files import knowledge_model
from bot.editor.spreadsheet.model import (
    COLUMNS,
    TABLES,
    SheetEntry,
    SheetError,
    What,
    neutralise,
)
from bot.editor.spreadsheet.nlu_files import nlu_items
from bot.editor.spreadsheet.round_trip import data_files, load_doc

if TYPE_CHECKING:
    from openpyxl.cell.cell import Cell

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
            for path in data_files(settings.nlu_dir):
                data = load_doc(path, "nlu").data
                for intent, examples, _node in nlu_items(data, shown_path(path, (root,))):
                    rows.extend((path.name, intent, example) for example in examples)
        else:
            for path in data_files(settings.knowledge_source_dir):
                data = load_doc(path, "knowledge").data
                _topic, entries = knowledge_model(data, path.stem, shown_path(path, (root,)))
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
        write: Callable[[Path], None] = partial(_write_csv, columns=COLUMNS[what], rows=rows)
    else:
        write = partial(_write_xlsx, tables=tables)
    try:
        replace_file(out, write)
    except OSError as error:
        raise SheetError(f"{out}: cannot write it ({error})") from error


def _entry_row(file: str, entry: SheetEntry) -> tuple[str, ...]:
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
        writer.writerows([neutralise(value) for value in row] for row in rows)


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
                where = f"{what} row {number} ({row[0]}), column {name}"
                _put_text(cell, neutralise(value), where)
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
    cell.data_type = "s"  # a text starting with "=" stays text (and `neutralise` adds a "'")
    cell.number_format = "@"
    return cell
