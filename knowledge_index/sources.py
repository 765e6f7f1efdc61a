"""Knowledge sources: YAML topic files and JSON Lines, loaded into validated `KnowledgeEntry`s."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from knowledge_index.errors import (
    DuplicateEntryError,
    EmptyKnowledgeBaseError,
    InvalidEntryError,
    SourceEncodingError,
    SourceSyntaxError,
)

Language = Literal["zh", "en"]
LineOf = Callable[[str], int | None]

YAML_SUFFIXES = (".yml", ".yaml")
JSONL_SUFFIXES = (".jsonl",)

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_ID = re.compile(r"^[\w.:-]+$")
_FIELDS = frozenset(
    {"id", "language", "question", "alt_questions", "answer", "tags", "link", "updated_at"}
)


@dataclass(frozen=True)
class KnowledgeEntry:
    """One question-answer entry of the knowledge base.

    Attributes:
        id: Unique id across all sources.
        question: The canonical question.
        answer: The answer text shown to the customer.
        alt_questions: Other phrasings of the question; each is indexed too.
        language: `zh` or `en`.
        topic: The topic (YAML file) it belongs to.
        tags: Free tags.
        link: Optional help-centre link.
        updated_at: ISO date of the last change, if given.
        origin: `file:line` where the entry was defined.
    """

    id: str
    question: str
    answer: str
    alt_questions: tuple[str, ...] = ()
    language: Language = "zh"
    topic: str = ""
    tags: tuple[str, ...] = ()
    link: str | None = None
    updated_at: str | None = None
    origin: str = field(default="", compare=False)

    @property
    def questions(self) -> tuple[str, ...]:
        """The question followed by its distinct alternative phrasings."""
        return tuple(dict.fromkeys((self.question, *self.alt_questions)))

    def to_dict(self) -> dict[str, Any]:
        """The entry as a JSON-ready dict."""
        data = asdict(self)
        data["alt_questions"] = list(self.alt_questions)
        data["tags"] = list(self.tags)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KnowledgeEntry:
        """Rebuilds an entry written by `to_dict` (no validation: trusted artifacts only)."""
        return cls(
            id=data["id"],
            question=data["question"],
            answer=data["answer"],
            alt_questions=tuple(data.get("alt_questions", ())),
            language=data.get("language", "zh"),
            topic=data.get("topic", ""),
            tags=tuple(data.get("tags", ())),
            link=data.get("link"),
            updated_at=data.get("updated_at"),
            origin=data.get("origin", ""),
        )


def guess_language(text: str) -> Language:
    """`zh` when the text contains CJK ideographs, else `en`."""
    return "zh" if _CJK.search(text) else "en"


def read_text(path: Path) -> str:
    """Reads a UTF-8 file strictly (a BOM is allowed).

    Raises:
        SourceEncodingError: The bytes are not UTF-8, or hold U+FFFD from a lossy conversion.
    """
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise SourceEncodingError(
            path, line, f"not valid UTF-8 (byte 0x{raw[error.start]:02x}); save the file as UTF-8"
        ) from error
    if "\ufffd" in text:
        line = text[: text.index("\ufffd")].count("\n") + 1
        raise SourceEncodingError(
            path, line, "U+FFFD replacement character: the text was converted lossily"
        )
    return text


def load_yaml_file(path: Path) -> list[KnowledgeEntry]:
    """Loads one YAML topic file (`topic:` and `entries:`).

    Raises:
        SourceError: A subclass naming the file and line of the first problem.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    text = read_text(path)
    try:
        data = YAML(typ="rt", pure=True).load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        raise SourceSyntaxError(path, line, f"bad YAML: {error.problem or error}") from error
    except YAMLError as error:
        raise SourceSyntaxError(path, None, f"bad YAML: {error}") from error
    if data is None:
        return []
    if not isinstance(data, Mapping) or "entries" not in data:
        raise SourceSyntaxError(path, 1, "expected a mapping with 'topic' and 'entries'")
    topic = data.get("topic", path.stem)
    if not isinstance(topic, str) or not topic.strip():
        raise InvalidEntryError(path, _key_line(data, "topic"), "'topic' must be a string")
    raw_entries = data["entries"]
    if raw_entries is None:
        return []
    if not isinstance(raw_entries, list):
        raise InvalidEntryError(path, _key_line(data, "entries"), "'entries' must be a list")
    entries = []
    for index, raw in enumerate(raw_entries):
        line = _item_line(raw_entries, index)
        if not isinstance(raw, Mapping):
            raise InvalidEntryError(path, line, "each entry must be a mapping")
        entries.append(_entry(raw, path, line, topic, _key_lines(raw, line)))
    return entries


def load_jsonl_file(path: Path) -> list[KnowledgeEntry]:
    """Loads a JSON Lines KB: one `{"id", "question", "alt_questions", "answer"}` per line.

    Raises:
        SourceError: A subclass naming the file and line of the first problem.
    """
    return [
        _entry(raw, path, line, path.stem, _constant_line(line))
        for line, raw in read_json_lines(path)
    ]


def load_entries(source: Path) -> list[KnowledgeEntry]:
    """Loads a YAML folder, one YAML file or one JSONL file, checking ids are unique.

    Args:
        source: A folder of `*.yml`/`*.yaml` topic files, or a single `.yml`/`.yaml`/`.jsonl` file.

    Returns:
        The entries in file order.

    Raises:
        SourceError: A subclass naming the file and line of the first problem.
    """
    entries: list[KnowledgeEntry] = []
    seen: dict[str, str] = {}
    for path in source_files(source):
        loaded = load_jsonl_file(path) if path.suffix in JSONL_SUFFIXES else load_yaml_file(path)
        for entry in loaded:
            if entry.id in seen:
                file, _, line = entry.origin.rpartition(":")
                raise DuplicateEntryError(
                    file,
                    int(line),
                    f"duplicate id {entry.id!r} (first defined at {seen[entry.id]})",
                )
            seen[entry.id] = entry.origin
            entries.append(entry)
    if not entries:
        raise EmptyKnowledgeBaseError(source, None, "no knowledge entries found")
    return entries


def source_files(source: Path) -> list[Path]:
    """The source files a path stands for, sorted.

    Raises:
        SourceError: The path does not exist or is not a knowledge source.
    """
    if source.is_dir():
        return sorted(p for p in source.iterdir() if p.suffix in YAML_SUFFIXES and p.is_file())
    if source.is_file() and source.suffix in (*YAML_SUFFIXES, *JSONL_SUFFIXES):
        return [source]
    if not source.exists():
        raise EmptyKnowledgeBaseError(source, None, "no such file or folder")
    raise SourceSyntaxError(source, None, "expected a folder, a .yml/.yaml or a .jsonl file")


def source_fingerprint(source: Path) -> str:
    """A SHA-256 over the names and bytes of the source files."""
    digest = hashlib.sha256()
    for path in source_files(source):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def entries_fingerprint(entries: Iterable[KnowledgeEntry]) -> str:
    """A SHA-256 over the entries' content (for sources that are not files)."""
    digest = hashlib.sha256()
    for entry in entries:
        payload = {k: v for k, v in entry.to_dict().items() if k != "origin"}
        digest.update(json.dumps(payload, ensure_ascii=False, sort_keys=True).encode())
    return digest.hexdigest()


def read_json_lines(path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """Yields `(line number, object)` for each non-blank line of a JSON Lines file.

    Raises:
        SourceError: Bad encoding, bad JSON or a line that is not an object.
    """
    text = read_text(path)
    for number, raw_line in enumerate(text.splitlines(), start=1):
        if not raw_line.strip():
            continue
        try:
            data = json.loads(raw_line)
        except json.JSONDecodeError as error:
            raise SourceSyntaxError(path, number, f"bad JSON: {error.msg}") from error
        if not isinstance(data, dict):
            raise SourceSyntaxError(path, number, "each line must be a JSON object")
        yield number, data


def _constant_line(line: int) -> LineOf:
    def line_of(_key: str) -> int | None:
        return line

    return line_of


def _key_lines(data: Any, fallback: int | None) -> LineOf:
    def line_of(key: str) -> int | None:
        return _key_line(data, key) or fallback

    return line_of


def _key_line(data: Any, key: str) -> int | None:
    try:
        return int(data.lc.key(key)[0]) + 1
    except (AttributeError, KeyError, TypeError):
        return None


def _item_line(items: Any, index: int) -> int | None:
    try:
        return int(items.lc.item(index)[0]) + 1
    except (AttributeError, KeyError, TypeError):
        return None


def _entry(
    raw: Mapping[str, Any], path: Path, line: int | None, topic: str, line_of: LineOf
) -> KnowledgeEntry:
    unknown = sorted(set(map(str, raw)) - _FIELDS - {"topic"})
    if unknown:
        raise InvalidEntryError(path, line_of(unknown[0]), f"unknown field {unknown[0]!r}")
    entry_id = raw.get("id")
    if isinstance(entry_id, int) and not isinstance(entry_id, bool):
        entry_id = str(entry_id)
    if not isinstance(entry_id, str) or not entry_id.strip():
        raise InvalidEntryError(path, line, "missing 'id'")
    if not _ID.match(entry_id):
        raise InvalidEntryError(path, line_of("id"), f"id {entry_id!r} has spaces or symbols")
    question = _required_text(raw, "question", entry_id, path, line, line_of)
    answer = _required_text(raw, "answer", entry_id, path, line, line_of)
    alt_questions = _texts(raw, "alt_questions", entry_id, path, line_of)
    tags = _texts(raw, "tags", entry_id, path, line_of)
    language = raw.get("language") or guess_language(question)
    if language not in ("zh", "en"):
        raise InvalidEntryError(
            path, line_of("language"), f"entry {entry_id!r}: language must be zh or en"
        )
    link = raw.get("link")
    if link is not None and not isinstance(link, str):
        raise InvalidEntryError(path, line_of("link"), f"entry {entry_id!r}: link must be text")
    updated = raw.get("updated_at")
    if isinstance(updated, dt.date):
        updated = updated.isoformat()
    elif updated is not None and not isinstance(updated, str):
        raise InvalidEntryError(
            path, line_of("updated_at"), f"entry {entry_id!r}: updated_at must be a date"
        )
    entry_topic = raw.get("topic", topic)
    return KnowledgeEntry(
        id=entry_id,
        question=question,
        answer=answer.strip(),
        alt_questions=alt_questions,
        language=language,
        topic=str(entry_topic),
        tags=tags,
        link=link,
        updated_at=updated,
        origin=f"{path}:{line if line is not None else 0}",
    )


def _required_text(
    raw: Mapping[str, Any],
    key: str,
    entry_id: str,
    path: Path,
    line: int | None,
    line_of: LineOf,
) -> str:
    value = raw.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidEntryError(
            path, line_of(key) if key in raw else line, f"entry {entry_id!r}: missing '{key}'"
        )
    if not isinstance(value, str):
        raise InvalidEntryError(path, line_of(key), f"entry {entry_id!r}: '{key}' must be text")
    return value.strip()


def _texts(
    raw: Mapping[str, Any], key: str, entry_id: str, path: Path, line_of: LineOf
) -> tuple[str, ...]:
    value = raw.get(key)
    if value is None:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise InvalidEntryError(path, line_of(key), f"entry {entry_id!r}: '{key}' must be a list")
    texts = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise InvalidEntryError(
                path, line_of(key), f"entry {entry_id!r}: '{key}' must hold non-empty texts"
            )
        texts.append(item.strip())
    return tuple(texts)
