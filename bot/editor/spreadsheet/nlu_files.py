"""NLU data files as the sheet sees them: intents and examples, read and changed in place."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bot.editor.spreadsheet.model import SheetError
from bot.editor.spreadsheet.round_trip import block_style, item_line, key_line, value_line


def nlu_items(data: Any, shown: str) -> list[tuple[str, list[str], Any]]:
    """(intent, examples, item) for each `- intent:` item, in file order.

    Raises:
        SheetError: The file is not Rasa NLU YAML the sheet can represent.
    """
    if data is None:
        return []
    if not isinstance(data, Mapping):
        raise SheetError(f"{shown}:1: expected a mapping with nlu: (Rasa NLU YAML)")
    items = data.get("nlu")
    if items is None:
        return []
    if not isinstance(items, list):
        raise SheetError(f"{shown}:{key_line(data, 'nlu')}: nlu: must be a list")
    result = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping) or "intent" not in item:
            continue
        line = item_line(items, index)
        intent = item["intent"]
        if not isinstance(intent, str) or not intent.strip():
            raise SheetError(f"{shown}:{line}: the intent needs a name")
        result.append((intent.strip(), _examples(item, shown, line), item))
    return result


def _examples(item: Any, shown: str, line: int) -> list[str]:
    value = item.get("examples")
    if value is None:
        return []
    if isinstance(value, list):  # the `- text: ...` form with metadata
        texts = []
        for example in value:
            text = example.get("text") if isinstance(example, Mapping) else None
            if not isinstance(text, str) or not text.strip():
                raise SheetError(f"{shown}:{line}: each example of the list needs a text:")
            texts.append(text.strip())
        return texts
    if not isinstance(value, str):
        raise SheetError(f"{shown}:{line}: examples: must be a | block of '- ' lines")
    start = value_line(item, "examples", line)
    examples = []
    for number, raw in enumerate(value.split("\n"), start=start + 1):
        text = raw.strip()
        if not text:
            continue
        if not text.startswith("-"):
            raise SheetError(
                f"{shown}:{number}: the example line {text!r} does not start with '- ' "
                "(Rasa skips it as an example): fix the YAML first"
            )
        examples.append(text[1:].strip())
    return examples


def merged_intents(items: Iterable[tuple[str, list[str], Any]]) -> dict[str, list[str]]:
    """{intent: examples} of `nlu_items`, an intent's items merged in file order."""
    merged: dict[str, list[str]] = {}
    for intent, examples, _item in items:
        merged.setdefault(intent, []).extend(examples)
    return merged


def apply_nlu(data: Any, want: Mapping[str, list[str]]) -> None:
    """Changes the `nlu:` list in place: intents in sheet order where the first one was."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    items = data.get("nlu")
    if not isinstance(items, list):
        items = CommentedSeq()
        data["nlu"] = items
    before: list[Any] = []
    after: list[Any] = []
    first: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for item in items:
        if isinstance(item, Mapping) and "intent" in item:
            name = str(item["intent"]).strip()
            first.setdefault(name, item)
            counts[name] = counts.get(name, 0) + 1
        else:
            (after if first else before).append(item)
    intents = []
    for intent, examples in want.items():
        item = first.get(intent)
        if item is None:
            item = CommentedMap()
            item["intent"] = intent
            item["examples"] = _examples_block(examples)
        elif counts[intent] > 1 or _examples(item, "", 0) != examples:
            _set_examples(item, examples)
        intents.append(item)
    new = [*before, *intents, *after]
    if [id(item) for item in new] != [id(item) for item in items]:
        items.clear()
        items.extend(new)
    block_style(items)


def _examples_block(examples: Sequence[str]) -> Any:
    from ruamel.yaml.scalarstring import LiteralScalarString

    return LiteralScalarString("".join(f"- {example}\n" for example in examples))


def _set_examples(item: Any, examples: Sequence[str]) -> None:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    current = item.get("examples")
    if not isinstance(current, list):
        item["examples"] = _examples_block(examples)
        return
    unused = list(current)  # the `- text:` form: keep each example's metadata
    kept = CommentedSeq()
    for example in examples:
        node = next(
            (n for n in unused if isinstance(n, Mapping) and str(n.get("text")).strip() == example),
            None,
        )
        if node is None:
            node = CommentedMap()
            node["text"] = example
        else:
            unused.remove(node)
        kept.append(node)
    item["examples"] = kept
