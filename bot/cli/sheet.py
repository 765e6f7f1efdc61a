"""The `kefu sheet` commands: NLU examples and knowledge entries to and from XLSX or CSV."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import click

from bot.core.settings import get_settings
from bot.editor.spreadsheet.export import export_tables, tables_for, write_spreadsheet
from bot.editor.spreadsheet.importing import import_workbook
from bot.editor.spreadsheet.model import TABLES, SheetError, What

EXIT_BAD_INPUT = 2
"""Exit code of a refused export or import (nothing was written)."""


@click.group()
def sheet() -> None:
    """Edit NLU examples and knowledge entries in a spreadsheet (XLSX or CSV).

    Export, edit in Excel, LibreOffice or WPS, then import: only the data files whose content
    changed are rewritten, and an export followed by an import changes nothing. Prefer .xlsx:
    opening a CSV in Excel turns long numbers and dates into something else.
    """


@sheet.command("export")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--what",
    type=click.Choice(TABLES),
    help="Only this table (required for a .csv, which holds one table).",
)
def export_command(out: Path, what: str | None) -> None:
    """Write the data to OUT: an .xlsx with sheets nlu and knowledge, or a .csv with --what."""
    settings = get_settings()
    try:
        tables = export_tables(settings, tables_for(out, cast("What | None", what)))
        write_spreadsheet(out, tables)
    except SheetError as error:
        _refuse(error)
    counts = ", ".join(f"{len(rows)} {name} rows" for name, rows in tables.items())
    click.echo(f"Wrote {out} ({counts}).")


@sheet.command("import")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--what",
    type=click.Choice(TABLES),
    help="Only this table (default: every sheet of an .xlsx; a .csv's kind is told by its header).",
)
@click.option("--dry-run", is_flag=True, help="Check and count the changes, write nothing.")
def import_command(source: Path, what: str | None, dry_run: bool) -> None:
    """Bring the data files in line with SOURCE (.xlsx or .csv); exit 2 on bad input.

    The sheet is the whole truth for its table: a row removed removes the example or entry.
    Files whose content does not change are not touched.
    """
    try:
        summary = import_workbook(
            get_settings(), source, cast("What | None", what), dry_run=dry_run
        )
    except SheetError as error:
        _refuse(error)
    for warning in summary.warnings:
        click.echo(f"warning: {warning}", err=True)
    for line in summary.lines():
        click.echo(line)


def _refuse(error: SheetError) -> None:
    click.echo(f"error: {error}", err=True)
    click.echo("Nothing was written.", err=True)
    raise SystemExit(EXIT_BAD_INPUT) from error
