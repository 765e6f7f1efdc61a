"""NLU benchmark: Kefu's real pipeline on CLINC150, BANKING77, SMP2019, CAIS and its own data.

Every run trains the project's config.yml in the Rasa runtime (`kefu nlu bench`) and is shown
next to the published anchors and the plain-embedding floor: 1-nearest-neighbour by cosine on
the same sentence encoder, without training. The public datasets are read in place (default
`../shared/datasets`); the splits made here are written under `var/bench/nlu/`.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bot.bench.common import BenchReport
from bot.bench.kb import DATASETS
from bot.core.nlu_runs import DEFAULT_CONFIG, NluBenchError, run_nlu_bench
from bot.core.settings import PROJECT_ROOT, Settings
from bot.knowledge.index import knowledge_settings
from kefu_shared.nlu_data import labelled_examples
from knowledge_index import Encoder, load_encoder
from nlu_bench.datasets import DatasetError, Example, held_out_split, read_examples, write_jsonl
from nlu_bench.metrics import scores

NAMES = ("clinc150", "banking77", "smp2019", "cais", "demo")
"""Every dataset, in the order they run."""

OOS_LABEL = "oos"
SEED = 42
BANKING_HELD_OUT = 0.1
DEMO_HELD_OUT = 0.2
FLOOR_THRESHOLD = 0.65
"""Cosine below which the floor answers out-of-scope (CLINC150 only)."""

DEMO_NLU = PROJECT_ROOT / "data" / "nlu"

ANCHORS: dict[str, dict[str, dict[str, float]]] = {
    "clinc150": {
        "in_scope_accuracy": {"BERT": 0.969, "BERT+250 oos": 0.967, "Rasa 2019": 0.915},
        "oos_recall": {"BERT": 0.403, "BERT+250 oos": 0.592, "Rasa 2019": 0.453},
    },
    "banking77": {"accuracy": {"BERT": 0.9366, "USE+ConveRT": 0.9336}},
    "cais": {"accuracy": {"CM-Net": 0.9456}},
}
"""Published results on the full test sets (../shared/datasets/README.md); SMP2019 has none."""

ANCHOR_NOTES = {"smp2019": "none (own split)", "demo": "none (project data)"}


@dataclass(frozen=True)
class Target:
    """A goal for one measured value of one dataset."""

    dataset: str
    metric: str
    op: Literal[">=", "<="]
    value: float

    def met(self, run: dict[str, Any]) -> bool | None:
        """Whether the run reached it; None when the value was not measured."""
        measured = run.get(self.metric)
        if not isinstance(measured, int | float):
            return None
        return measured >= self.value if self.op == ">=" else measured <= self.value

    def as_dict(self, run: dict[str, Any]) -> dict[str, Any]:
        """The target, the measured value and whether it is met (JSON)."""
        return {
            "metric": self.metric,
            "op": self.op,
            "value": self.value,
            "measured": run.get(self.metric),
            "met": self.met(run),
        }


TARGETS = (
    Target("clinc150", "in_scope_accuracy", ">=", 0.969),
    Target("clinc150", "oos_recall", ">=", 0.60),
    Target("clinc150", "train_seconds", "<=", 900),
    Target("banking77", "accuracy", ">=", 0.937),
    Target("smp2019", "accuracy", ">=", 0.95),
    Target("cais", "accuracy", ">=", 0.946),
    *(Target(name, "parse_p95_ms", "<=", 30) for name in NAMES),
)


@dataclass(frozen=True)
class Dataset:
    """One benchmark run's input: the files the runner reads and their examples."""

    name: str
    train_path: Path
    test_path: Path
    train: list[Example]
    test: list[Example]
    split: str


def parse_only(only: str | None) -> list[str]:
    """The datasets named in a comma-separated list (all of them for None or empty)."""
    if not only:
        return list(NAMES)
    names = [name.strip().lower() for name in only.split(",") if name.strip()]
    unknown = [name for name in names if name not in NAMES]
    if unknown:
        raise ValueError(f"unknown dataset {', '.join(unknown)} (choose from {', '.join(NAMES)})")
    return [name for name in NAMES if name in names]


def prepare(name: str, datasets: Path, work_dir: Path) -> Dataset:
    """Reads (and for BANKING77 and the demo data, splits and writes) one dataset.

    Raises:
        FileNotFoundError: The dataset's folder is missing.
        DatasetError: A file cannot be read.
    """
    folder = DEMO_NLU if name == "demo" else datasets / name
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not found")
    if name == "clinc150":
        path = folder / "data_full_train_val.json"
        train, test = read_examples(path, "train"), read_examples(path, "test")
        return Dataset(name, path, path, train, test, "train + oos_train -> val + oos_val")
    if name in ("smp2019", "cais"):
        test_name = "dev.jsonl" if name == "smp2019" else "valid.jsonl"
        train_path, test_path = folder / "train.jsonl", folder / test_name
        train, test = read_examples(train_path, "train"), read_examples(test_path, "test")
        return Dataset(name, train_path, test_path, train, test, f"train -> {test_name[:-6]}")
    if name == "banking77":
        examples, fraction = read_examples(folder / "train.csv"), BANKING_HELD_OUT
    else:
        examples, fraction = labelled_examples(folder), DEMO_HELD_OUT
        if not examples:
            raise DatasetError(f"{folder}: no intent examples")
    train, test = held_out_split(examples, fraction, SEED)
    return Dataset(
        name,
        write_jsonl(train, work_dir / f"{name}-train.jsonl"),
        write_jsonl(test, work_dir / f"{name}-heldout.jsonl"),
        train,
        test,
        f"{100 * fraction:.0f} % of each intent held out (seed {SEED})",
    )


def embedding_floor(
    encoder: Encoder, train: Sequence[Example], test: Sequence[Example], oos_label: str = OOS_LABEL
) -> dict[str, Any]:
    """1-nearest-neighbour by cosine on `encoder`, no training.

    Closed-set `accuracy` and `macro_f1` over the in-scope test examples; when the test set
    has out-of-scope examples also `in_scope_accuracy`, `oos_recall` and `open_set_*` with a
    cosine threshold (below it: out-of-scope). Out-of-scope training examples are not indexed.
    """
    indexed = [(text, intent) for text, intent in train if intent != oos_label]
    labels = [intent for _, intent in indexed]
    index = encoder.encode([text for text, _ in indexed])
    queries = encoder.encode([text for text, _ in test])
    best: list[int] = []
    similarity: list[float] = []
    for start in range(0, len(test), 1024):
        block = queries[start : start + 1024] @ index.T
        best += block.argmax(axis=1).tolist()
        similarity += block.max(axis=1).tolist()
    gold = [intent for _, intent in test]
    nearest = [labels[i] for i in best]
    in_scope = [(g, p) for g, p in zip(gold, nearest, strict=True) if g != oos_label]
    closed = scores([g for g, _ in in_scope], [p for _, p in in_scope], oos_label)
    result: dict[str, Any] = {
        "accuracy": round(closed["accuracy"], 4),
        "macro_f1": round(closed["macro_f1"], 4),
        "indexed_examples": len(indexed),
    }
    if oos_label in gold:
        thresholded = [
            p if s >= FLOOR_THRESHOLD else oos_label
            for p, s in zip(nearest, similarity, strict=True)
        ]
        open_set = scores(gold, thresholded, oos_label)
        result["threshold"] = FLOOR_THRESHOLD
        result["in_scope_accuracy"] = round(open_set["in_scope_accuracy"], 4)
        result["oos_recall"] = round(open_set["oos_recall"], 4)
        result["open_set_accuracy"] = round(open_set["accuracy"], 4)
        result["open_set_macro_f1"] = round(open_set["macro_f1"], 4)
    return result


def floor_key(model: str, dataset: Dataset) -> str:
    """Names a floor by everything it depends on: model, threshold, train and test examples."""
    content = [model, FLOOR_THRESHOLD, dataset.train, dataset.test]
    return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()


def _read_floors(path: Path) -> dict[str, dict[str, Any]]:
    """Floors measured before (encoding takes minutes on a small machine); {} if none."""
    try:
        floors = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return floors if isinstance(floors, dict) else {}


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_nlu_benchmark(
    settings: Settings,
    datasets_dir: Path | None = None,
    only: Sequence[str] | None = None,
    *,
    encoder: Encoder | None = None,
    progress: Callable[[str], None] = _progress,
) -> BenchReport:
    """Trains and scores Kefu's NLU on every dataset and writes `var/bench/nlu.json`.

    Args:
        settings: Kefu's settings (`var_dir`, the Rasa runtime).
        datasets_dir: The shared public datasets (default `../shared/datasets`).
        only: Dataset names to run (default all, see `NAMES`).
        encoder: The floor's sentence encoder (default the knowledge base's model). Floors
            are kept in `var/bench/nlu/floors.json` and only measured when their model or
            examples changed.
        progress: Called with one line per step (default: printed on stderr).

    Returns:
        The written report; `table()` compares Kefu, the floor, the anchors and the targets.
        A missing dataset is skipped and a failed run recorded, both with a note.
    """
    datasets = datasets_dir or DATASETS
    work_dir = settings.var_dir / "bench" / "nlu"
    work_dir.mkdir(parents=True, exist_ok=True)
    kb_settings = knowledge_settings(settings)
    model = encoder.name if encoder is not None else kb_settings.model
    floors_path = work_dir / "floors.json"
    floors = _read_floors(floors_path)
    results: dict[str, Any] = {
        "datasets_dir": str(datasets),
        "config": str(DEFAULT_CONFIG),
        "floor": {
            "method": "1-nearest-neighbour, cosine",
            "model": model,
            "threshold": FLOOR_THRESHOLD,
        },
        "anchors_note": "published on the full test sets; here validation or held-out splits",
        "datasets": {},
    }
    for name in only or NAMES:
        try:
            dataset = prepare(name, datasets, work_dir)
        except (FileNotFoundError, DatasetError) as error:
            progress(f"{name}: skipped ({error})")
            results["datasets"][name] = {"skipped": str(error)}
            continue
        key = floor_key(model, dataset)
        if key in floors:
            progress(f"{name}: plain-embedding floor from {floors_path}")
        else:
            if encoder is None:
                progress("Loading the sentence encoder for the plain-embedding floor ...")
                encoder = load_encoder(
                    model, threads=kb_settings.encoder_threads, batch_size=kb_settings.batch_size
                )
            progress(f"{name}: plain-embedding floor on {len(dataset.test):,} test examples ...")
            floors[key] = embedding_floor(encoder, dataset.train, dataset.test)
            floors_path.write_text(json.dumps(floors, indent=1), encoding="utf-8")
        floor = floors[key]
        progress(
            f"{name}: training on {len(dataset.train):,} examples, "
            f"testing on {len(dataset.test):,} ..."
        )
        block: dict[str, Any] = {
            "train": str(dataset.train_path),
            "test": str(dataset.test_path),
            "split": dataset.split,
            "floor": floor,
            "anchors": ANCHORS.get(name, {}),
        }
        if name in ANCHOR_NOTES:
            block["anchors_note"] = ANCHOR_NOTES[name]
        log_path = settings.var_dir / "logs" / f"nlu-bench-{name}.log"
        try:
            run = run_nlu_bench(
                settings, dataset.train_path, dataset.test_path, DEFAULT_CONFIG, OOS_LABEL, log_path
            )
        except NluBenchError as error:
            progress(f"{name}: failed: {error}")
            block["error"] = str(error)
            run = {}
        else:
            progress(f"{name}: done in {run.get('train_seconds', 0):.0f} s of training")
        block["kefu"] = run
        block["targets"] = [t.as_dict(run) for t in TARGETS if t.dataset == name]
        results["datasets"][name] = block
    measured = [t for block in results["datasets"].values() for t in block.get("targets", [])]
    results["all_targets_met"] = bool(measured) and all(t["met"] is True for t in measured)
    report = NluReport("nlu", results, settings.var_dir / "bench" / "nlu.json")
    report.write()
    return report


COLUMNS = ("dataset", "metric", "Kefu", "floor", "published anchors", "target", "met")

_PERCENT = (
    ("in_scope_accuracy", "in-scope accuracy %"),
    ("oos_recall", "oos recall %"),
    ("accuracy", "accuracy %"),
    ("macro_f1", "macro-F1 %"),
    ("fallback_rate", "fallback rate %"),
)
_PLAIN = (
    ("train_seconds", "train s", "{:.0f}"),
    ("parse_p50_ms", "parse p50 ms", "{:.1f}"),
    ("parse_p95_ms", "parse p95 ms", "{:.1f}"),
    ("model_mb", "model MB", "{:.1f}"),
)


def _pct(value: Any) -> str:
    return f"{100 * value:.2f}" if isinstance(value, int | float) else "-"


def _target_cells(target: dict[str, Any] | None, percent: bool) -> tuple[str, str]:
    if target is None:
        return "", ""
    shown = _pct(target["value"]) if percent else f"{target['value']:g}"
    return f"{target['op']} {shown}", {True: "yes", False: "NO", None: "-"}[target["met"]]


def _floor_cell(metric: str, floor: dict[str, Any]) -> str:
    if "in_scope_accuracy" not in floor:  # closed set: the floor is comparable as it is
        return _pct(floor.get(metric))
    if metric == "in_scope_accuracy":
        return f"{_pct(floor[metric])} ({_pct(floor.get('accuracy'))} no threshold)"
    return _pct(floor.get(f"open_set_{metric}", floor.get(metric)))


def rows(results: dict[str, Any]) -> list[tuple[str, ...]]:
    """The table's rows (see `COLUMNS`) of every dataset that ran, in run order."""
    table: list[tuple[str, ...]] = []
    for name, block in results["datasets"].items():
        if "skipped" in block:
            continue
        run, floor = block["kefu"], block["floor"]
        targets = {t["metric"]: t for t in block["targets"]}
        examples = "-"
        if run:
            examples = (
                f"{run.get('train_examples', 0):,} / {run.get('test_examples', 0):,}, "
                f"{run.get('intents', 0)} intents"
            )
        table.append((name, "examples train / test", examples, "", "", "", ""))
        for metric, label in _PERCENT:
            if metric not in run and metric not in floor:
                continue
            anchors = block["anchors"].get(metric, {})
            anchor_cell = ", ".join(f"{who} {100 * v:.2f}" for who, v in anchors.items())
            if not anchor_cell and metric == "accuracy":
                anchor_cell = block.get("anchors_note", "")
            floor_cell = "" if metric == "fallback_rate" else _floor_cell(metric, floor)
            target, met = _target_cells(targets.get(metric), percent=True)
            table.append((name, label, _pct(run.get(metric)), floor_cell, anchor_cell, target, met))
        for metric, label, form in _PLAIN:
            value = run.get(metric)
            shown = form.format(value) if isinstance(value, int | float) else "-"
            target, met = _target_cells(targets.get(metric), percent=False)
            table.append((name, label, shown, "", "", target, met))
    return table


def notes(results: dict[str, Any]) -> list[str]:
    """One line per skipped dataset or failed run."""
    lines = []
    for name, block in results["datasets"].items():
        if "skipped" in block:
            lines.append(f"{name}: skipped ({block['skipped']})")
        elif "error" in block:
            lines.append(f"{name}: failed: {block['error'].splitlines()[0]}")
    return lines


def table(results: dict[str, Any]) -> str:
    """The results as aligned text: Kefu beside the floor, the anchors and the targets."""
    body = rows(results)
    widths = [max(len(row[i]) for row in [COLUMNS, *body]) for i in range(len(COLUMNS))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    lines = [line(COLUMNS), "-" * len(line(COLUMNS)), *(line(row) for row in body)]
    if "in_scope_accuracy" in results["datasets"].get("clinc150", {}).get("floor", {}):
        lines.append(f"CLINC150 floor: cosine < {FLOOR_THRESHOLD} answers out-of-scope.")
    lines.append(
        "Floor: 1-nearest-neighbour on the sentence encoder. Anchors: published on the full "
        "test sets (here: validation or held-out splits)."
    )
    lines += notes(results)
    verdict = "all met" if results.get("all_targets_met") else "NOT all met"
    lines.append(f"Targets: {verdict}.")
    return "\n".join(lines)


class NluReport(BenchReport):
    """The NLU benchmark's report; `table()` has a column per comparison."""

    def table(self) -> str:
        """See `table`."""
        return table(self.results)
