"""Knowledge topic files as the sheet sees them: entries, read and changed in place."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from bot.editor.spreadsheet.model import SheetEntry, SheetError
from bot.editor.spreadsheet.round_trip import block_style, item_line, key_line

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


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def knowledge_model(data: Any, stem: str, shown: str) -> tuple[str, list[SheetEntry]]:
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
        raise SheetError(f"{shown}:{key_line(data, 'entries')}: entries: must be a list")
    result = []
    for index, raw in enumerate(entries):
        if not isinstance(raw, Mapping) or not _scalar(raw.get("id")):
            raise SheetError(f"{shown}:{item_line(entries, index)}: each entry needs an id:")
        result.append(_entry_of(raw, topic))
    return topic, result


def _entry_of(raw: Mapping[str, Any], topic: str) -> SheetEntry:
    return SheetEntry(
        id=_scalar(raw.get("id")),
        topic=_scalar(raw.get("topic")) or topic,
        language=_scalar(raw.get("language")),
        question=_scalar(raw.get("question")),
        alt_questions=_texts(raw.get("alt_questions")),
        answer=block_text(_text(raw.get("answer"))),
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


def block_text(text: str) -> str:
    """A multi-line text as compared and stored: no trailing spaces, no blank edges."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def apply_knowledge(data: Any, topic: str, want: Sequence[SheetEntry], stem: str) -> None:
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
    block_style(entries)


def _update_entry(node: Any, entry: SheetEntry, topic: str) -> None:
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
