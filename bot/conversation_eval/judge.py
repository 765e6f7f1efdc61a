"""The verdict of each turn (acceptable, wrong-confident, unhelpful, missing) and record scores.

Rules (the README's "The verdict of a turn"): a turn is acceptable when the bot showed one
of the expected behaviours, nothing the turn forbids, no guarded behaviour it does not expect,
and every expected slot value. Otherwise it is wrong-confident when the bot did something
confident (a guarded or forbidden behaviour, a wrong slot value, or any confident behaviour
not expected), unhelpful when it only hedged, missing when it said nothing.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import Enum
from typing import Any, Protocol

from bot.conversation_eval.behaviours import FORM_START, Kind, Observation, family, kind_of
from bot.conversation_eval.dataset import RecordExpectation, TurnSpec


class Verdict(str, Enum):
    """How one turn went for the customer."""

    acceptable = "acceptable"
    wrong_confident = "wrong_confident"
    unhelpful = "unhelpful"
    missing = "missing"


VERDICTS: tuple[Verdict, ...] = tuple(Verdict)

FORM_COVER = frozenset(
    {
        "complaint_form",
        "complaint_ack",
        "urgent_ack",
        "safety_warning",
        "need_confirmation",
        "confirm_product",
        "spin_ask",
    }
)
"""Expected behaviours that imply the SPIN form may start in this turn."""

ANSWERS = frozenset({"kb_answer", "order_status", "ticket_progress", "order_not_found"})
"""Behaviours that solve a simple question by the bot alone (self-service)."""

ACKNOWLEDGEMENTS = frozenset({"complaint_ack", "urgent_ack"})
"""What the bot says when it takes a need up (the safety warning stays guarded)."""


class RecordLike(Protocol):
    """The fields of a stored service record the judge reads (`bot.core.db.ServiceRecord`)."""

    category: str
    order_number: str | None
    product: str | None
    situation: str | None
    problem: str | None
    problem_since: date | None
    implication: str | None
    impacts: list[str]
    need_payoff: str | None
    skipped: list[str]
    urgency: Any
    complaint_grade: Any
    completeness: float


@dataclass(frozen=True)
class RecordScore:
    """Each expected field of a service record: right or wrong, and the record's completeness."""

    fields: dict[str, bool]
    completeness: float | None
    found: bool
    values: dict[str, Any] = field(default_factory=dict)
    """What the record holds for each expected field (to see why a field is wrong)."""


@dataclass(frozen=True)
class TurnResult:
    """The judged turn."""

    conversation: str
    number: int
    say: str
    category: str
    simple: bool
    verdict: Verdict
    expected: tuple[str, ...]
    observed: tuple[str, ...]
    reasons: tuple[str, ...]
    intent: str
    confidence: float
    texts: tuple[str, ...]
    self_served: bool = False
    answered: bool = False
    record: RecordScore | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = {
            "conversation": self.conversation,
            "turn": self.number,
            "say": self.say,
            "category": self.category,
            "simple": self.simple,
            "verdict": self.verdict.value,
            "expected": list(self.expected),
            "observed": list(self.observed),
            "reasons": list(self.reasons),
            "intent": self.intent,
            "confidence": round(self.confidence, 3),
            "bot": list(self.texts),
            "self_served": self.self_served,
            "answered": self.answered,
        }
        if self.record is not None:
            data["record"] = {
                "found": self.record.found,
                "fields": self.record.fields,
                "completeness": self.record.completeness,
                "values": self.record.values,
            }
        return data


def with_families(labels: frozenset[str]) -> frozenset[str]:
    """The labels plus the family of every `family:detail` label."""
    return labels | {family(label) for label in labels if ":" in label}


def _violations(spec: TurnSpec, observed: frozenset[str]) -> list[str]:
    """Guarded or forbidden behaviours the turn does not allow (each makes it wrong-confident)."""
    expected = set(spec.expect)
    problems = [f"must not: {label}" for label in spec.must_not if label in observed]
    for label in sorted(observed):
        if kind_of(label) is not Kind.guarded or label in spec.must_not or label == FORM_START:
            continue
        name = family(label)
        if name == "kb_answer":
            if ":" in label and label not in expected and "kb_answer" not in expected:
                problems.append(f"answered with {label.split(':', 1)[1]}")
            elif ":" not in label and not any(family(e) == "kb_answer" for e in expected):
                problems.append("answered from the knowledge base")
        elif label not in expected:
            problems.append(f"unexpected {label}")
    if FORM_START in observed and not {family(e) for e in expected} & FORM_COVER:
        problems.append("started the complaint form")
    return problems


def _slot_problems(spec: TurnSpec, slots: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(wrong values, missing values) of the expected slots."""
    wrong, missing = [], []
    for name, value in spec.slots.items():
        actual = slots.get(name)
        if actual == value or (actual is not None and str(actual).upper() == str(value).upper()):
            continue  # order and ticket numbers are the same in any letter case
        if actual in (None, ""):
            missing.append(f"slot {name} not set (expected {value!r})")
        else:
            wrong.append(f"slot {name} is {actual!r}, expected {value!r}")
    return wrong, missing


def judge_turn(spec: TurnSpec, observation: Observation) -> tuple[Verdict, list[str]]:
    """The verdict of one turn and the reasons it is not acceptable."""
    observed = with_families(observation.behaviours)
    violations = _violations(spec, observed)
    wrong_slots, missing_slots = _slot_problems(spec, observation.slots)
    hit = any(label in observed for label in spec.expect)
    if observation.silent and "silent" not in spec.expect:
        return Verdict.missing, ["no reply"]
    reasons = violations + wrong_slots + missing_slots
    asked = {label for label in observed if label.startswith("spin_ask:")}
    allowed = {label for label in spec.expect if label.startswith("spin_ask:")}
    if allowed and asked - allowed:
        reasons.append("asked " + ", ".join(sorted(asked - allowed)))
    if hit and not reasons:
        return Verdict.acceptable, []
    if not hit:
        reasons.insert(0, "expected one of " + ", ".join(spec.expect))
    expected_families = {family(label) for label in spec.expect} | set(spec.expect)
    if expected_families & (FORM_COVER | {"need_confirmation"}):
        # the need was rightly taken up: acknowledging it is right even when the bot then
        # asks a question it did not need to (unhelpful, not wrong)
        expected_families |= ACKNOWLEDGEMENTS
    confident = sorted(
        label
        for label in observation.behaviours
        if kind_of(label) is Kind.confident
        and label not in expected_families
        and family(label) not in expected_families
        and not label.startswith(("utter_", "action_", "validate_"))
        and not label.endswith("_form")
    )
    if violations or wrong_slots or (not hit and confident):
        if confident and not violations and not wrong_slots:
            reasons.append("confident: " + ", ".join(confident))
        return Verdict.wrong_confident, reasons
    return Verdict.unhelpful, reasons


def _bare(text: str | None) -> str:
    """Lower case without spaces, punctuation or symbols."""
    return "".join(
        char
        for char in unicodedata.normalize("NFKC", text or "").lower()
        if unicodedata.category(char)[0] not in "PSZC"
    )


def _value(field_value: Any) -> str | None:
    value = getattr(field_value, "value", field_value)
    return None if value is None else str(value)


def score_record(
    expectation: RecordExpectation, record: RecordLike | None, today: date
) -> RecordScore:
    """Which expected fields the stored record got right."""
    expected = expectation.fields()
    if record is None:
        return RecordScore({name: False for name in expected}, None, found=False)
    scores: dict[str, bool] = {}
    for name, want in expected.items():
        if name == "product":
            recorded = _bare(f"{record.product or ''} {record.situation or ''}")
            scores[name] = any(_bare(phrase) in recorded for phrase in want)
        elif name == "problem":
            recorded = _bare(record.problem)
            scores[name] = bool(recorded) and any(_bare(phrase) in recorded for phrase in want)
        elif name == "problem_since":
            scores[name] = record.problem_since == today + timedelta(days=want)
        elif name == "impact":
            if want == "none":
                scores[name] = not record.impacts
            else:
                scores[name] = want in (record.impacts or [])
        elif name == "tier":
            scores[name] = _value(record.urgency) == want
        elif name == "complaint_grade":
            scores[name] = (_value(record.complaint_grade) or "none") == want
        else:
            scores[name] = _value(getattr(record, name)) == want
    values = {
        "category": record.category,
        "order_number": record.order_number,
        "product": record.product or record.situation,
        "problem": record.problem,
        "problem_since": record.problem_since.isoformat() if record.problem_since else None,
        "impact": f"{record.implication} {list(record.impacts or [])}",
        "need_payoff": record.need_payoff,
        "tier": _value(record.urgency),
        "complaint_grade": _value(record.complaint_grade),
    }
    return RecordScore(
        scores,
        float(record.completeness),
        found=True,
        values={name: values.get(name) for name in expected},
    )


def self_served(spec: TurnSpec, observation: Observation, verdict: Verdict) -> bool:
    """An acceptable turn the bot solved alone.

    An answer, or the right entry offered as a button (one tap, still no person); not a
    question back, a clarification or a handoff.
    """
    if verdict is not Verdict.acceptable:
        return False
    observed = with_families(observation.behaviours)
    solved = {label for label in spec.expect if family(label) in ANSWERS} & observed
    right_button = {
        f"kb_suggest:{label.split(':', 1)[1]}"
        for label in spec.expect
        if label.startswith("kb_answer:")
    } & observed
    return bool(solved or right_button) and "handoff" not in observed


def answered_directly(spec: TurnSpec, observation: Observation, verdict: Verdict) -> bool:
    """Self-served with an answer straight away (no button to tap)."""
    if verdict is not Verdict.acceptable:
        return False
    observed = with_families(observation.behaviours)
    return bool({label for label in spec.expect if family(label) in ANSWERS} & observed)
