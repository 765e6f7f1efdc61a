"""The Rasa NLU data reader: intent examples of Rasa YAML NLU files, with their file and line.

Reads the `nlu:` list of Rasa 3 YAML training data: each `- intent:` item (`IntentBlock`) and
its examples (`NluExample`), written either as an `examples: |` block of `- ` lines or as a
list of `- text:` items. An example's `text` is the plain text Rasa trains on: the entity
markup (`[text](entity)`, `[text](entity:value)`, `[text]{...}`, `[text][...]`) is reduced to
its text, and the spans are kept in `entities`. Regex, synonym and lookup items are not
examples and are skipped. Stdlib and PyYAML only, so both runtimes can use it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = [
    "NLU_SUFFIXES",
    "EntitySpan",
    "IntentBlock",
    "NluExample",
    "examples_in_node",
    "labelled_examples",
    "mapping_value",
    "nlu_files",
    "node_line",
    "parse_annotated",
    "parse_nlu",
    "read_nlu",
    "sequence_items",
    "strip_entities",
]

NLU_SUFFIXES = (".yml", ".yaml")
"""The suffixes of Rasa's YAML training data files."""

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ENTITY = re.compile(
    r"\[(?P<text>[^\]]+?)\]"
    r"(\((?P<entity>[^:)]+?)(?::(?P<value>[^)]+))?\)|\{(?P<dict>[^}]+?)\}|\[(?P<list>.*?)\])"
)
"""Rasa's `ENTITY_REGEX`: `[text](entity)`, `[text](entity:value)`, `[text]{...}`, `[text][...]`."""
_STRIP = "\n\r "
"""What Rasa strips from each example line (`STRIP_SYMBOLS`)."""


@dataclass(frozen=True)
class EntitySpan:
    """An annotated entity in an example's plain text (`start`/`end` are character offsets)."""

    entity: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class NluExample:
    """One training example: its intent, plain text, the text as written, and where."""

    intent: str
    text: str
    annotated: str
    path: Path
    line: int
    entities: tuple[EntitySpan, ...] = ()


@dataclass(frozen=True)
class IntentBlock:
    """One `- intent:` item of an NLU file (1-based line)."""

    intent: str
    path: Path
    line: int


def parse_annotated(annotated: str) -> tuple[str, tuple[EntitySpan, ...]]:
    """The plain text of an example and its entity spans, as Rasa reads the markup."""
    parts: list[str] = []
    spans: list[EntitySpan] = []
    position = offset = 0
    for match in _ENTITY.finditer(annotated):
        before = annotated[position : match.start()]
        parts.append(before)
        offset += len(before)
        text = match["text"]
        spans.extend(
            EntitySpan(name, text, offset, offset + len(text)) for name in _entity_names(match)
        )
        parts.append(text)
        offset += len(text)
        position = match.end()
    parts.append(annotated[position:])
    return "".join(parts), tuple(spans)


def strip_entities(annotated: str) -> str:
    """The example's plain text, without the entity markup and surrounding blanks."""
    return parse_annotated(annotated)[0].strip()


def _entity_names(match: re.Match[str]) -> list[str]:
    if match["entity"]:
        return [match["entity"].strip()]
    try:
        if match["dict"]:
            found = [json.loads("{" + match["dict"] + "}")]
        else:
            found = json.loads("[" + (match["list"] or "") + "]")
    except json.JSONDecodeError:
        return ["?"]
    return [str(item.get("entity", "?")) for item in found if isinstance(item, dict)]


def examples_in_node(root: Node | None, path: Path) -> tuple[list[IntentBlock], list[NluExample]]:
    """The intent items and examples of a composed NLU document (`yaml.compose`).

    Example lines that do not start with `-` are skipped; so are examples whose plain text is
    blank.
    """
    blocks: list[IntentBlock] = []
    examples: list[NluExample] = []
    for item in sequence_items(mapping_value(root, "nlu")):
        intent_node = mapping_value(item, "intent")
        if not isinstance(intent_node, ScalarNode) or not intent_node.value:
            continue
        intent = str(intent_node.value)
        blocks.append(IntentBlock(intent, path, node_line(item)))
        for annotated, line in _example_lines(mapping_value(item, "examples")):
            text, spans = parse_annotated(annotated)
            if text.strip():
                examples.append(NluExample(intent, text, annotated, path, line, spans))
    return blocks, examples


def parse_nlu(text: str, path: Path) -> tuple[list[IntentBlock], list[NluExample]]:
    """The intent items and examples of NLU YAML text (`path` is where they are said to be).

    Raises:
        yaml.YAMLError: The text is not valid YAML.
    """
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    finally:
        loader.dispose()
    return examples_in_node(root, path)


def read_nlu(paths: Iterable[Path]) -> tuple[list[IntentBlock], list[NluExample]]:
    """The intent items and examples of Rasa YAML NLU files, in file order.

    Raises:
        OSError: A file cannot be read.
        UnicodeDecodeError: A file is not UTF-8.
        yaml.YAMLError: A file is not valid YAML.
    """
    blocks: list[IntentBlock] = []
    examples: list[NluExample] = []
    for path in paths:
        found_blocks, found_examples = parse_nlu(path.read_text(encoding="utf-8"), path)
        blocks.extend(found_blocks)
        examples.extend(found_examples)
    return blocks, examples


def nlu_files(folder: Path) -> list[Path]:
    """The `*.yml` / `*.yaml` files under a folder (recursively, as Rasa reads it), sorted.

    A file is its own list; a missing folder has none.
    """
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix in NLU_SUFFIXES and p.is_file())


def labelled_examples(folder: Path) -> list[tuple[str, str]]:
    """`(plain text, intent)` of every example under `folder`, in file order.

    Raises:
        OSError, UnicodeDecodeError, yaml.YAMLError: As `read_nlu`.
    """
    _, examples = read_nlu(nlu_files(folder))
    return [(example.text.strip(), example.intent) for example in examples]


def _example_lines(node: Node | None) -> list[tuple[str, int]]:
    """`(example as written, line)` of an `examples:` value (block text or list of `text:`)."""
    if isinstance(node, ScalarNode):
        # a literal block's text starts on the line after `examples: |`, one file line per line
        first = node_line(node) + 1 if node.style == "|" else None
        found = []
        for offset, raw in enumerate(str(node.value).splitlines()):
            if raw.startswith("-"):
                line = first + offset if first is not None else node_line(node)
                found.append((raw[1:].strip(_STRIP), line))
        return found
    found = []
    for item in sequence_items(node):
        text = mapping_value(item, "text")
        if isinstance(text, ScalarNode) and text.value.strip():
            found.append((str(text.value).strip(_STRIP), node_line(text)))
    return found


def node_line(node: Node) -> int:
    """The 1-based line a node starts on."""
    return int(node.start_mark.line) + 1


def mapping_value(node: Node | None, key: str) -> Node | None:
    """The value node of `key` in a mapping node (None when absent or not a mapping)."""
    if isinstance(node, MappingNode):
        for key_node, value in node.value:
            if isinstance(key_node, ScalarNode) and key_node.value == key:
                found: Node = value
                return found
    return None


def sequence_items(node: Node | None) -> list[Node]:
    """The item nodes of a sequence node (none when it is not a sequence)."""
    return list(node.value) if isinstance(node, SequenceNode) else []
