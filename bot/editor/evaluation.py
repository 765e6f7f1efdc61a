"""`kefu evaluate`: the NLU on a stable held-out split, the knowledge base on the editor's queries.

The split holds out the same examples run after run (each intent's examples sorted by a hash of
their text), so two evaluations of slightly different data compare like with like. Training and
prediction run in the Rasa runtime (`python -m nlu_bench`); this side scores the predictions as
the bot acts on them (a fallback is a miss), draws the confusion matrix and writes the report.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.core.files import replace_text
from bot.core.nlu_runs import NluBenchError, run_nlu_bench
from bot.core.settings import PROJECT_ROOT, Settings
from bot.editor.cross_validation import IntentScores
from bot.knowledge.index import knowledge_settings
from kefu_shared.nlu_data import labelled_examples
from nlu_bench.datasets import Example, write_jsonl

HELD_OUT_FRACTION = 0.2
FALLBACK = "nlu_fallback"
EVALUATION_FILE = "evaluation.json"
CONFIG = PROJECT_ROOT / "config.yml"


class EvaluationError(RuntimeError):
    """The data cannot be evaluated (too few examples, training failed); says why."""


@dataclass(frozen=True)
class Miss:
    """A held-out example the bot would get wrong."""

    text: str
    intent: str
    predicted: str
    confidence: float


@dataclass
class Evaluation:
    """One evaluation of the editor's data; saved as `evaluation.json` in its folder."""

    key: str
    macro_f1: float
    accuracy: float
    fallback_rate: float
    intents: list[IntentScores]
    misses: list[Miss]
    train_examples: int
    test_examples: int
    knowledge: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    folder: str = ""

    def f1_by_intent(self) -> dict[str, float]:
        """Each intent's held-out F1."""
        return {result.intent: result.f1 for result in self.intents}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evaluation:
        """Reads what `to_dict` wrote."""
        return cls(
            **{
                **data,
                "intents": [IntentScores(**item) for item in data["intents"]],
                "misses": [Miss(**item) for item in data["misses"]],
            }
        )


def evaluation_key(settings: Settings) -> str:
    """A hash of what the NLU evaluation depends on: the NLU examples, config and jieba words."""
    digest = hashlib.sha256()
    files = [*sorted(settings.nlu_dir.rglob("*.yml")), CONFIG]
    files += sorted((settings.data_dir / "jieba").glob("*.txt"))
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def stable_split(
    examples: Sequence[Example], fraction: float = HELD_OUT_FRACTION
) -> tuple[list[Example], list[Example]]:
    """Splits into (train, held out): in each intent, the examples with the lowest text hashes.

    Adding or removing one example moves at most one other between the two sides.
    """
    by_intent: dict[str, list[Example]] = defaultdict(list)
    for example in dict.fromkeys(examples):  # duplicates would leak into both sides
        by_intent[example[1]].append(example)
    train: list[Example] = []
    held_out: list[Example] = []
    for intent in sorted(by_intent):
        group = sorted(by_intent[intent], key=lambda e: hashlib.sha256(e[0].encode()).hexdigest())
        count = max(1, round(len(group) * fraction)) if len(group) >= 3 else 0
        held_out += group[:count]
        train += group[count:]
    return train, held_out


def score(rows: Sequence[dict[str, Any]]) -> tuple[float, float, list[IntentScores]]:
    """Macro-F1, accuracy and per-intent results of prediction rows (`intent`, `predicted`).

    Every gold intent counts in the macro average; a fallback is a miss of its gold intent.
    """
    gold = Counter(row["intent"] for row in rows)
    predicted = Counter(row["predicted"] for row in rows)
    right = Counter(row["intent"] for row in rows if row["intent"] == row["predicted"])
    results = []
    f1_values = []
    for intent in sorted(gold):
        precision = right[intent] / predicted[intent] if predicted[intent] else 0.0
        recall = right[intent] / gold[intent]
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        f1_values.append(f1)
        results.append(
            IntentScores(intent, round(precision, 4), round(recall, 4), round(f1, 4), gold[intent])
        )
    macro = sum(f1_values) / len(f1_values) if f1_values else 0.0
    accuracy = sum(right.values()) / len(rows) if rows else 0.0
    return round(macro, 4), round(accuracy, 4), results


def evaluate(
    settings: Settings,
    *,
    out: Path | None = None,
    kb_queries: Path | None = None,
    force: bool = False,
) -> Evaluation:
    """Evaluates the NLU and the knowledge base of `settings.data_dir`; writes the report.

    A folder that already holds the evaluation of the same inputs is reused unless `force`.

    Raises:
        EvaluationError: Too little data, or training failed (names the log).
    """
    key = evaluation_key(settings)
    folder = out or settings.var_dir / "eval" / "editor" / key
    saved = folder / EVALUATION_FILE
    if saved.is_file() and not force:
        return load_evaluation(saved)
    folder.mkdir(parents=True, exist_ok=True)
    train, held_out = stable_split(labelled_examples(settings.nlu_dir))
    if len({intent for _, intent in train}) < 2 or not held_out:
        raise EvaluationError(f"{settings.nlu_dir}: too few examples to hold any out")
    predictions = folder / "predictions.jsonl"
    try:
        result = run_nlu_bench(
            settings,
            write_jsonl(train, folder / "train.jsonl"),
            write_jsonl(held_out, folder / "held_out.jsonl"),
            CONFIG,
            "oos",
            folder / "rasa.log",
            predictions,
        )
    except NluBenchError as error:
        raise EvaluationError(str(error)) from error
    rows = [json.loads(line) for line in predictions.read_text("utf-8").splitlines() if line]
    macro, accuracy, intents = score(rows)
    evaluation = Evaluation(
        key=key,
        macro_f1=macro,
        accuracy=accuracy,
        fallback_rate=float(result.get("fallback_rate", 0.0)),
        intents=intents,
        misses=[
            Miss(row["text"], row["intent"], row["predicted"], row["confidence"])
            for row in rows
            if row["predicted"] != row["intent"]
        ],
        train_examples=len(train),
        test_examples=len(held_out),
        knowledge=_knowledge_eval(settings, kb_queries),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        folder=str(folder),
    )
    draw_confusion(rows, folder / "confusion.png")
    write_report(evaluation, folder)
    replace_text(saved, json.dumps(evaluation.to_dict(), ensure_ascii=False, indent=2))
    return evaluation


def load_evaluation(path: Path) -> Evaluation:
    """Reads a saved `evaluation.json`."""
    return Evaluation.from_dict(json.loads(path.read_text("utf-8")))


def _knowledge_eval(settings: Settings, queries: Path | None) -> dict[str, Any]:
    """The knowledge base's hybrid-search metrics on the editor's test queries (if any)."""
    from knowledge_index import KnowledgeIndexError, evaluate_files

    queries = queries or settings.data_dir / "kb_test_queries.jsonl"
    if not queries.is_file():
        return {}
    try:
        report = evaluate_files(
            settings.knowledge_source_dir, queries, knowledge_settings(settings)
        )
    except (KnowledgeIndexError, ValueError) as error:
        return {"error": str(error)}
    return {
        "queries": str(queries),
        "n_queries": report["n_queries"],
        "entries": report["entries"],
        **{k: v for k, v in report["hybrid"].items() if not k.endswith("_ms")},
    }


def draw_confusion(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Draws the confusion matrix (gold rows, predicted columns, fallback last) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    gold = sorted({row["intent"] for row in rows})
    columns = gold + sorted({row["predicted"] for row in rows} - set(gold))
    counts = np.zeros((len(gold), len(columns)), dtype=int)
    for row in rows:
        counts[gold.index(row["intent"]), columns.index(row["predicted"])] += 1
    size = max(6.0, 0.32 * len(columns) + 3)
    figure, axes = plt.subplots(figsize=(size, size * len(gold) / len(columns) + 1))
    axes.imshow(counts, cmap="Blues")
    axes.set_xticks(range(len(columns)), columns, rotation=90, fontsize=7)
    axes.set_yticks(range(len(gold)), gold, fontsize=7)
    axes.set_xlabel("predicted")
    axes.set_ylabel("expected")
    for (i, j), count in np.ndenumerate(counts):
        if count:
            colour = "white" if count > counts.max() / 2 else "black"
            axes.text(j, i, str(count), ha="center", va="center", fontsize=6, color=colour)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def markdown_report(evaluation: Evaluation) -> str:
    """The report as Markdown: summary, worst intents first, misclassified examples, KB."""
    lines = [
        "# Kefu evaluation",
        "",
        f"Data `{evaluation.key}`, {evaluation.created_at}: trained on "
        f"{evaluation.train_examples} examples, {evaluation.test_examples} held out.",
        "",
        f"- **macro-F1 {evaluation.macro_f1:.3f}**, accuracy {evaluation.accuracy:.3f}, "
        f"fallbacks {evaluation.fallback_rate:.1%}",
    ]
    knowledge = evaluation.knowledge
    if knowledge and "error" not in knowledge:
        lines.append(
            f"- knowledge base: hit@1 {knowledge.get('hit@1')}, answered precision "
            f"{knowledge.get('answered_precision')}, no-answer recall "
            f"{knowledge.get('no_answer_recall')} on {knowledge['n_queries']} test queries"
        )
    elif knowledge:
        lines.append(f"- knowledge base: {knowledge['error']}")
    lines += ["", "![confusion matrix](confusion.png)", "", "## Intents (worst first)", ""]
    lines += ["| intent | precision | recall | F1 | held out |", "|---|---|---|---|---|"]
    for result in sorted(evaluation.intents, key=lambda r: (r.f1, r.intent)):
        lines.append(
            f"| {result.intent} | {result.precision:.3f} | {result.recall:.3f} | "
            f"{result.f1:.3f} | {result.support} |"
        )
    lines += ["", f"## Misclassified ({len(evaluation.misses)})", ""]
    lines += ["| example | expected | predicted | confidence |", "|---|---|---|---|"]
    for miss in evaluation.misses:
        text = miss.text.replace("|", "\\|")
        lines.append(f"| {text} | {miss.intent} | {miss.predicted} | {miss.confidence:.2f} |")
    return "\n".join(lines) + "\n"


def html_report(evaluation: Evaluation) -> str:
    """The same report as one self-contained HTML page (the PNG beside it)."""
    escape = html.escape
    rows = "".join(
        f"<tr><td>{escape(r.intent)}</td><td>{r.precision:.3f}</td><td>{r.recall:.3f}</td>"
        f"<td class={'low' if r.f1 < 0.8 else 'ok'}>{r.f1:.3f}</td><td>{r.support}</td></tr>"
        for r in sorted(evaluation.intents, key=lambda r: (r.f1, r.intent))
    )
    misses = "".join(
        f"<tr><td>{escape(m.text)}</td><td>{escape(m.intent)}</td><td>{escape(m.predicted)}</td>"
        f"<td>{m.confidence:.2f}</td></tr>"
        for m in evaluation.misses
    )
    knowledge = evaluation.knowledge
    kb = (
        f"<p>Knowledge base on {knowledge['n_queries']} test queries: hit@1 "
        f"{knowledge.get('hit@1')}, answered precision {knowledge.get('answered_precision')}, "
        f"no-answer recall {knowledge.get('no_answer_recall')}</p>"
        if knowledge and "error" not in knowledge
        else f"<p>Knowledge base: {escape(str(knowledge.get('error', 'no test queries')))}</p>"
    )
    style = (
        "body{font-family:sans-serif;margin:2em;max-width:70em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em}"
        ".low{background:#fdd}.ok{background:#dfd}img{max-width:100%}"
    )
    return (
        "<!doctype html><html lang=en><meta charset=utf-8><title>Kefu evaluation</title>"
        f"<style>{style}</style><h1>Kefu evaluation</h1>"
        f"<p>Data <code>{evaluation.key}</code>, {escape(evaluation.created_at)}: "
        f"{evaluation.train_examples} training examples, {evaluation.test_examples} held out.</p>"
        f"<p><b>macro-F1 {evaluation.macro_f1:.3f}</b>, accuracy {evaluation.accuracy:.3f}, "
        f"fallbacks {evaluation.fallback_rate:.1%}</p>{kb}"
        "<h2>Intents (worst first)</h2><table><tr><th>intent</th><th>precision</th>"
        f"<th>recall</th><th>F1</th><th>held out</th></tr>{rows}</table>"
        f"<h2>Misclassified ({len(evaluation.misses)})</h2><table><tr><th>example</th>"
        f"<th>expected</th><th>predicted</th><th>confidence</th></tr>{misses}</table>"
        '<h2>Confusion matrix</h2><img src="confusion.png" alt="confusion matrix"></html>\n'
    )


def write_report(evaluation: Evaluation, folder: Path) -> tuple[Path, Path]:
    """Writes `report.md` and `report.html` (and `misclassified.jsonl`) into `folder`."""
    with (folder / "misclassified.jsonl").open("w", encoding="utf-8") as handle:
        for miss in evaluation.misses:
            handle.write(json.dumps(asdict(miss), ensure_ascii=False) + "\n")
    markdown = folder / "report.md"
    markdown.write_text(markdown_report(evaluation), "utf-8")
    page = folder / "report.html"
    page.write_text(html_report(evaluation), "utf-8")
    return markdown, page
