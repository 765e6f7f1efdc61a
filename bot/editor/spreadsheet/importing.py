"""Importing a sheet: plan each data file's new text, validate, then write them all or none."""

from __future__ import annotations

import contextlib
import difflib
import os
import shutil
import stat
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from bot.core.files import replace_file, replace_text
from bot.core.paths import shown_path
from bot.core.settings import Settings
from bot.editor.spreadsheet.cells import check_header, read_spreadsheet
from bot.editor.spreadsheet.knowledge_files import apply_knowledge, knowledge_model
from bot.editor.spreadsheet.model import FileChange, ImportSummary, SheetEntry, SheetError, What
from bot.editor.spreadsheet.nlu_files import apply_nlu, merged_intents, nlu_items
from bot.editor.spreadsheet.round_trip import data_files, indent_of, load_doc, new_doc, render
from bot.editor.spreadsheet.rows import (
    DEFAULT_DOMAIN,
    domain_intents,
    knowledge_rows_by_file,
    nlu_rows_by_file,
    refuse_empty,
)


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
    tables = {table.what: table for table in read_spreadsheet(path, what)}
    for table in tables.values():
        check_header(table)
    warnings: list[str] = []
    problems: list[str] = []
    nlu_table, knowledge_table = tables.get("nlu"), tables.get("knowledge")
    wanted_nlu = wanted_knowledge = None
    if nlu_table is not None:
        wanted_nlu = nlu_rows_by_file(nlu_table, domain_intents(domain, warnings), problems)
    if knowledge_table is not None:
        wanted_knowledge = knowledge_rows_by_file(knowledge_table, problems)
    if problems:
        raise SheetError(problems)
    root = settings.data_dir.parent
    plans: list[_Plan] = []
    if nlu_table is not None and wanted_nlu is not None:
        refuse_empty(nlu_table, wanted_nlu, settings.nlu_dir)
        plans.extend(_plan_nlu(settings.nlu_dir, wanted_nlu, root))
    if knowledge_table is not None and wanted_knowledge is not None:
        folder = settings.knowledge_source_dir
        refuse_empty(knowledge_table, wanted_knowledge, folder)
        knowledge_plans = _plan_knowledge(folder, wanted_knowledge, root)
        _validate_knowledge(folder, knowledge_plans, root)  # before anything is written
        plans.extend(knowledge_plans)
    changed = [plan for plan in plans if plan.change is not None]
    if not dry_run:
        _write_plans(changed)
    return ImportSummary(
        changes=tuple(plan.change for plan in changed if plan.change is not None),
        unchanged=tuple(plan.path for plan in plans if plan.change is None),
        warnings=tuple(warnings),
        dry_run=dry_run,
        root=root,
    )


@dataclass(frozen=True)
class _Plan:
    change: FileChange | None
    path: Path
    text: str | None = None


def _plan_nlu(folder: Path, wanted: Mapping[str, dict[str, list[str]]], root: Path) -> list[_Plan]:
    existing = {path.name: path for path in data_files(folder)}
    plans = []
    for name in sorted(existing.keys() | wanted.keys()):
        want = wanted.get(name, {})
        path = existing.get(name, folder / name)
        doc = load_doc(path, "nlu") if name in existing else new_doc(path, "nlu", {})
        have = merged_intents(nlu_items(doc.data, shown_path(path, (root,))))
        if not doc.created and list(have.items()) == list(want.items()):
            plans.append(_Plan(None, path))
            continue
        indent = indent_of(doc)
        apply_nlu(doc.data, want)
        text = render(
            doc, indent, partial(_nlu_faithful, shown=shown_path(path, (root,)), want=want)
        )
        added, changed, removed = _nlu_counts(have, want)
        change = FileChange(path, "nlu", doc.created, added, changed, removed, now_empty=not want)
        plans.append(_Plan(change, path, text))
    return plans


def _plan_knowledge(
    folder: Path, wanted: Mapping[str, list[SheetEntry]], root: Path
) -> list[_Plan]:
    existing = {path.name: path for path in data_files(folder)}
    plans = []
    for name in sorted(existing.keys() | wanted.keys()):
        rows = wanted.get(name, [])
        path = existing.get(name, folder / name)
        shown = shown_path(path, (root,))
        if name in existing:
            doc = load_doc(path, "knowledge")
            have_topic, have = knowledge_model(doc.data, path.stem, shown)
            topic = _file_topic(have_topic, rows, path.stem)
        else:
            topic = _file_topic(None, rows, path.stem)
            doc = new_doc(path, "knowledge", {"topic": topic})
            have_topic, have = topic, []
        want = [replace(entry, topic=entry.topic or topic) for entry in rows]
        if not doc.created and have_topic == topic and have == want:
            plans.append(_Plan(None, path))
            continue
        indent = indent_of(doc)
        apply_knowledge(doc.data, topic, want, path.stem)
        faithful = partial(_knowledge_faithful, stem=path.stem, shown=shown, model=(topic, want))
        text = render(doc, indent, faithful)
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
    return list(merged_intents(nlu_items(data, shown)).items()) == list(want.items())


def _knowledge_faithful(
    data: Any, stem: str, shown: str, model: tuple[str, list[SheetEntry]]
) -> bool:
    return knowledge_model(data, stem, shown) == model


def _file_topic(current: str | None, rows: Sequence[SheetEntry], stem: str) -> str:
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
            real = shown_path(folder / error.path.name, (root,))
            where = f"{real}:{error.line}" if error.line is not None else real
            raise SheetError(
                f"{where}: {error.reason} (in the knowledge files the import would write; "
                "fix the row in the sheet: nothing was written)"
            ) from error


def _write_plans(plans: Sequence[_Plan]) -> None:
    """Replaces every changed file, all of them or none.

    Each file is replaced atomically (`replace_text`); when one cannot be written, the files
    already replaced get their old content back and the files created are removed.
    """
    done: list[tuple[Path, bytes | None]] = []
    try:
        for plan in plans:
            if plan.text is None:
                continue
            plan.path.parent.mkdir(parents=True, exist_ok=True)
            before = plan.path.read_bytes() if plan.path.exists() else None
            replace_text(plan.path, plan.text)
            done.append((plan.path, before))
            if before is None:
                os.chmod(plan.path, _new_file_mode(plan.path))
    except OSError as error:
        for path, content in reversed(done):
            with contextlib.suppress(OSError):
                _restore(path, content)
        raise SheetError(f"cannot write the data files ({error}); nothing was written") from error


def _restore(path: Path, content: bytes | None) -> None:
    """Puts a file's old content back (removes it when it did not exist)."""
    if content is None:
        path.unlink(missing_ok=True)
        return

    def write(temporary: Path) -> None:
        temporary.write_bytes(content)

    replace_file(path, write)


def _new_file_mode(path: Path) -> int:
    """A new data file's permissions: those of the folder's other data files (else 0644)."""
    for candidate in sorted(path.parent.glob("*.yml")):
        if candidate.is_file() and candidate != path:
            return stat.S_IMODE(candidate.stat().st_mode)
    return 0o644
