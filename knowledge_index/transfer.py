r"""Fits the shipped, transferable confidence models on public data (`calibration/<model>.json`).

Refit (a few minutes on two cores; reads the datasets in place, writes one small JSON file)::

    cd /work/main && PYTHONPATH=. .venv-app/bin/python -m knowledge_index.transfer \\
        --datasets ../shared/datasets

Fitting data: FAQ-shaped tasks built from the *training* splits of CLINC150 (`train` and
`oos_train`), SMP2019 (`train.jsonl`) and CAIS (`train.jsonl`); no validation or test split and
no project data is read. Each task turns one dataset into a knowledge base: per intent a few
phrasings (3 to 40, varied from task to task) become the entry's question and alternatives, and
up to `MAX_QUERIES` of its other phrasings are the queries. About a quarter of the queries have no
entry, as in the project's own test queries: 8 % come from intents left out of the KB (close
neighbours of kept entries: the hardest refusals) and 17 % from further away (a left-out cluster
of CLINC150 intents and its `oos_train`; for the Chinese tasks, intents of the other Chinese
dataset that neither covers).

Every task's index is built as in production (its ranker fitted on its own leave-one-out
queries), then each query's three best candidates become training rows of a monotone logistic
model per ranking mode, tasks weighted equally. The levels of the decision are chosen on the same
rows (never on evaluation data):

- answer threshold: the lowest top confidence at which the pooled answered precision is
  >= `PRECISION_TARGET` (0.985);
- a hit is suggested only with confidence >= `SUGGEST_FLOOR`, and suggestions are shown only when
  their summed confidence is >= the suggest mass: the lowest level (in steps of 0.05) at which
  the right entry is among the suggestions in >= `SUGGEST_HIT_TARGET` of the fitting queries that
  get suggestions.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from knowledge_index.calibration import Calibrator
from knowledge_index.encoders import Encoder
from knowledge_index.fusion import MODES, Mode
from knowledge_index.index import KnowledgeIndex
from knowledge_index.shipped import SHIPPED_FORMAT, calibration_file
from knowledge_index.sources import KnowledgeEntry, Language
from knowledge_index.text import Tokenizer

TRANSFER_FEATURES: dict[Mode, tuple[str, ...]] = {
    "hybrid": (
        "posterior",
        "cosine",
        "cosine_margin",
        "centroid_margin",
        "whitened_centroid",
        "whitened_margin",
        "knn_share",
        "bm25",
        "bm25_margin",
        "query_coverage",
        "query_coverage_margin",
        "rarity",
    ),
    "dense": (
        "cosine",
        "cosine_margin",
        "centroid_cosine",
        "centroid_margin",
        "whitened_centroid",
        "whitened_margin",
        "knn_share",
        "rarity",
    ),
    "lexical": (
        "bm25",
        "bm25_relative",
        "bm25_margin",
        "coverage",
        "query_coverage",
        "query_coverage_margin",
        "rarity",
    ),
}
"""Scale-free features of each mode's transferable model (all oriented "larger is better")."""

PRECISION_TARGET = 0.985
SUGGEST_FLOOR = 0.05
SUGGEST_HIT_TARGET = 0.85
MAX_SUGGESTIONS = 3
TOP = 3
"""Candidates per query used as training rows (the answer and the suggestions)."""
L2 = 1e-4
MAX_QUERIES = {"clinc150": 5, "smp2019": 10, "cais": 40}
NEAR_SHARE = 0.08
FAR_SHARE = 0.17
NEAR_INTENTS = 0.12
"""Share of a task's intents (outside the far cluster) left out of its KB."""
TASKS = 10
"""Tasks per dataset (CAIS, with 13 intents, gets half as many)."""
KB_SIZES: tuple[tuple[int, ...], ...] = (
    (3, 4, 5),
    (4, 5, 6, 8),
    (6, 8, 10, 15),
    (15, 25, 40),
    (2, 3, 4, 5, 6, 8, 10, 20),
)
"""Phrasings per entry, drawn per intent; task `i` uses `KB_SIZES[i % 5]`."""
CLINC_CLUSTERS = 12
CAIS_FAR_FOR_SMP = ("Remind", "ControlSystem", "Chat")
"""CAIS intents no SMP2019 domain covers: out-of-domain queries for the SMP2019 tasks."""
SMP_FAR_FOR_CAIS = (
    *("app", "bus", "cinemas", "contacts", "cookbook", "email", "epg", "flight", "health"),
    *("lottery", "map", "match", "message", "riddle", "stock", "telephone", "train"),
    *("translation", "tvchannel", "video", "website"),
)
"""SMP2019 domains no CAIS intent covers: out-of-domain queries for the CAIS tasks."""

Grouped = dict[str, list[str]]
LabelledRows = list[tuple[NDArray[np.float64], NDArray[np.bool_]]]


@dataclass(frozen=True)
class Task:
    """One FAQ-shaped fitting task: entries and `(query, expected id or None)` pairs."""

    name: str
    language: Language
    entries: list[KnowledgeEntry]
    queries: list[tuple[str, str | None]]


def _group(pairs: Iterable[tuple[str, str]]) -> Grouped:
    grouped: Grouped = {}
    for text, intent in pairs:
        text = text.strip()
        if text:
            grouped.setdefault(intent, []).append(text)
    return {intent: list(dict.fromkeys(texts)) for intent, texts in grouped.items()}


def _jsonl(path: Path, key: str) -> Grouped:
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    return _group((row["text"], row[key]) for row in rows)


def read_clinc(datasets: Path) -> tuple[Grouped, list[str]]:
    """CLINC150 `train` by intent, and `oos_train`."""
    data = json.loads((datasets / "clinc150" / "data_full_train_val.json").read_text("utf-8"))
    return _group((t, i) for t, i in data["train"]), [t for t, _ in data["oos_train"]]


def read_smp(datasets: Path) -> Grouped:
    """SMP2019 `train.jsonl` by `domain.intent` label."""
    return _jsonl(datasets / "smp2019" / "train.jsonl", "label")


def read_cais(datasets: Path) -> Grouped:
    """CAIS `train.jsonl` by intent."""
    return _jsonl(datasets / "cais" / "train.jsonl", "intent")


def cluster_intents(grouped: Grouped, encoder: Encoder, clusters: int) -> dict[str, int]:
    """Intents grouped by the cosine of their mean phrasing vectors (average linkage)."""
    from scipy.cluster.hierarchy import fcluster, linkage

    names = sorted(grouped)
    centroids = np.stack([encoder.encode(grouped[name][:30]).mean(axis=0) for name in names])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    labels = fcluster(linkage(centroids, "average", metric="cosine"), clusters, "maxclust")
    return {name: int(label) for name, label in zip(names, labels, strict=True)}


def make_task(
    name: str,
    grouped: Grouped,
    *,
    seed: int,
    sizes: Sequence[int],
    group_of: Callable[[str], str | int],
    far_pool: Sequence[str],
    language: Language,
    max_queries: int,
    far_groups: int = 0,
) -> Task:
    """One fitting task from a dataset's phrasings by intent (see the module docstring)."""
    rng = random.Random(seed)  # noqa: S311 (a reproducible sample, not security)
    intents = sorted(grouped)
    groups = sorted({group_of(i) for i in intents}, key=str)
    rng.shuffle(groups)
    far_out = set(groups[:far_groups])
    kept = [i for i in intents if group_of(i) not in far_out]
    rng.shuffle(kept)
    near_out = set(kept[: max(1, round(len(kept) * NEAR_INTENTS))])
    phrasings: dict[str, list[str]] = {}
    answerable: list[tuple[str, str | None]] = []
    near: list[str] = []
    far = list(far_pool)
    for intent in intents:
        texts = list(grouped[intent])
        rng.shuffle(texts)
        if group_of(intent) in far_out:
            far += texts[:max_queries]
        elif intent in near_out:
            near += texts[:max_queries]
        elif len(texts) >= 2:
            count = min(rng.choice(sizes), len(texts) - 1)
            phrasings[intent] = texts[:count]
            answerable += [(text, intent) for text in texts[count : count + max_queries]]
    total = len(answerable) / (1 - NEAR_SHARE - FAR_SHARE)
    near = rng.sample(near, min(len(near), int(total * NEAR_SHARE)))
    far = rng.sample(far, min(len(far), int(total * FAR_SHARE)))
    entries = [
        KnowledgeEntry(
            id=intent,
            question=texts[0],
            answer=f"[{intent}]",
            alt_questions=tuple(texts[1:]),
            language=language,
            topic="transfer",
        )
        for intent, texts in phrasings.items()
    ]
    unanswerable: list[tuple[str, str | None]] = [(text, None) for text in near + far]
    return Task(name, language, entries, answerable + unanswerable)


def fitting_tasks(datasets: Path, encoder: Encoder, tasks: int = TASKS) -> list[Task]:
    """The fitting tasks from the training splits of CLINC150, SMP2019 and CAIS."""
    clinc, oos = read_clinc(datasets)
    smp, cais = read_smp(datasets), read_cais(datasets)
    clusters = cluster_intents(clinc, encoder, CLINC_CLUSTERS)
    smp_far = [text for intent in CAIS_FAR_FOR_SMP for text in cais.get(intent, [])]
    cais_far = [
        text
        for label, texts in smp.items()
        if label.split(".")[0] in SMP_FAR_FOR_CAIS
        for text in texts
    ]
    made: list[Task] = []
    for number in range(tasks):
        sizes = KB_SIZES[number % len(KB_SIZES)]
        made.append(
            make_task(
                f"clinc150-{number}",
                clinc,
                seed=5000 + number,
                sizes=sizes,
                group_of=lambda intent: clusters[intent],
                far_pool=oos,
                language="en",
                max_queries=MAX_QUERIES["clinc150"],
                far_groups=1,
            )
        )
        made.append(
            make_task(
                f"smp2019-{number}",
                smp,
                seed=6000 + number,
                sizes=sizes,
                group_of=lambda label: label.split(".")[0],
                far_pool=smp_far,
                language="zh",
                max_queries=MAX_QUERIES["smp2019"],
            )
        )
        if number < (tasks + 1) // 2:
            made.append(
                make_task(
                    f"cais-{number}",
                    cais,
                    seed=7000 + number,
                    sizes=sizes,
                    group_of=lambda intent: intent,
                    far_pool=cais_far,
                    language="zh",
                    max_queries=MAX_QUERIES["cais"],
                )
            )
    return made


def answer_threshold(top: NDArray[np.float64], right: NDArray[np.bool_], target: float) -> float:
    """The lowest top confidence at which the precision of the answered queries >= target.

    Args:
        top: Each query's top confidence.
        right: Whether each query's top hit is right.
        target: The precision wanted.

    Returns:
        The threshold (1.0 when no threshold reaches the target).
    """
    order = np.argsort(-top, kind="stable")
    ranked, hits = top[order], right[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    good = np.flatnonzero(precision >= target)
    if not len(good):
        return 1.0
    cut = int(good[-1])
    while cut + 1 < len(ranked) and ranked[cut + 1] == ranked[cut]:
        cut += 1  # a threshold answers every tie
    return float(ranked[cut])


def decision_stats(
    rows: Sequence[tuple[NDArray[np.float64], NDArray[np.bool_]]],
    answer_at: float,
    floor: float,
    mass: float,
) -> dict[str, float]:
    """Answer and suggestion rates and precisions of the decision rule on scored rows.

    Args:
        rows: Per query, its candidates' confidences (best first) and which one is right.
        answer_at: The answer threshold.
        floor: Least confidence of a suggested hit.
        mass: Least summed confidence of the suggestions.
    """
    answered = right = suggested = suggested_right = 0
    for confidence, labels in rows:
        if len(confidence) and confidence[0] >= answer_at:
            answered += 1
            right += bool(labels[0])
            continue
        chosen = np.flatnonzero(confidence[:MAX_SUGGESTIONS] >= floor)
        if len(chosen) and float(confidence[chosen].sum()) >= mass:
            suggested += 1
            suggested_right += bool(labels[chosen].any())
    n = max(len(rows), 1)
    return {
        "queries": float(len(rows)),
        "suggested": float(suggested),
        "answer_rate": answered / n,
        "answered_precision": right / max(answered, 1),
        "suggestion_rate": suggested / n,
        "suggestion_hit_rate": suggested_right / max(suggested, 1),
    }


def suggest_mass(
    rows: Sequence[tuple[NDArray[np.float64], NDArray[np.bool_]]],
    answer_at: float,
    floor: float = SUGGEST_FLOOR,
    target: float = SUGGEST_HIT_TARGET,
) -> float:
    """The suggest mass: the lowest summed confidence whose suggestions hold the right entry.

    Levels go from 0.95 down in steps of 0.05 and stop at the first whose suggestions hold the
    right entry in fewer than `target` of the queries that get them.
    """
    chosen = 1.0
    for level in np.round(np.arange(0.95, 0.0, -0.05), 2):
        stats = decision_stats(rows, answer_at, floor, float(level))
        if stats["suggested"] and stats["suggestion_hit_rate"] < target:
            break
        chosen = float(level)
    return chosen


def _fit_mode(mode: Mode, per_task: Sequence[LabelledRows]) -> Calibrator:
    names = TRANSFER_FEATURES[mode]
    blocks = [(features[:TOP], labels[:TOP]) for rows in per_task for features, labels in rows]
    weights = np.concatenate(
        [np.full(min(len(labels), TOP), 1.0 / len(rows)) for rows in per_task for _, labels in rows]
    )
    features = np.vstack([f for f, _ in blocks])
    labels = np.concatenate([y for _, y in blocks])
    return Calibrator.fit(
        mode, features, labels, names=names, sample_weight=weights, l2=L2, source="transfer"
    )


def fit_transfer(
    datasets: Path,
    encoder: Encoder,
    tokenizer: Tokenizer,
    *,
    calibration_queries: int = 3_000,
    tasks: int = TASKS,
    progress: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Fits the transferable models and decision levels; returns the shipped file's content.

    Args:
        datasets: The shared public datasets (CLINC150, SMP2019 and CAIS training splits).
        encoder: The embedding model the models are for.
        tokenizer: The jieba tokenizer.
        calibration_queries: Leave-out queries of each task's ranker fit (as in production).
        tasks: Tasks per dataset.
        progress: Show tqdm progress bars on stderr.
        log: Receives one line per task.
    """
    started = time.perf_counter()
    per_mode: dict[Mode, list[LabelledRows]] = {mode: [] for mode in MODES}
    described: list[dict[str, Any]] = []
    for task in fitting_tasks(datasets, encoder, tasks):
        began = time.perf_counter()
        index = KnowledgeIndex.build(
            task.entries,
            encoder,
            tokenizer,
            calibration_queries=calibration_queries,
            calibration="kb",
        )
        rows = index.training_rows(task.queries, top=TOP, progress=progress)
        for mode in MODES:
            per_mode[mode].append(rows[mode])
        unanswerable = sum(expected is None for _, expected in task.queries)
        described.append(
            {
                "task": task.name,
                "entries": len(task.entries),
                "questions": len(index.questions),
                "queries": len(task.queries),
                "unanswerable": unanswerable,
            }
        )
        log(
            f"{task.name}: {len(task.entries)} entries, {len(task.queries)} queries "
            f"({unanswerable} unanswerable), {time.perf_counter() - began:.1f} s"
        )
    calibrators = {mode: _fit_mode(mode, per_mode[mode]) for mode in MODES}
    hybrid = calibrators["hybrid"]
    scored = [
        (hybrid.confidence(features), labels)
        for rows in per_mode["hybrid"]
        for features, labels in rows
    ]
    top = np.array([c[0] for c, _ in scored])
    right = np.array([bool(y[0]) for _, y in scored])
    threshold = answer_threshold(top, right, PRECISION_TARGET)
    mass = suggest_mass(scored, threshold)
    stats = decision_stats(scored, threshold, SUGGEST_FLOOR, mass)
    return {
        "format": SHIPPED_FORMAT,
        "model": encoder.name,
        "fitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "fit_seconds": round(time.perf_counter() - started, 1),
        "fitted_on": {
            "datasets": {
                "clinc150": "data_full_train_val.json: train, oos_train",
                "smp2019": "train.jsonl",
                "cais": "train.jsonl",
            },
            "tasks": described,
            "queries": len(scored),
            "unanswerable_share": round(
                sum(t["unanswerable"] for t in described) / sum(t["queries"] for t in described),
                4,
            ),
        },
        "levels": {
            "answer_threshold": round(threshold, 4),
            "suggest_threshold": SUGGEST_FLOOR,
            "suggest_mass": mass,
            "precision_target": PRECISION_TARGET,
            "suggestion_hit_target": SUGGEST_HIT_TARGET,
        },
        "fit_metrics": {
            key: int(value) if key in ("queries", "suggested") else round(value, 4)
            for key, value in stats.items()
        },
        "calibrators": {mode: c.to_dict() for mode, c in calibrators.items()},
    }


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m knowledge_index.transfer`: refits and writes the shipped calibration."""
    from knowledge_index.encoders import load_encoder
    from knowledge_index.settings import PROJECT_ROOT, KnowledgeSettings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--datasets", type=Path, default=PROJECT_ROOT.parent / "shared" / "datasets"
    )
    parser.add_argument("--model", default=None, help="Embedding model (default KEFU_KB_MODEL).")
    parser.add_argument("--out", type=Path, default=None, help="Default: calibration/<model>.json")
    args = parser.parse_args(argv)
    settings = KnowledgeSettings()
    model = args.model or settings.model
    encoder = load_encoder(model, threads=settings.encoder_threads, batch_size=settings.batch_size)
    data = fit_transfer(
        args.datasets,
        encoder,
        Tokenizer(settings.jieba_dictionary),
        calibration_queries=settings.calibration_queries,
    )
    out: Path = args.out or calibration_file(encoder.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", "utf-8")
    print(f"wrote {out}: levels {data['levels']}, on the fitting data {data['fit_metrics']}")


if __name__ == "__main__":
    main()
