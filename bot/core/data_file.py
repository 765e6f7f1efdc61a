"""Reading the YAML data files editors maintain, naming the file and line of every mistake.

The one strict reader of `data/` files: `read_yaml_strict` parses a text (duplicate keys
refused, "21:00" and dates kept as text) into a `YamlDocument` that finds the line of any place,
`read_data_file` does the same for a file, and `load_data_file` also validates with a pydantic
model, reporting each problem as `file:line: place: message` in the order of the file. Data file
models derive from `Section`, which refuses unknown keys with a "did you mean".
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import ErrorDetails
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.core.paths import shown_path

Loc: TypeAlias = tuple[int | str, ...]
"""A place in a data file: keys and list indexes from the top."""

Problem: TypeAlias = tuple[Loc, str]
"""A mistake found after the schema passed: its place and what is wrong."""

_M = TypeVar("_M", bound=BaseModel)
_ONCE_PER_MAPPING = "each name may appear only once in the same mapping"


class DataFileError(ValueError):
    """A data file that cannot be read as YAML: names the file and, when known, the line.

    Attributes:
        source: The file as shown to people (see `bot.core.paths.shown_path`).
        reason: What is wrong, without the place.
        line: The 1-based line of the problem, or None.
    """

    def __init__(self, source: str, reason: str, line: int | None = None) -> None:
        self.source = source
        self.reason = reason
        self.line = line
        super().__init__(
            f"{source}:{line}: {reason}" if line is not None else f"{source}: {reason}"
        )


# --- reading --------------------------------------------------------------------------------------


class StrictYamlLoader(yaml.SafeLoader):
    """SafeLoader that keeps "21:00" and dates as text (validated later) and refuses duplicate keys.

    Plain YAML 1.1 reads 21:00 as the number 1260; the data file models parse the text instead.
    """

    _AS_TEXT = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?|\d{4}-\d{1,2}-\d{1,2}")

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        """The tag of a scalar: clock times and dates stay text."""
        if (
            kind is yaml.ScalarNode
            and implicit[0]
            and isinstance(value, str)
            and self._AS_TEXT.fullmatch(value)
        ):
            return "tag:yaml.org,2002:str"
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        """A mapping; a key written twice is an error (YAML would keep the last silently)."""
        seen: set[Hashable] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable):
                if key in seen:
                    reason = f"duplicate key {key!r}: {_ONCE_PER_MAPPING}"
                    raise ConstructorError(None, None, reason, key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


@dataclass(frozen=True)
class YamlDocument:
    """A YAML text read strictly: its data and the node tree that knows every line.

    Attributes:
        source: The file as shown to people.
        root: The top node, or None for an empty document.
        data: The plain data (dicts, lists, str, int, float, bool, None).
        text: The text that was read.
    """

    source: str
    root: Node | None
    data: Any
    text: str = ""

    def line(self, loc: Sequence[int | str]) -> int | None:
        """The 1-based line of the deepest part of `loc` found in the file (None: empty file)."""
        node = self.root
        line = node.start_mark.line + 1 if node is not None else None
        for part in loc:
            if isinstance(node, MappingNode):
                found = [
                    (key, value)
                    for key, value in node.value
                    if isinstance(key, ScalarNode) and key.value == str(part)
                ]
                if not found:
                    break
                key, node = found[0]
                line = key.start_mark.line + 1
            elif (
                isinstance(node, SequenceNode)
                and isinstance(part, int)
                and 0 <= part < len(node.value)
            ):
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                break
        return line


def read_yaml_strict(text: str, source: str) -> YamlDocument:
    """Reads one YAML document strictly (see `StrictYamlLoader`); `source` names it in errors.

    Raises:
        DataFileError: A YAML syntax error or a duplicate key, with its line.
    """
    loader = StrictYamlLoader(text)
    try:
        root = loader.get_single_node()
        data = None if root is None else loader.construct_document(root)
    except yaml.MarkedYAMLError as problem:
        mark = problem.problem_mark or problem.context_mark
        kind = "" if isinstance(problem, ConstructorError) else "YAML syntax error: "
        detail = problem.problem or problem.context or "unreadable"
        if problem.context and problem.problem:
            detail += f" ({problem.context})"
        if detail.startswith("mapping values are not allowed"):
            detail += ' (put a text that contains ": " in quotes)'
        elif detail.startswith("expected ',' or") and "but got '?'" in detail:
            detail += ' (inside [ ] or { }, put a text that contains "?" in quotes)'
        line = mark.line + 1 if mark else None
        raise DataFileError(source, f"{kind}{detail}", line) from problem
    except yaml.YAMLError as problem:
        raise DataFileError(source, f"YAML syntax error: {problem}") from problem
    finally:
        loader.dispose()
    return YamlDocument(source, root, data, text)


def read_data_file(path: Path) -> YamlDocument:
    """Reads a UTF-8 YAML file strictly (see `read_yaml_strict`), named by `shown_path`.

    Raises:
        DataFileError: The file is missing, unreadable, not UTF-8 or not valid YAML.
    """
    shown = shown_path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataFileError(shown, "file not found") from None
    except OSError as problem:
        raise DataFileError(shown, f"cannot read the file ({problem.strerror})") from problem
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as problem:
        line = raw[: problem.start].count(b"\n") + 1
        reason = f"not valid UTF-8 ({problem.reason}); save the file as UTF-8"
        raise DataFileError(shown, reason, line) from problem
    return read_yaml_strict(text, shown)


# --- validating -----------------------------------------------------------------------------------


class Section(BaseModel):
    """A block of a data file: unknown keys are refused, naming the allowed ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            allowed = list(cls.model_fields)
            for key in data:
                if key not in allowed:
                    raise ValueError(
                        f"unknown key {key!r}{did_you_mean(str(key), allowed)}"
                        f" (allowed here: {', '.join(allowed)})"
                    )
        return data


def did_you_mean(name: str, choices: Sequence[str]) -> str:
    """` (did you mean 'x'?)` for the closest of `choices`, or nothing."""
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def load_data_file(
    path: Path,
    model: type[_M],
    error: type[ValueError],
    check: Callable[[_M], Iterable[Problem]] | None = None,
) -> _M:
    """Reads a YAML data file into `model`; each mistake becomes a line "file:line: place: message".

    Raises:
        error: Every mistake found, one per line, in the order of the file.
    """
    try:
        document = read_data_file(path)
    except DataFileError as problem:
        raise error(str(problem)) from problem
    return validate_data(document, model, error, check)


def validate_data(
    document: YamlDocument,
    model: type[_M],
    error: type[ValueError],
    check: Callable[[_M], Iterable[Problem]] | None = None,
) -> _M:
    """Validates a read document with `model`, then `check` (mistakes the schema cannot see).

    Raises:
        error: Every mistake found, one per line "file:line: place: message", in file order.
    """
    shown = document.source
    if document.data is None:
        raise error(f"{shown}: the file is empty")
    if not isinstance(document.data, dict):
        raise error(f"{shown}:1: must hold keys such as 'version: 1'")
    lines: list[tuple[int, str]] = []
    try:
        loaded = model.model_validate(document.data)
    except ValidationError as invalid:
        for details in invalid.errors():
            for loc, message in _explain(details):
                lines.append((document.line(loc) or 1, message))
        raise _located(error, shown, lines) from invalid
    for loc, message in check(loaded) if check else ():
        place = place_text(loc)
        lines.append((document.line(loc) or 1, f"{place}: {message}" if place else message))
    if lines:
        raise _located(error, shown, lines)
    return loaded


_UNKNOWN_KEY = re.compile(r"unknown key (.+?) \((?:did you mean|allowed here)")
_PLACE = re.compile(r"([^\s:\[\]'.]+)|\[(\d+)\]|\.")
_PLAIN_WORDS = {
    "model_type": "must be a mapping (key: value lines)",
    "dict_type": "must be a mapping (key: value lines)",
    "tuple_type": "must be a list, e.g. [a, b]",
    "list_type": "must be a list, e.g. [a, b]",
    "string_too_short": "must not be empty",
}


def _explain(details: ErrorDetails) -> list[Problem]:
    """A pydantic error in plain words, each line with the place it is about."""
    loc = _error_loc(details)
    kind = details["type"]
    if kind == "too_short" and details["input"] == "":
        kind = "string_too_short"
    if kind in _PLAIN_WORDS:
        place = place_text(tuple(part for part in details["loc"] if part != "[key]"))
        return [(loc, f"{place}: {_PLAIN_WORDS[kind]}" if place else _PLAIN_WORDS[kind])]
    lines = describe_error(details)
    if loc:
        return [(loc, line) for line in lines]
    return [(_leading_place(line), line) for line in lines]


def _error_loc(error: ErrorDetails) -> Loc:
    """Where a pydantic error points; an unknown key (refused by `Section`) points at the key."""
    loc: Loc = tuple(part for part in error["loc"] if part != "[key]")
    found = _UNKNOWN_KEY.match(str(error["msg"]).removeprefix("Value error, "))
    if found:
        try:
            key = ast.literal_eval(found[1])
        except (ValueError, SyntaxError):
            return loc
        return (*loc, str(key))
    return loc


def _leading_place(line: str) -> Loc:
    """The place a whole-file message starts with ("impacts: ..." -> ("impacts",))."""
    head, colon, _ = line.partition(": ")
    if not colon:
        return ()
    loc: list[int | str] = []
    position = 0
    while position < len(head):
        part = _PLACE.match(head, position)
        if part is None:
            return ()
        if part[1] is not None:
            loc.append(part[1])
        elif part[2] is not None:
            loc.append(int(part[2]))
        position = part.end()
    return tuple(loc)


def describe_error(error: ErrorDetails) -> list[str]:
    """One or more lines "place: message" for a validation error, in plain words."""
    loc = tuple(error["loc"])
    kind = error["type"]
    context = error.get("ctx", {})
    message = error["msg"].removeprefix("Value error, ")
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
        message = "unknown name: " + message.replace("Input should be", "must be")
    elif kind == "greater_than":
        message = f"must be > {context.get('gt')}"
    elif kind == "missing":
        message = "is required but missing"
    elif kind == "extra_forbidden":
        message = "unknown key"
    else:
        message = message.replace("Input should be", "must be")
    given = error["input"]
    if kind not in ("value_error", "missing") and isinstance(given, str | int | float | date):
        message += f" (got {given!r})"
    place = place_text(loc)
    return [f"{place}: {line}" if place else line for line in message.splitlines()]


def place_text(loc: Sequence[int | str]) -> str:
    """A place as editors read it: `triggers.vip.enabled`, `levels[0]`."""
    place = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            place += f"[{part}]"
        else:
            place += f".{part}" if place else str(part)
    return place


def _located(error: type[ValueError], shown: str, lines: list[tuple[int, str]]) -> ValueError:
    ordered = sorted(lines, key=lambda item: item[0])
    return error("\n".join(f"{shown}:{line}: {text}" for line, text in ordered))
