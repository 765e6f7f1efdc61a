"""Trains Kefu's NLU pipeline on one dataset and scores it on another (Rasa runtime)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlu_bench.datasets import Example
from nlu_bench.metrics import percentile, scores

CACHE_VARIABLE = "RASA_CACHE_DIRECTORY"
"""Where Rasa caches component outputs between trainings."""

FALLBACK_INTENT = "nlu_fallback"
"""What Rasa's FallbackClassifier predicts below its confidence threshold."""


@dataclass(frozen=True)
class Prediction:
    """The pipeline's answer to one test message."""

    intent: str
    best_intent: str
    confidence: float
    milliseconds: float


def quiet_rasa(level: int = logging.WARNING) -> None:
    """Rasa's loggers (stdlib and structlog) at `level`: one line per parse is too slow."""
    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog

    configure_logging_and_warnings(level)
    configure_structlog(level)


def train_model(examples: list[Example], config: Path, work_dir: Path) -> Path:
    """Trains an NLU-only model on `examples` with `config`; returns the model archive."""
    from rasa.model_training import train_nlu
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLWriter
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    data = TrainingData([Message(data={"text": t, "intent": i}) for t, i in examples])
    data_path = work_dir / "nlu.yml"
    data_path.write_text(RasaYAMLWriter().dumps(data), encoding="utf-8")
    # A fresh cache, so the training time is the real one.
    previous = os.environ.get(CACHE_VARIABLE)
    os.environ[CACHE_VARIABLE] = str(work_dir / "cache")
    try:
        model = train_nlu(str(config), str(data_path), str(work_dir / "models"), "bench")
    finally:
        if previous is None:
            os.environ.pop(CACHE_VARIABLE, None)
        else:
            os.environ[CACHE_VARIABLE] = previous
    if model is None:
        raise RuntimeError("rasa could not train a model (see the messages above)")
    return Path(model)


async def predict(model: Path, texts: list[str]) -> list[Prediction]:
    """Parses every text with the trained model, one message at a time, timing each."""
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    await agent.parse_message("warm up")
    predictions = []
    for text in texts:
        started = time.perf_counter()
        parsed = await agent.parse_message(text)
        elapsed = (time.perf_counter() - started) * 1000
        ranking = [r for r in parsed.get("intent_ranking", []) if r["name"] != FALLBACK_INTENT]
        best_name, confidence = (
            (str(ranking[0]["name"]), float(ranking[0]["confidence"]))
            if ranking
            else (FALLBACK_INTENT, 0.0)
        )
        intent = str(parsed["intent"]["name"])
        predictions.append(Prediction(intent, best_name, confidence, elapsed))
    return predictions


def write_predictions(path: Path, test: list[Example], predictions: list[Prediction]) -> None:
    """One JSON line per test message: text, gold intent, prediction, best intent, confidence."""
    with path.open("w", encoding="utf-8") as handle:
        for (text, gold), p in zip(test, predictions, strict=True):
            row: dict[str, Any] = {"text": text, "intent": gold, "predicted": p.intent}
            row |= {"best_intent": p.best_intent, "confidence": round(p.confidence, 4)}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def run(
    train: list[Example],
    test: list[Example],
    config: Path,
    oos_label: str,
    predictions_path: Path | None = None,
) -> dict[str, Any]:
    """Trains, predicts and scores; the bench's JSON object.

    With the out-of-scope label in the test set, a fallback counts as out-of-scope. Without
    it the task is closed-set (like the published anchors): the best-ranked intent counts,
    and `fallback_rate` says how often the bot would have asked to rephrase instead.
    """
    with tempfile.TemporaryDirectory(prefix="kefu-nlu-bench-") as scratch:
        work_dir = Path(scratch)
        started = time.perf_counter()
        model = train_model(train, config, work_dir)
        train_seconds = time.perf_counter() - started
        predictions = asyncio.run(predict(model, [text for text, _ in test]))
        model_mb = model.stat().st_size / 2**20
    if predictions_path is not None:
        write_predictions(predictions_path, test, predictions)
    gold = [intent for _, intent in test]
    open_set = oos_label in gold
    predicted = [
        (oos_label if p.intent == FALLBACK_INTENT else p.intent) if open_set else p.best_intent
        for p in predictions
    ]
    timings = [p.milliseconds for p in predictions]
    return {
        **{name: round(value, 4) for name, value in scores(gold, predicted, oos_label).items()},
        "fallback_rate": round(
            sum(p.intent == FALLBACK_INTENT for p in predictions) / len(predictions), 4
        ),
        "train_examples": len(train),
        "test_examples": len(test),
        "intents": len({intent for _, intent in train}),
        "train_seconds": round(train_seconds, 1),
        "parse_p50_ms": round(percentile(timings, 50), 2),
        "parse_p95_ms": round(percentile(timings, 95), 2),
        "model_mb": round(model_mb, 2),
    }
