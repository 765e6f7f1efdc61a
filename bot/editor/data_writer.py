"""Writes reviewed questions into the editors' data files: validated, atomic, one at a time.

Knowledge topic files (`data/knowledge/<topic>.yml`) are changed with ruamel.yaml's
round-trip mode, so comments and the layout of the rest of the file stay as they are; a new
entry's `answer` is a literal block (`|`). NLU files (`data/nlu/*.yml`) get new lines inserted
into the intent's `examples: |` block as text. Every change is checked on a temporary copy
first (`knowledge_index.load_entries` for knowledge, a YAML parse for NLU); only then does the
new file replace the old one (`os.replace`). Writes are serialised per process (a lock) and
across processes (`flock` on the folder). Blocking: call from a worker thread.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import io
import os
import re
import shutil
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.core.files import replace_text
from bot.core.paths import shown_path
from bot.core.settings import PROJECT_ROOT
from bot.editor.text import normalize_text, wording_key
from kefu_shared.nlu_data import IntentBlock, NluExample, nlu_files, parse_nlu
from knowledge_index import KnowledgeEntry, SourceError, load_entries
from knowledge_index.sources import guess_language, source_files

DOMAIN_PATH = PROJECT_ROOT / "domain.yml"
"""The domain whose intents NLU examples may be added to."""
MAX_QUESTION = 300
MAX_ANSWER = 4000
MAX_TEXTS = 50
TOPIC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_ENTITY_MARKUP = re.compile(r"\[[^\]\n]*\]\s*[({][^)}\n]*[)}]")
_INTENT_LINE = re.compile(r"^(?P<indent>\s*)-\s+intent:\s*(?P<name>.+?)\s*$")
_ID_LINE = re.compile(r"^[ -]*id:\s*(?P<id>\S+)\s*$", re.MULTILINE)
_EXAMPLES_LINE = re.compile(r"^(?P<indent>\s*)examples:\s*\|[-+]?\s*(#.*)?$")
_LAYOUTS = ((2, 4, 2), (2, 2, 0), (4, 4, 2), (4, 6, 4), (4, 4, 0))
"""ruamel.yaml indentations (mapping, sequence, offset) tried to reproduce a file exactly."""

_lock = threading.Lock()


class DataWriteError(ValueError):
    """A decision cannot be written; the message says why (the editor's input, a 4xx)."""


class UnknownTarget(DataWriteError):
    """The topic file, the knowledge entry or the intent does not exist."""


class InvalidContent(DataWriteError):
    """An edited text is empty, too long or malformed."""


class ValidationFailed(DataWriteError):
    """The changed file would not load; nothing was written."""


@dataclass(frozen=True)
class NewEntry:
    """A knowledge entry an editor approved (the id is made when it is written)."""

    question: str
    answer: str
    alt_questions: tuple[str, ...] = ()
    language: str | None = None
    """`zh` or `en`; None guesses from the question."""


@dataclass(frozen=True)
class WriteResult:
    """What a write changed."""

    file: Path
    entry_id: str | None = None
    intent: str | None = None
    added: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        """For the decision record and JSON answers (file relative to the data's parent)."""
        return {
            "file": _shown(self.file),
            "entry_id": self.entry_id,
            "intent": self.intent,
            "added": list(self.added),
        }


def _shown(path: Path) -> str:
    """A data file (`<data>/<kind>/<file>`) as editors know it: `data/knowledge/returns.yml`."""
    return shown_path(path, path.parents[2:3])


# ---------------------------------------------------------------------- reading
def topic_files(source_dir: Path) -> list[str]:
    """The topic names (file stems) of the knowledge folder, sorted."""
    if not source_dir.is_dir():
        return []
    return sorted(p.stem for p in source_dir.glob("*.yml") if p.is_file())


def domain_intents(domain_path: Path = DOMAIN_PATH) -> list[str]:
    """The intents declared in the domain file (plain names or `name: {options}`)."""
    data = yaml.safe_load(domain_path.read_text(encoding="utf-8")) or {}
    names: list[str] = []
    for item in data.get("intents") or []:
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict):
            names.extend(str(key) for key in item)
    return names


def knowledge_entries(source_dir: Path) -> list[KnowledgeEntry]:
    """Every entry of the knowledge folder.

    Raises:
        ValidationFailed: The folder does not load as it is (fix it before adding to it).
    """
    try:
        return load_entries(source_dir)
    except SourceError as error:
        raise ValidationFailed(f"The knowledge base does not load: {_located(error)}") from error


# ---------------------------------------------------------------------- knowledge
def append_entry(
    source_dir: Path, topic: str, entry: NewEntry, today: dt.date | None = None
) -> WriteResult:
    """Appends a new entry to `<source_dir>/<topic>.yml`, with a new unique id.

    Raises:
        UnknownTarget: No such topic file (or the name is not a plain file name).
        InvalidContent: The question or answer is empty or too long.
        ValidationFailed: The result would not load.
    """
    path = _topic_path(source_dir, topic)
    question = _one_line(entry.question, "question")
    answer = _answer(entry.answer)
    alternatives = _distinct(
        [_one_line(text, "alternative question") for text in entry.alt_questions], {question}
    )
    language = entry.language or guess_language(question)
    if language not in ("zh", "en"):
        raise InvalidContent("The language must be zh or en.")
    with _locked(source_dir):
        entry_id = _new_id(topic, question, _ids_in(source_dir))
        document, dump = _round_trip(path)
        from ruamel.yaml.comments import CommentedMap, CommentedSeq
        from ruamel.yaml.scalarstring import LiteralScalarString

        entries = document.get("entries")
        if not isinstance(entries, CommentedSeq):
            raise ValidationFailed(f"{_shown(path)}: has no 'entries' list to add to.")

        new = CommentedMap()
        new["id"] = entry_id
        new["language"] = language
        new["question"] = question
        if alternatives:
            new["alt_questions"] = CommentedSeq(alternatives)
        new["answer"] = LiteralScalarString(answer + "\n")
        new["updated_at"] = today or dt.date.today()
        entries.append(new)
        if len(entries) > 1:
            entries.yaml_set_comment_before_after_key(len(entries) - 1, before="\n")
        _commit_knowledge(source_dir, path, dump(document))
    return WriteResult(path, entry_id=entry_id, added=(question, *alternatives))


def merge_questions(
    source_dir: Path, entry_id: str, questions: Sequence[str], today: dt.date | None = None
) -> WriteResult:
    """Adds `questions` (those it lacks) to the `alt_questions` of an existing entry.

    Raises:
        UnknownTarget: No entry has this id.
        InvalidContent: A question is empty or too long, or none is given.
        ValidationFailed: The result would not load.
    """
    texts = [_one_line(text, "question") for text in questions]
    if not texts:
        raise InvalidContent("Give at least one question to merge.")
    with _locked(source_dir):
        found = next((e for e in knowledge_entries(source_dir) if e.id == entry_id), None)
        if found is None:
            raise UnknownTarget(f"No knowledge entry has the id {entry_id!r}.")
        path = Path(found.origin.rpartition(":")[0])
        new = _distinct(texts, set(found.questions))
        if not new:
            return WriteResult(path, entry_id=entry_id)
        document, dump = _round_trip(path)
        raw: Any = next(
            (
                item
                for item in document.get("entries") or []
                if isinstance(item, dict) and str(item.get("id")) == entry_id
            ),
            None,
        )
        if raw is None:  # loaded from this file a moment ago: it changed meanwhile
            raise ValidationFailed(f"{_shown(path)}: entry {entry_id!r} is no longer there.")
        from ruamel.yaml.comments import CommentedSeq

        alternatives = raw.get("alt_questions")
        if alternatives is None:
            position = list(raw).index("question") + 1 if "question" in raw else len(raw)
            raw.insert(position, "alt_questions", CommentedSeq(new))
        else:
            alternatives.extend(new)
        if "updated_at" in raw:
            raw["updated_at"] = today or dt.date.today()
        _commit_knowledge(source_dir, path, dump(document))
    return WriteResult(path, entry_id=entry_id, added=tuple(new))


# ---------------------------------------------------------------------- NLU
def append_examples(
    nlu_dir: Path, intent: str, texts: Sequence[str], domain_path: Path = DOMAIN_PATH
) -> WriteResult:
    """Adds examples to `intent`'s `examples: |` block in the NLU file that holds it.

    Texts are compared as `kefu validate` compares examples (`normalize_text`: case, width,
    punctuation, symbols and blanks do not count): examples the intent has already are skipped.

    Raises:
        UnknownTarget: The intent is not in the domain, or no NLU file has its examples.
        InvalidContent: A text is empty, multi-line, too long, looks like entity markup, or is
            an example of another intent already.
        ValidationFailed: The result would not parse.
    """
    if intent not in domain_intents(domain_path):
        raise UnknownTarget(f"The domain has no intent {intent!r}.")
    cleaned = [_example(text) for text in texts]
    if not cleaned:
        raise InvalidContent("Give at least one example.")
    if len(cleaned) > MAX_TEXTS:
        raise InvalidContent(f"At most {MAX_TEXTS} examples at a time.")
    with _locked(nlu_dir):
        blocks, examples = _nlu_examples(nlu_dir)
        holder = next((block.path for block in blocks if block.intent == intent), None)
        if holder is None:
            raise UnknownTarget(
                f"No NLU file has examples of intent {intent!r}; add its block to data/nlu first."
            )
        owners = {normalize_text(e.text): (e.intent, e.path) for e in examples}
        new: list[str] = []
        for text in _distinct(cleaned, set(), key=normalize_text):
            owner = owners.get(normalize_text(text))
            if owner is None:
                new.append(text)
            elif owner[0] != intent:
                raise InvalidContent(
                    f"{text!r} is an example of intent {owner[0]!r} already ({_shown(owner[1])})."
                )
        if not new:
            return WriteResult(holder, intent=intent)
        text = _insert_examples(holder, holder.read_text(encoding="utf-8"), intent, new)
        _check_nlu(holder, text, intent, new)
        replace_text(holder, text)
    return WriteResult(holder, intent=intent, added=tuple(new))


def _nlu_examples(nlu_dir: Path) -> tuple[list[IntentBlock], list[NluExample]]:
    """Every intent block and example (entities stripped) of the folder's NLU files."""
    blocks: list[IntentBlock] = []
    examples: list[NluExample] = []
    for path in nlu_files(nlu_dir):
        try:
            found_blocks, found_examples = parse_nlu(path.read_text(encoding="utf-8"), path)
        except yaml.YAMLError as error:
            raise ValidationFailed(f"{_shown(path)}: bad YAML: {error}") from error
        blocks.extend(found_blocks)
        examples.extend(found_examples)
    return blocks, examples


def _insert_examples(path: Path, text: str, intent: str, new: Sequence[str]) -> str:
    """`text` with `new` lines at the end of `intent`'s examples block."""
    lines = text.splitlines(keepends=True)
    start = next(
        (
            index
            for index, line in enumerate(lines)
            if (match := _INTENT_LINE.match(line)) and match["name"].strip("'\"") == intent
        ),
        None,
    )
    if start is None:
        raise UnknownTarget(f"{_shown(path)}: no '- intent: {intent}' line.")
    item_indent = _indent(lines[start])
    key_line = None
    for index in range(start + 1, len(lines)):
        line = lines[index]
        if line.strip() and _indent(line) <= item_indent:
            break
        if _EXAMPLES_LINE.match(line):
            key_line = index
            break
    if key_line is None:
        raise ValidationFailed(
            f"{_shown(path)}:{start + 1}: intent {intent!r} has no 'examples: |' block to add to."
        )
    key_indent = _indent(lines[key_line])
    last = key_line
    example_indent: int | None = None
    for index in range(key_line + 1, len(lines)):
        line = lines[index]
        if not line.strip():
            continue
        if _indent(line) <= key_indent:
            break
        last = index
        if example_indent is None:
            example_indent = _indent(line)
    pad = " " * (example_indent if example_indent is not None else key_indent + 2)
    if not lines[last].endswith("\n"):
        lines[last] += "\n"
    lines[last + 1 : last + 1] = [f"{pad}- {example}\n" for example in new]
    return "".join(lines)


def _check_nlu(path: Path, text: str, intent: str, new: Sequence[str]) -> None:
    try:
        _, examples = parse_nlu(text, path)
    except yaml.YAMLError as error:
        raise ValidationFailed(f"{_shown(path)}: the result would not parse: {error}") from error
    have = [example.text.strip() for example in examples if example.intent == intent]
    missing = [example for example in new if example not in have]
    if missing:
        raise ValidationFailed(
            f"{_shown(path)}: after the insertion {missing[0]!r} is not an example of {intent!r}."
        )


# ---------------------------------------------------------------------- helpers
def _topic_path(source_dir: Path, topic: str) -> Path:
    if not TOPIC_NAME.match(topic):
        raise UnknownTarget(
            f"{topic!r} is not a topic file name (letters, digits, '-' and '_' only)."
        )
    path = source_dir / f"{topic}.yml"
    if not path.is_file():
        known = ", ".join(topic_files(source_dir)) or "none"
        raise UnknownTarget(f"No topic file {topic}.yml; choose one of: {known}.")
    return path


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFC", str(text))
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")


def _one_line(text: str, what: str) -> str:
    value = " ".join(_clean(text).split())
    if not value:
        raise InvalidContent(f"The {what} is empty.")
    if len(value) > MAX_QUESTION:
        raise InvalidContent(f"The {what} is longer than {MAX_QUESTION} characters.")
    return value


def _answer(text: str) -> str:
    lines = [line.replace("\t", "    ").rstrip() for line in _clean(text).splitlines()]
    value = "\n".join(lines).strip("\n")
    if not value.strip():
        raise InvalidContent("The answer is empty: write what the bot should say.")
    if len(value) > MAX_ANSWER:
        raise InvalidContent(f"The answer is longer than {MAX_ANSWER} characters.")
    return value


def _example(text: str) -> str:
    cleaned = _clean(text).strip()
    if "\n" in cleaned:
        raise InvalidContent("An example must be one line.")
    value = _one_line(cleaned, "example")
    if _ENTITY_MARKUP.search(value):
        raise InvalidContent(f"{value!r} looks like entity markup; add it in the YAML instead.")
    if value.startswith("/"):
        raise InvalidContent(f"{value!r} looks like a button payload, not a customer message.")
    return value


def _distinct(
    texts: Sequence[str], exclude: set[str], key: Callable[[str], str] = wording_key
) -> list[str]:
    """`texts` without those equal under `key` to an earlier one or to one of `exclude`."""
    seen = {key(text) for text in exclude}
    kept: list[str] = []
    for text in texts:
        if key(text) not in seen:
            seen.add(key(text))
            kept.append(text)
    return kept


def _new_id(topic: str, question: str, taken: set[str]) -> str:
    for attempt in range(1000):
        seed = f"{question}\0{attempt}" if attempt else question
        candidate = f"{topic}-{hashlib.sha1(seed.encode()).hexdigest()[:8]}"  # noqa: S324 (an id)
        if candidate not in taken:
            return candidate
    raise ValidationFailed("Could not make a unique entry id.")  # pragma: no cover


def _ids_in(source_dir: Path) -> set[str]:
    """Every `id:` value in the folder's topic files (a quick scan; loading checks the rest)."""
    ids: set[str] = set()
    for path in source_files(source_dir):
        for match in _ID_LINE.finditer(path.read_text(encoding="utf-8", errors="replace")):
            ids.add(match["id"].strip("'\""))
    return ids


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _round_trip(path: Path) -> tuple[Any, Any]:
    """The file's round-trip document and a `dump(document) -> str` that keeps its layout."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    text = path.read_text(encoding="utf-8")

    def make(layout: tuple[int, int, int]) -> YAML:
        handler = YAML(typ="rt")
        handler.indent(mapping=layout[0], sequence=layout[1], offset=layout[2])
        handler.width = 4096
        handler.preserve_quotes = True
        return handler

    def dumps(handler: YAML, document: Any) -> str:
        out = io.StringIO()
        handler.dump(document, out)
        return out.getvalue()

    try:
        handler = make(_LAYOUTS[0])
        document = handler.load(text)
        if dumps(handler, document) != text:  # find the indentation that reproduces the file
            for layout in _LAYOUTS[1:]:
                candidate = make(layout)
                if dumps(candidate, candidate.load(text)) == text:
                    handler = candidate
                    break
            document = handler.load(text)
    except YAMLError as error:
        raise ValidationFailed(f"{_shown(path)}: bad YAML: {error}") from error
    if not isinstance(document, dict):
        raise ValidationFailed(f"{_shown(path)}: expected a mapping with 'topic' and 'entries'.")
    return document, lambda doc: dumps(handler, doc)


def _commit_knowledge(source_dir: Path, path: Path, text: str) -> None:
    """Checks the whole folder with `text` in place of `path`, then replaces `path`."""
    with tempfile.TemporaryDirectory(prefix="kefu-review-") as folder:
        copy = Path(folder) / source_dir.name
        copy.mkdir()
        for source in source_files(source_dir):
            shutil.copy2(source, copy / source.name)
        (copy / path.name).write_text(text, encoding="utf-8")
        try:
            load_entries(copy)
        except SourceError as error:
            where = path.parent / error.path.name
            line = f":{error.line}" if error.line is not None else ""
            raise ValidationFailed(
                f"The change was not written: {_shown(where)}{line}: {error.reason}"
            ) from error
    replace_text(path, text)


def _located(error: SourceError) -> str:
    line = f":{error.line}" if error.line is not None else ""
    return f"{_shown(error.path)}{line}: {error.reason}"


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """This process's write lock, then an exclusive `flock` on the folder (other processes)."""
    if not folder.is_dir():
        raise UnknownTarget(f"No folder {shown_path(folder, folder.parents[1:2])}.")
    with _lock:
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing releases the flock
