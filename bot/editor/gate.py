"""`kefu gate`: refuses a candidate whose NLU got worse than the deployed model's.

Two rules, both from the settings: macro-F1 may not drop more than `gate_max_macro_f1_drop`
below the deployed model's, and no intent may fall below its floor (`gate_intent_f1_floor`,
per-intent overrides in `gate_intent_floors`). The verdict names every intent that got worse.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bot.core.files import replace_text
from bot.core.settings import Settings
from bot.editor.evaluation import Evaluation

VERDICT_FILE = "gate.json"


@dataclass(frozen=True)
class IntentChange:
    """One intent's held-out F1 before (deployed) and after (candidate); None if absent."""

    intent: str
    deployed: float | None
    candidate: float | None

    @property
    def delta(self) -> float:
        """Candidate minus deployed F1 (0 when either side lacks the intent)."""
        if self.deployed is None or self.candidate is None:
            return 0.0
        return self.candidate - self.deployed


@dataclass
class Verdict:
    """The gate's decision on one candidate evaluation."""

    passed: bool
    candidate_key: str
    candidate_macro_f1: float
    deployed_key: str | None
    deployed_macro_f1: float | None
    reasons: list[str] = field(default_factory=list)
    worse: list[IntentChange] = field(default_factory=list)
    below_floor: list[tuple[str, float, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (each worse intent with its delta)."""
        data = asdict(self)
        data["worse"] = [
            asdict(change) | {"delta": round(change.delta, 4)} for change in self.worse
        ]
        return data

    def text(self) -> str:
        """What an editor reads: the verdict, why, and which intents got worse by how much."""
        baseline = (
            f"deployed {self.deployed_macro_f1:.3f} ({self.deployed_key})"
            if self.deployed_macro_f1 is not None
            else "nothing deployed yet: only the floors apply"
        )
        lines = [
            f"gate: {'PASSED' if self.passed else 'REFUSED'}  macro-F1 candidate "
            f"{self.candidate_macro_f1:.3f} ({self.candidate_key}), {baseline}"
        ]
        lines += [f"  refused: {reason}" for reason in self.reasons]
        if self.worse:
            lines.append("  intents that got worse (held-out F1, deployed -> candidate):")
            for change in self.worse:
                before = "-" if change.deployed is None else f"{change.deployed:.3f}"
                after = "-" if change.candidate is None else f"{change.candidate:.3f}"
                points = f"{change.delta * 100:+.1f} points"
                lines.append(f"    {change.intent:<24} {before} -> {after}  ({points})")
        return "\n".join(lines)


def judge(
    candidate: Evaluation,
    deployed: Evaluation | None,
    max_drop: float,
    floor: float,
    floors: dict[str, float] | None = None,
) -> Verdict:
    """Applies the gate's two rules to a candidate evaluation.

    Args:
        candidate: The evaluation of the data about to be deployed.
        deployed: The evaluation recorded for the model in service (None: nothing deployed).
        max_drop: Largest allowed macro-F1 drop (0.01 = one point).
        floor: Lowest F1 any intent may have.
        floors: Per-intent floors that replace `floor`.
    """
    floors = floors or {}
    verdict = Verdict(
        passed=True,
        candidate_key=candidate.key,
        candidate_macro_f1=candidate.macro_f1,
        deployed_key=deployed.key if deployed else None,
        deployed_macro_f1=deployed.macro_f1 if deployed else None,
    )
    after = candidate.f1_by_intent()
    before = deployed.f1_by_intent() if deployed else {}
    if deployed is not None:
        drop = deployed.macro_f1 - candidate.macro_f1
        if drop > max_drop + 1e-9:
            verdict.reasons.append(
                f"macro-F1 dropped {drop * 100:.1f} points ({deployed.macro_f1:.3f} -> "
                f"{candidate.macro_f1:.3f}); at most {max_drop * 100:.1f} allowed"
            )
        changes = [
            IntentChange(intent, before.get(intent), after.get(intent))
            for intent in sorted(set(before) | set(after))
        ]
        verdict.worse = sorted(
            (c for c in changes if c.delta < 0 or c.candidate is None),
            key=lambda c: (c.delta, c.intent),
        )
    for intent, f1 in sorted(after.items()):
        limit = floors.get(intent, floor)
        if f1 < limit:
            verdict.below_floor.append((intent, f1, limit))
            verdict.reasons.append(f"intent {intent} has F1 {f1:.3f}, below its floor {limit:.2f}")
    verdict.passed = not verdict.reasons
    return verdict


def judge_with_settings(
    settings: Settings, candidate: Evaluation, deployed: Evaluation | None
) -> Verdict:
    """`judge` with the limits of `settings`."""
    return judge(
        candidate,
        deployed,
        settings.gate_max_macro_f1_drop,
        settings.gate_intent_f1_floor,
        settings.intent_floors,
    )


def save_verdict(verdict: Verdict, folder: Path) -> Path:
    """Writes the verdict beside its evaluation (`gate.json`)."""
    path = folder / VERDICT_FILE
    replace_text(path, json.dumps(verdict.to_dict(), ensure_ascii=False, indent=2))
    return path


def passed_gate(folder: Path) -> bool:
    """True when the evaluation in `folder` has a passing verdict on disk."""
    try:
        return bool(json.loads((folder / VERDICT_FILE).read_text("utf-8"))["passed"])
    except (OSError, ValueError, KeyError):
        return False
