"""The replay's figures: verdicts by category, the targets, record accuracy, a printable table."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.conversation_eval.behaviours import FORM_START
from bot.conversation_eval.dataset import CATEGORIES
from bot.conversation_eval.judge import VERDICTS, TurnResult, Verdict, with_families
from bot.conversation_eval.replay import ConversationRun, missing_turns

TARGETS: dict[str, tuple[str, float]] = {
    "wrong_confident_rate": ("<=", 0.02),
    "acceptable_rate": (">=", 0.90),
    "false_safety_warnings": ("<=", 0),
    "rating_misreads": ("<=", 0),
    "record_field_accuracy": (">=", 0.95),
    "record_completeness": (">=", 0.98),
    "self_service_rate": (">=", 0.85),
    "suggestion_hit_rate": (">=", 0.80),
}
"""The issue's targets: (comparison, value)."""


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _precision_recall(pairs: Iterable[tuple[bool, bool]]) -> dict[str, Any]:
    """Precision and recall of (predicted, actual) pairs."""
    counts = Counter(pairs)
    tp, fp, fn = counts[(True, True)], counts[(True, False)], counts[(False, True)]
    return {
        "precision": _share(tp, tp + fp),
        "recall": _share(tp, tp + fn),
        "predicted": tp + fp,
        "actual": tp + fn,
    }


def all_turns(runs: Sequence[ConversationRun]) -> list[TurnResult]:
    """Every turn of every run, never-replayed turns as missing."""
    return [turn for run in runs for turn in [*run.turns, *missing_turns(run)]]


def _form_starts(runs: Sequence[ConversationRun]) -> list[tuple[bool, bool]]:
    """(the bot started the SPIN form, a complaint or problem first called for it) per turn."""
    pairs = []
    for run in runs:
        wanted_before = False
        for turn in run.turns:
            expected = with_families(frozenset(turn.expected))
            wants = bool(expected & {"complaint_form", "complaint_ack", "spin_ask"})
            pairs.append((FORM_START in turn.observed, wants and not wanted_before))
            wanted_before = wanted_before or wants
    return pairs


def _safety(runs: Sequence[ConversationRun]) -> dict[str, Any]:
    """Precision over the warnings shown; recall over the conversations that needed one."""
    shown = [(t, "safety_warning" in t.expected) for r in runs for t in r.turns]
    right = sum(ok for t, ok in shown if "safety_warning" in t.observed)
    warned = sum(1 for t, _ in shown if "safety_warning" in t.observed)
    needing = [r for r in runs if any("safety_warning" in t.expected for t in r.turns)]
    got = sum(any("safety_warning" in t.observed for t in r.turns) for r in needing)
    return {
        "precision": _share(right, warned),
        "recall": _share(got, len(needing)),
        "predicted": warned,
        "actual": len(needing),
    }


@dataclass(frozen=True)
class Summary:
    """The figures of one replay."""

    split: str
    conversations: int
    results: dict[str, Any]
    turns: list[TurnResult]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the figures and every judged turn."""
        return {**self.results, "turns": [turn.to_dict() for turn in self.turns]}


def summarise(split: str, runs: Sequence[ConversationRun]) -> Summary:
    """Verdicts per category and in all, and every target's figure."""
    turns = all_turns(runs)
    by_category: dict[str, dict[str, int]] = {}
    for category in [*CATEGORIES, *sorted({t.category for t in turns} - set(CATEGORIES))]:
        chosen = [t for t in turns if t.category == category]
        if chosen:
            counts = Counter(t.verdict for t in chosen)
            by_category[category] = {
                "turns": len(chosen),
                **{v.value: counts[v] for v in VERDICTS},
            }
    total = Counter(t.verdict for t in turns)
    observed = [(t, frozenset(t.observed), frozenset(t.expected)) for t in turns]
    false_safety = [
        t for t, o, e in observed if "safety_warning" in o and "safety_warning" not in e
    ]
    misread_ratings = [
        t for t, o, e in observed if "rating_thanks" in o and "rating_thanks" not in e
    ]
    records = [t.record for t in turns if t.record is not None]
    fields = [ok for record in records for ok in record.fields.values()]
    per_field: dict[str, list[bool]] = {}
    for record in records:
        for name, ok in record.fields.items():
            per_field.setdefault(name, []).append(ok)
    completeness = [r.completeness if r.completeness is not None else 0.0 for r in records]
    simple = [t for t in turns if t.simple]
    suggested = [
        t
        for t, o, e in observed
        if "kb_suggest" in o and any(label.startswith("kb_answer:") for label in e)
    ]
    suggestion_hits = [
        t
        for t in suggested
        if any(
            f"kb_suggest:{label.split(':', 1)[1]}" in t.observed
            for label in t.expected
            if label.startswith("kb_answer:")
        )
    ]
    results: dict[str, Any] = {
        "split": split,
        "conversations": len(runs),
        "turns": len(turns),
        "errors": [f"{r.conversation.id}: {r.error}" for r in runs if r.error],
        "by_category": by_category,
        "total": {v.value: total[v] for v in VERDICTS},
        "acceptable_rate": _share(total[Verdict.acceptable], len(turns)),
        "wrong_confident_rate": _share(total[Verdict.wrong_confident], len(turns)),
        "unhelpful_rate": _share(total[Verdict.unhelpful], len(turns)),
        "missing_rate": _share(total[Verdict.missing], len(turns)),
        "false_safety_warnings": len(false_safety),
        "rating_misreads": len(misread_ratings),
        "records": len(records),
        "records_found": sum(r.found for r in records),
        "record_field_accuracy": _share(sum(fields), len(fields)),
        "record_fields": {
            name: _share(sum(oks), len(oks)) for name, oks in sorted(per_field.items())
        },
        "record_completeness": round(sum(completeness) / len(completeness), 4)
        if completeness
        else None,
        "simple_turns": len(simple),
        "self_service_rate": _share(sum(t.self_served for t in simple), len(simple)),
        "answered_directly_rate": _share(sum(t.answered for t in simple), len(simple)),
        "suggestions_shown": len(suggested),
        "suggestion_hit_rate": _share(len(suggestion_hits), len(suggested)),
        "safety_warning": _safety(runs),
        "complaint_form_start": _precision_recall(_form_starts(runs)),
    }
    return Summary(split, len(runs), results, turns)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def _met(name: str, value: float | None) -> str:
    if value is None:
        return ""
    comparison, target = TARGETS[name]
    ok = value <= target if comparison == "<=" else value >= target
    shown = f"{100 * target:.0f} %" if isinstance(target, float) and target <= 1 else str(target)
    if name in ("false_safety_warnings", "rating_misreads"):
        shown = str(int(target))
    return f"{comparison} {shown} {'met' if ok else 'MISSED'}"


def table(summary: Summary) -> str:
    """The verdicts by category, then the targets, as aligned text."""
    results = summary.results
    header = f"{'category':<16} {'turns':>5} {'acceptable':>11} {'wrong-conf.':>11} "
    header += f"{'unhelpful':>10} {'missing':>8}"
    lines = [f"split {summary.split}: {results['conversations']} conversations", header]
    lines.append("-" * len(header))
    rows = [
        *results["by_category"].items(),
        ("all", {"turns": results["turns"], **results["total"]}),
    ]
    for category, counts in rows:
        if category == "all":
            lines.append("-" * len(header))
        n = counts["turns"]
        cells = [
            f"{counts[v.value]} ({100 * counts[v.value] / n:.0f}%)" if n else "0" for v in VERDICTS
        ]
        lines.append(
            f"{category:<16} {n:>5} {cells[0]:>11} {cells[1]:>11} {cells[2]:>10} {cells[3]:>8}"
        )
    lines.append("")
    figures = [
        (
            "acceptable turns",
            _pct(results["acceptable_rate"]),
            _met("acceptable_rate", results["acceptable_rate"]),
        ),
        (
            "wrong-confident turns",
            _pct(results["wrong_confident_rate"]),
            _met("wrong_confident_rate", results["wrong_confident_rate"]),
        ),
        (
            "false safety warnings",
            str(results["false_safety_warnings"]),
            _met("false_safety_warnings", results["false_safety_warnings"]),
        ),
        (
            "rating misreads",
            str(results["rating_misreads"]),
            _met("rating_misreads", results["rating_misreads"]),
        ),
        (
            f"record field accuracy ({results['records']} records)",
            _pct(results["record_field_accuracy"]),
            _met("record_field_accuracy", results["record_field_accuracy"]),
        ),
        (
            "record completeness",
            _pct(results["record_completeness"]),
            _met("record_completeness", results["record_completeness"]),
        ),
        (
            f"self-service ({results['simple_turns']} simple turns)",
            _pct(results["self_service_rate"]),
            _met("self_service_rate", results["self_service_rate"]),
        ),
        ("  of which answered straight away", _pct(results["answered_directly_rate"]), ""),
        (
            f"suggestions with the right entry ({results['suggestions_shown']} shown)",
            _pct(results["suggestion_hit_rate"]),
            _met("suggestion_hit_rate", results["suggestion_hit_rate"]),
        ),
    ]
    safety, form = results["safety_warning"], results["complaint_form_start"]
    figures.append(
        (
            "safety warning precision / recall",
            f"{_pct(safety['precision'])} / {_pct(safety['recall'])}",
            "",
        )
    )
    figures.append(
        (
            "complaint form start precision / recall",
            f"{_pct(form['precision'])} / {_pct(form['recall'])}",
            "",
        )
    )
    width = max(len(name) for name, _, _ in figures)
    lines += [f"{name:<{width}}  {value:>13}  {target}" for name, value, target in figures]
    if results["record_fields"]:
        lines.append(
            "record fields: "
            + ", ".join(f"{k} {_pct(v)}" for k, v in results["record_fields"].items())
        )
    if results["errors"]:
        lines.append("errors: " + "; ".join(results["errors"]))
    return "\n".join(lines)
