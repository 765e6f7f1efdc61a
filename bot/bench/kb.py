"""Knowledge-base retrieval benchmark: the demo KB, public FAQ sets and a 10k KB.

Sets: the demo KB with the project's own test queries; BANKING77 and Dialogflow's small talk
(Chinese and English) as FAQs the shipped calibration was never fitted on; CLINC150 val against
its train split (the calibration's fitting data comes from CLINC150 train, so this row is a
validation, not a transfer test). Every row reports the ranking (hit@1), the answer band (answer
rate, answered precision, no-answer recall) and the suggest band (suggestion rate, and how often
the right entry is among the suggestions).

The public datasets are read in place (default `../shared/datasets`, see its README for the
originals); nothing is copied into the repository.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.bench.common import BenchReport, percentile
from bot.core.settings import PROJECT_ROOT, Settings
from bot.knowledge.index import knowledge_settings
from knowledge_index import (
    Encoder,
    KnowledgeEntry,
    KnowledgeIndex,
    KnowledgeSettings,
    LabelledQuery,
    Tokenizer,
    evaluate,
    evaluate_files,
    load_encoder,
)
from knowledge_index.shipped import shipped_data
from nlu_bench.datasets import Example, held_out_split, read_examples

DATASETS = PROJECT_ROOT.parent / "shared" / "datasets"
BANKING_FLOOR = 0.886
CLINC_FLOOR = 0.887
HELD_OUT_SHARE = 0.2
DIALOGFLOW_QUERY_SHARE = 0.5
SEED = 0
DEMO_PRECISION = 0.98
FAQ_PRECISION = 0.95
SUGGESTION_HIT = 0.80
OOS = "oos"
SYNTHETIC_ENTRIES = 10_000


def _faq(phrasings: dict[str, list[str]], language: str = "en") -> list[KnowledgeEntry]:
    """One entry per intent: first phrasing as question, the rest as alternatives."""
    return [
        KnowledgeEntry(
            id=intent,
            question=texts[0],
            answer=f"[answer for {intent}]",
            alt_questions=tuple(texts[1:]),
            language="en" if language == "en" else "zh",
            topic="bench",
        )
        for intent, texts in phrasings.items()
    ]


def _by_intent(examples: Sequence[Example]) -> dict[str, list[str]]:
    """Phrasings grouped by intent, in file order."""
    grouped: dict[str, list[str]] = {}
    for text, intent in examples:
        grouped.setdefault(intent, []).append(text)
    return grouped


def _build(
    entries: Sequence[KnowledgeEntry],
    encoder: Encoder,
    settings: KnowledgeSettings,
    extra: Sequence[tuple[str, str | None]] = (),
) -> KnowledgeIndex:
    return KnowledgeIndex.build(
        entries,
        encoder,
        Tokenizer(settings.jieba_dictionary),
        exact_limit=settings.exact_search_limit,
        calibration_queries=settings.calibration_queries,
        extra_queries=extra,
    )


def _metrics(
    index: KnowledgeIndex, queries: Sequence[LabelledQuery], settings: KnowledgeSettings
) -> dict[str, Any]:
    results = evaluate(
        index,
        queries,
        answer_threshold=settings.answer_threshold,
        suggest_threshold=settings.suggest_threshold,
        suggest_mass=settings.suggest_mass,
        max_suggestions=settings.max_suggestions,
    )
    return {
        "entries": len(index.entries),
        "indexed_questions": len(index.questions),
        "queries": len(queries),
        "build_s": index.info["build_seconds"],
        **{mode: metrics.to_dict() for mode, metrics in results.items()},
    }


def banking77(datasets: Path, encoder: Encoder, settings: KnowledgeSettings) -> dict[str, Any]:
    """BANKING77 train as an FAQ; 20 % of each intent's phrasings held out (not indexed)."""
    examples = read_examples(datasets / "banking77" / "train.csv")
    indexed, held_out = held_out_split(examples, HELD_OUT_SHARE, SEED)
    queries = [LabelledQuery(text, intent) for text, intent in held_out]
    return _metrics(_build(_faq(_by_intent(indexed)), encoder, settings), queries, settings)


def clinc150(datasets: Path, encoder: Encoder, settings: KnowledgeSettings) -> dict[str, Any]:
    """CLINC150 train as an FAQ, calibrated with `oos_train`; evaluated on val + oos_val."""
    path = datasets / "clinc150" / "data_full_train_val.json"
    train, test = read_examples(path, "train"), read_examples(path, "test")  # test: val + oos_val
    extra: list[tuple[str, str | None]] = [(text, None) for text, i in train if i == OOS]
    in_scope = [(text, intent) for text, intent in train if intent != OOS]
    index = _build(_faq(_by_intent(in_scope)), encoder, settings, extra)
    queries = [LabelledQuery(text, None if i == OOS else i) for text, i in test]
    return _metrics(index, queries, settings)


def read_rasa_examples(path: Path) -> list[Example]:
    """`(text, intent)` pairs of a Rasa NLU JSON file (`rasa_nlu_data.common_examples`)."""
    data = json.loads(path.read_text("utf-8"))
    return [
        (str(item["text"]).strip(), str(item["intent"]))
        for item in data["rasa_nlu_data"]["common_examples"]
        if str(item.get("text", "")).strip()
    ]


def dialogflow(
    datasets: Path, encoder: Encoder, settings: KnowledgeSettings, language: str
) -> dict[str, Any]:
    """Dialogflow small talk as an FAQ: per intent half the phrasings indexed, half queries.

    Args:
        datasets: The shared public datasets.
        encoder: The embedding model.
        settings: Thresholds and limits.
        language: `zh` (zh-CN.json) or `en` (en.json).
    """
    name = "zh-CN.json" if language == "zh" else "en.json"
    examples = read_rasa_examples(datasets / "dialogflow_smalltalk" / name)
    examples = list(dict.fromkeys(examples))
    indexed, held_out = held_out_split(examples, DIALOGFLOW_QUERY_SHARE, SEED)
    queries = [LabelledQuery(text, intent) for text, intent in held_out]
    index = _build(_faq(_by_intent(indexed), language), encoder, settings)
    return _metrics(index, queries, settings)


def synthetic(datasets: Path, encoder: Encoder, settings: KnowledgeSettings) -> dict[str, Any]:
    """A 10,000-entry KB from CLINC150 and BANKING77 phrasings: build time and query latency."""
    data = json.loads((datasets / "clinc150" / "data_full_train_val.json").read_text("utf-8"))
    texts = [text for text, _ in data["train"]]
    with (datasets / "banking77" / "train.csv").open(encoding="utf-8", newline="") as handle:
        texts += [row["text"] for row in csv.DictReader(handle)]
    texts = list(dict.fromkeys(texts))
    entries = [
        KnowledgeEntry(
            id=f"synthetic-{i:05d}",
            question=texts[i],
            answer=f"[answer {i}]",
            alt_questions=(texts[i + SYNTHETIC_ENTRIES],),
            language="en",
        )
        for i in range(SYNTHETIC_ENTRIES)
    ]
    started = time.perf_counter()
    index = _build(entries, encoder, settings)
    build_s = time.perf_counter() - started
    latencies = []
    for text, _ in data["val"][:500]:
        begun = time.perf_counter()
        index.search(text, 5)
        latencies.append((time.perf_counter() - begun) * 1000)
    return {
        "entries": len(entries),
        "indexed_questions": len(index.questions),
        "index_kind": index.dense.kind,
        "build_s": round(build_s, 2),
        "p50_ms": round(percentile(latencies, 50), 3),
        "p95_ms": round(percentile(latencies, 95), 3),
    }


def run_kb_benchmark(settings: Settings, datasets: Path | None = None) -> BenchReport:
    """Runs every knowledge-base benchmark and writes `var/bench/kb.json`.

    Args:
        settings: Kefu's settings (for `var_dir`).
        datasets: The shared public datasets (default `../shared/datasets`).

    Returns:
        The written report; `table()` gives the summary.
    """
    datasets = datasets or DATASETS
    kb_settings = knowledge_settings(settings)
    encoder = load_encoder(
        kb_settings.model, threads=kb_settings.encoder_threads, batch_size=kb_settings.batch_size
    )
    demo_kb = PROJECT_ROOT / "data" / "knowledge"
    demo_queries = PROJECT_ROOT / "data" / "kb_test_queries.jsonl"
    shipped = shipped_data(encoder.name) or {}
    results: dict[str, Any] = {
        "model": encoder.name,
        "answer_threshold": kb_settings.answer_threshold,
        "suggest_threshold": kb_settings.suggest_threshold,
        "suggest_mass": kb_settings.suggest_mass,
        "calibration": {
            "shipped": bool(shipped),
            "fitted_at": shipped.get("fitted_at"),
            "fitted_on": {
                key: value for key, value in shipped.get("fitted_on", {}).items() if key != "tasks"
            },
            "levels": shipped.get("levels"),
            "fit_metrics": shipped.get("fit_metrics"),
        },
        "demo": evaluate_files(demo_kb, demo_queries, kb_settings, encoder=encoder),
        "banking77": banking77(datasets, encoder, kb_settings),
        "dialogflow_zh": dialogflow(datasets, encoder, kb_settings, "zh"),
        "dialogflow_en": dialogflow(datasets, encoder, kb_settings, "en"),
        "clinc150": clinc150(datasets, encoder, kb_settings),
        "synthetic_10k": synthetic(datasets, encoder, kb_settings),
    }
    report = BenchReport("kb", results, settings.var_dir / "bench" / "kb.json")
    report.rows = _rows(results)
    report.write()
    return report


SETS = (
    # name, hit@1 floor, precision target
    ("demo", None, DEMO_PRECISION),
    ("banking77", BANKING_FLOOR, FAQ_PRECISION),
    ("dialogflow_zh", None, FAQ_PRECISION),
    ("dialogflow_en", None, FAQ_PRECISION),
    ("clinc150", CLINC_FLOOR, FAQ_PRECISION),
)


def _rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.1f} %"

    rows = [
        (
            "levels: answer / suggest floor / suggest mass",
            f"{results['answer_threshold']:.3f} / {results['suggest_threshold']:.2f} / "
            f"{results['suggest_mass']:.2f}",
            "shipped calibration" if results["calibration"]["shipped"] else "fitted on each KB",
        )
    ]
    for name, floor, precision in SETS:
        block = results[name]
        for mode in ("hybrid", "dense", "lexical"):
            target = f">= {100 * (floor + 0.05):.1f} %" if floor and mode == "hybrid" else ""
            rows.append((f"{name} {mode} hit@1", pct(block[mode]["hit@1"]), target))
        hybrid = block["hybrid"]
        rows.append((f"{name} hybrid hit@5", pct(hybrid["hit@5"]), ""))
        rows.append((f"{name} hybrid answer rate", pct(hybrid["answer_rate"]), ""))
        rows.append(
            (
                f"{name} hybrid answered precision",
                pct(hybrid["answered_precision"]),
                f">= {100 * precision:.1f} %",
            )
        )
        if hybrid["no_answer_recall"] is not None:
            rows.append((f"{name} hybrid no-answer recall", pct(hybrid["no_answer_recall"]), ""))
        rows.append((f"{name} hybrid suggestion rate", pct(hybrid["suggestion_rate"]), ""))
        rows.append(
            (
                f"{name} hybrid suggestion hit rate",
                pct(hybrid["suggestion_hit_rate"]),
                f">= {100 * SUGGESTION_HIT:.0f} %",
            )
        )
        rows.append((f"{name} hybrid p95 latency", f"{hybrid['p95_ms']:.1f} ms", "<= 20 ms"))
    synthetic_block = results["synthetic_10k"]
    rows.append(("10k entries build", f"{synthetic_block['build_s']:.1f} s", "<= 60 s"))
    rows.append(("10k entries p95 latency", f"{synthetic_block['p95_ms']:.1f} ms", "<= 20 ms"))
    return rows
