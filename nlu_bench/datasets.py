"""Intent datasets in the formats they are published in, read into `(text, intent)` pairs.

Standard library only: the Rasa runtime trains on them and the app runtime splits them.

- JSONL: one object per line with `text` and `intent` (or `label`, preferred when both
  are present: SMP2019's `label` is the full `domain.intent`).
- CLINC150 JSON: split name -> list of `[text, intent]`. A training file contributes
  `train` + `oos_train`; a test file `test` + `oos_test`, or `val` + `oos_val` if it has
  no test split.
- CSV with a header: a `text` column and one of `category` (BANKING77), `intent`, `label`.
"""

from __future__ import annotations

import csv
import json
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

Example = tuple[str, str]
"""One labelled utterance: (text, intent)."""

Role = Literal["train", "test"]

CLINC_SPLITS: dict[Role, list[tuple[str, ...]]] = {
    "train": [("train", "oos_train")],
    "test": [("test", "oos_test"), ("val", "oos_val")],
}
"""Which CLINC150 splits a training or test file contributes, in order of preference."""

LABEL_KEYS = ("label", "intent", "category")
"""Names of the intent field or column, in order of preference."""


class DatasetError(ValueError):
    """A dataset file cannot be read; the message names the file and the place."""


def read_examples(path: Path, role: Role = "train") -> list[Example]:
    """Reads a JSONL, CLINC150 JSON or CSV file (chosen by its suffix)."""
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    suffix = path.suffix.lower()
    readers = {".jsonl": _read_jsonl, ".json": _read_clinc, ".csv": _read_csv}
    if suffix not in readers:
        raise DatasetError(f"{path}: unknown format '{suffix}' (use .jsonl, .json or .csv)")
    try:
        examples = readers[suffix](path, role)
    except UnicodeDecodeError as error:
        raise DatasetError(f"{path}: not UTF-8 text ({error.reason})") from error
    if not examples:
        raise DatasetError(f"{path}: no examples")
    return examples


def _example(text: Any, intent: Any, where: str) -> Example:
    if not isinstance(text, str) or not text.strip():
        raise DatasetError(f"{where}: 'text' must be a non-empty string")
    if not isinstance(intent, str) or not intent.strip():
        raise DatasetError(f"{where}: the intent must be a non-empty string")
    return text.strip(), intent.strip()


def _read_jsonl(path: Path, role: Role) -> list[Example]:
    examples = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DatasetError(f"{where}: not JSON ({error.msg})") from error
            if not isinstance(row, dict):
                raise DatasetError(f"{where}: expected an object with 'text' and 'intent'")
            key = next((k for k in LABEL_KEYS if k in row), None)
            if key is None:
                raise DatasetError(f"{where}: no 'intent' (or 'label') field")
            examples.append(_example(row.get("text"), row[key], where))
    return examples


def _read_clinc(path: Path, role: Role) -> list[Example]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DatasetError(f"{path}:{error.lineno}: not JSON ({error.msg})") from error
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected the CLINC150 layout (split name -> pairs)")
    splits = next((s for s in CLINC_SPLITS[role] if s[0] in data), None)
    if splits is None:
        wanted = " or ".join(s[0] for s in CLINC_SPLITS[role])
        raise DatasetError(f"{path}: no '{wanted}' split (found: {', '.join(sorted(data))})")
    examples = []
    for split in splits:
        rows = data.get(split, [])
        if not isinstance(rows, list):
            raise DatasetError(f"{path}: split '{split}' must be a list of [text, intent]")
        for index, pair in enumerate(rows):
            where = f"{path}: {split}[{index}]"
            if not isinstance(pair, list) or len(pair) != 2:
                raise DatasetError(f"{where}: expected [text, intent]")
            examples.append(_example(pair[0], pair[1], where))
    return examples


def _read_csv(path: Path, role: Role) -> list[Example]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        label = next((k for k in LABEL_KEYS if k in columns), None)
        if "text" not in columns or label is None:
            raise DatasetError(
                f"{path}: the header needs 'text' and 'category' (or 'intent' / 'label'), "
                f"found: {', '.join(columns) or 'nothing'}"
            )
        try:
            return [
                _example(row["text"], row[label], f"{path}:{reader.line_num}") for row in reader
            ]
        except csv.Error as error:
            raise DatasetError(f"{path}:{reader.line_num}: {error}") from error


def held_out_split(
    examples: Sequence[Example], fraction: float, seed: int = 42
) -> tuple[list[Example], list[Example]]:
    """Splits into (train, held out), the same fraction of every intent, reproducibly."""
    if not 0 < fraction < 1:
        raise ValueError("fraction must be between 0 and 1")
    by_intent: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        by_intent[example[1]].append(example)
    generator = random.Random(seed)  # noqa: S311 (a reproducible split, not security)
    train: list[Example] = []
    held_out: list[Example] = []
    for intent in sorted(by_intent):
        group = by_intent[intent]
        generator.shuffle(group)
        count = round(len(group) * fraction) if len(group) > 1 else 0
        held_out += group[:count]
        train += group[count:]
    return train, held_out


def write_jsonl(examples: Iterable[Example], path: Path) -> Path:
    """Writes `{"text", "intent"}` lines (the bench's own input format)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for text, intent in examples:
            handle.write(json.dumps({"text": text, "intent": intent}, ensure_ascii=False) + "\n")
    return path
