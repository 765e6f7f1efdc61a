"""Reading a YAML data file editors maintain, naming the file and line of every mistake.

`load_data_file` parses with `bot.service.policy`'s strict loader (duplicate keys refused),
validates with a pydantic model and reports each problem as `file:line: place: message`,
in the order of the file. The handoff policy and the canned replies are read with it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.service.policy import _describe, _PolicyLoader, _shown

Loc: TypeAlias = tuple[int | str, ...]
"""A place in a data file: keys and list indexes from the top."""

Problem: TypeAlias = tuple[Loc, str]
"""A mistake found after the schema passed: its place and what is wrong."""

_M = TypeVar("_M", bound=BaseModel)


def _yaml_document(text: str) -> tuple[Node | None, Any]:
    """The node tree (for line numbers) and the data of a YAML text."""
    loader = _PolicyLoader(text)
    try:
        node = loader.get_single_node()
        return node, None if node is None else loader.construct_document(node)
    finally:
        loader.dispose()


def _line_of(root: Node | None, loc: Sequence[int | str]) -> int | None:
    """The 1-based line of the deepest part of `loc` found in the file."""
    node = root
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
        elif isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


_UNKNOWN_KEY = re.compile(r"unknown key (.+?) \((?:did you mean|allowed here)")


def _error_loc(error: ErrorDetails) -> Loc:
    """Where a pydantic error points; an unknown key (refused by `_Section`) points at the key."""
    loc: Loc = tuple(part for part in error["loc"] if part != "[key]")
    found = _UNKNOWN_KEY.match(str(error["msg"]).removeprefix("Value error, "))
    if found:
        try:
            key = ast.literal_eval(found[1])
        except (ValueError, SyntaxError):
            return loc
        return (*loc, str(key))
    return loc


def load_data_file(
    path: Path,
    model: type[_M],
    error: type[ValueError],
    check: Callable[[_M], Iterable[Problem]] | None = None,
) -> _M:
    """Reads a YAML data file into `model`; each mistake becomes a line "file:line: place: message".

    Duplicate keys and YAML syntax errors are refused (see `bot.service.policy`). `check` finds
    mistakes the schema cannot see (duplicates across a list, ...) once the schema passes.

    Raises:
        error: Every mistake found, one per line, in the order of the file.
    """
    shown = _shown(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{shown}: file not found") from None
    except UnicodeDecodeError as problem:
        raise error(f"{shown}: not UTF-8 text ({problem.reason})") from problem
    except OSError as problem:
        raise error(f"{shown}: cannot read the file ({problem.strerror})") from problem
    try:
        root, data = _yaml_document(text)
    except yaml.MarkedYAMLError as problem:
        mark = problem.problem_mark or problem.context_mark
        where = f"{shown}:{mark.line + 1}" if mark else shown
        kind = "" if isinstance(problem, ConstructorError) else "YAML syntax error: "
        detail = problem.problem or problem.context or "unreadable"
        if problem.context and problem.problem:
            detail += f" ({problem.context})"
        if detail.startswith("mapping values are not allowed"):
            detail += ' (put a text that contains ": " in quotes)'
        raise error(f"{where}: {kind}{detail}") from problem
    except yaml.YAMLError as problem:
        raise error(f"{shown}: YAML syntax error: {problem}") from problem
    if data is None:
        raise error(f"{shown}: the file is empty")
    if not isinstance(data, dict):
        raise error(f"{shown}:1: must hold keys such as 'version: 1'")
    lines: list[tuple[int, str]] = []
    try:
        loaded = model.model_validate(data)
    except ValidationError as invalid:
        for details in invalid.errors():
            line = _line_of(root, _error_loc(details)) or 1
            lines.extend((line, message) for message in _explain(details))
        raise _located(error, shown, lines) from invalid
    for loc, message in check(loaded) if check else ():
        place = place_text(loc)
        lines.append((_line_of(root, loc) or 1, f"{place}: {message}" if place else message))
    if lines:
        raise _located(error, shown, lines)
    return loaded


_PLAIN_WORDS = {
    "model_type": "must be a mapping (key: value lines)",
    "dict_type": "must be a mapping (key: value lines)",
    "tuple_type": "must be a list, e.g. [a, b]",
    "list_type": "must be a list, e.g. [a, b]",
    "string_too_short": "must not be empty",
}


def _explain(details: ErrorDetails) -> list[str]:
    """A pydantic error in plain words (`bot.service.policy` words the common ones)."""
    kind = details["type"]
    if kind == "too_short" and details["input"] == "":
        kind = "string_too_short"
    if kind not in _PLAIN_WORDS:
        return _describe(details)
    place = place_text(tuple(part for part in details["loc"] if part != "[key]"))
    return [f"{place}: {_PLAIN_WORDS[kind]}" if place else _PLAIN_WORDS[kind]]


def place_text(loc: Loc) -> str:
    """A place as editors read it: `triggers.vip.enabled`, `levels[0]`."""
    place = ""
    for part in loc:
        place += f"[{part}]" if isinstance(part, int) else (f".{part}" if place else part)
    return place


def _located(error: type[ValueError], shown: str, lines: list[tuple[int, str]]) -> ValueError:
    ordered = sorted(lines, key=lambda item: item[0])
    return error("\n".join(f"{shown}:{line}: {text}" for line, text in ordered))
