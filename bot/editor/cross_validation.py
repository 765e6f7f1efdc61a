"""NLU quality on the demo data: Rasa's cross-validation, summarised for people and CI."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bot.core.settings import PROJECT_ROOT, Settings
from bot.core.training import rasa_process_environment


class EvaluationError(RuntimeError):
    """`rasa test nlu` failed; its log names the cause."""


@dataclass(frozen=True)
class IntentScores:
    """Precision, recall and F1 of one intent."""

    intent: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class EvaluationSummary:
    """Macro-F1, accuracy and per-intent scores of one evaluation."""

    macro_f1: float
    accuracy: float
    intents: list[IntentScores]
    report_path: Path

    def table(self) -> str:
        """A plain-text table, worst intents first."""
        rows = [f"{'intent':<22} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>5}"]
        for score in sorted(self.intents, key=lambda s: s.f1):
            rows.append(
                f"{score.intent:<22} {score.precision:>9.3f} {score.recall:>7.3f} "
                f"{score.f1:>6.3f} {score.support:>5}"
            )
        rows.append(f"\naccuracy {self.accuracy:.3f}   macro-F1 {self.macro_f1:.3f}")
        rows.append(f"report: {self.report_path}")
        return "\n".join(rows)


def summarize(report_path: Path) -> EvaluationSummary:
    """Reads Rasa's `intent_report.json`."""
    report = json.loads(report_path.read_text())
    intents = [
        IntentScores(
            name, values["precision"], values["recall"], values["f1-score"], values["support"]
        )
        for name, values in report.items()
        if isinstance(values, dict) and "confused_with" in values
    ]
    return EvaluationSummary(
        macro_f1=report["macro avg"]["f1-score"],
        accuracy=report["accuracy"],
        intents=intents,
        report_path=report_path,
    )


def cross_validate(settings: Settings, folds: int, out: Path | None = None) -> EvaluationSummary:
    """Runs `rasa test nlu --cross-validation` on data/nlu and summarises the intent report."""
    out = out or settings.var_dir / "eval" / "nlu"
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "rasa-test.log"
    command = [
        str(settings.rasa_bin), "test", "nlu", "--nlu", "data/nlu", "--config", "config.yml",
        "--cross-validation", "--folds", str(folds), "--out", str(out),
    ]  # fmt: skip
    with log_path.open("w") as log:
        result = subprocess.run(
            command, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
            env=rasa_process_environment(),
        )  # fmt: skip
    report_path = out / "intent_report.json"
    if result.returncode != 0 or not report_path.exists():
        raise EvaluationError(f"rasa test nlu failed (exit {result.returncode}); see {log_path}")
    return summarize(report_path)
