"""ruamel.yaml round trip of data files: load, and dump a change with the file's own layout."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.editor.spreadsheet.model import YAML_SUFFIXES, SheetError, What

if TYPE_CHECKING:
    from ruamel.yaml import YAML

# (mapping, sequence, offset) indentations tried to reproduce a file byte for byte.
_INDENTS = ((2, 2, 0), (2, 4, 2), (4, 4, 2), (4, 6, 4), (4, 4, 0))


_DEFAULT_INDENT: dict[What, tuple[int, int, int]] = {"nlu": (2, 2, 0), "knowledge": (2, 4, 2)}


_TEMPLATES: dict[What, str] = {"nlu": 'version: "3.1"\n\nnlu: []\n', "knowledge": "entries: []\n"}


@dataclass
class DataDoc:
    """A data file loaded with ruamel.yaml's round trip."""

    path: Path
    text: str
    data: Any
    what: What
    created: bool = False


def data_files(folder: Path) -> list[Path]:
    """The folder's own `*.yml` / `*.yaml` files (not hidden ones, not sub-folders), sorted."""
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.iterdir()
        if path.suffix in YAML_SUFFIXES and not path.name.startswith(".") and path.is_file()
    )


def _yaml(indent: tuple[int, int, int] | None = None) -> YAML:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt", pure=True)
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold long lines
    if indent is not None:
        mapping, sequence, offset = indent
        yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def load_doc(path: Path, what: What) -> DataDoc:
    """Loads a data file for the round trip.

    Raises:
        SheetError: The file cannot be read or is not valid YAML (with its line).
    """
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
    return DataDoc(path, text, data, what)


def new_doc(path: Path, what: What, keys: Mapping[str, str]) -> DataDoc:
    """A data file to be created: the template of its kind, with `keys` first."""
    text = _TEMPLATES[what]
    data = _yaml().load(text)
    for position, (key, value) in enumerate(keys.items()):
        data.insert(position, key, value)
    return DataDoc(path, "", data, what, created=True)


def indent_of(doc: DataDoc) -> tuple[int, int, int]:
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


def render(doc: DataDoc, indent: tuple[int, int, int], faithful: Callable[[Any], bool]) -> str:
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


def block_style(items: Any) -> None:
    """A `[]` list (of a template or an emptied file) that gets items is written as a block."""
    if items and items.fa.flow_style():
        items.fa.set_block_style()


def key_line(data: Any, key: str) -> int:
    """The 1-based line of `key` in a loaded mapping (1 when unknown)."""
    try:
        return int(data.lc.key(key)[0]) + 1
    except (AttributeError, KeyError, TypeError):
        return 1


def value_line(data: Any, key: str, fallback: int) -> int:
    """The 1-based line where `key`'s value starts (`fallback` when unknown)."""
    try:
        return int(data.lc.value(key)[0]) + 1
    except (AttributeError, KeyError, TypeError):
        return fallback


def item_line(items: Any, index: int) -> int:
    """The 1-based line of a loaded sequence's item (1 when unknown)."""
    try:
        return int(items.lc.item(index)[0]) + 1
    except (AttributeError, KeyError, TypeError):
        return 1
