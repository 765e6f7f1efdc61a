"""Classifying a customer's need: its urgency tier and complaint grade, with the reasons.

What the customer's words mean comes from the readers (`bot.understanding`); `classify` applies
the service policy to their findings, the intents and the texts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.core.db.models import ComplaintGrade, UrgencyTier
from bot.service.policy import SAFETY_IMPACT, ServicePolicy
from bot.service.reading import matched_keywords, read_amount_yuan


@dataclass(frozen=True)
class Classification:
    """The urgency tier and complaint grade of a need, with the reasons for both."""

    tier: UrgencyTier
    complaint_grade: ComplaintGrade | None
    impacts: frozenset[str]
    reasons: tuple[str, ...]

    @property
    def is_complaint(self) -> bool:
        """Whether the need is a complaint."""
        return self.complaint_grade is not None


def _money(amount: float) -> str:
    return f"¥{amount:.0f}" if amount == int(amount) else f"¥{amount:.2f}"


def classify(
    policy: ServicePolicy,
    *,
    intents: Sequence[str],
    texts: Sequence[str],
    implication: str | None = None,
    impacts: Iterable[str] = (),
    complaint: bool = False,
    urgent: bool = False,
) -> Classification:
    """Urgency tier and complaint grade of a need.

    What the customer's words mean (a complaint, an urgent need, the kinds of impact) comes
    from the readers (`bot.understanding`); the policy decides what follows from it.

    Args:
        policy: the service policy.
        intents: every intent of the need so far.
        texts: the customer's messages about the need (major-complaint words, consultation).
        implication: the answer about how the problem affects them (money at stake).
        impacts: the kinds of impact the readers found (money, time, safety, business).
        complaint: the complaint reader says the customer complains.
        urgent: the urgency reader says the need is urgent.
    """
    negations = policy.negation_words
    everything = [*texts, implication] if implication else list(texts)
    impacts = frozenset(name for name in impacts if name in policy.impacts)
    intents = list(dict.fromkeys(intents))

    complaint_reasons = [
        f"complaint: intent {i}" for i in intents if i in policy.complaints.intents
    ]
    if complaint and not complaint_reasons:
        complaint_reasons.append("complaint: read as a complaint")
    grade = None
    if complaint_reasons:
        major_rule = policy.complaints.major
        major = [
            f"major complaint: keyword {k}"
            for k in matched_keywords(major_rule.keywords, everything, negations)
        ]
        major += [
            f"major complaint: impact {name}" for name in major_rule.impacts if name in impacts
        ]
        amount = read_amount_yuan(implication) if implication else None
        if (
            amount is not None
            and major_rule.min_amount_yuan is not None
            and amount >= major_rule.min_amount_yuan
        ):
            major.append(
                f"major complaint: amount {_money(amount)} >= {_money(major_rule.min_amount_yuan)}"
            )
        grade = ComplaintGrade.major if major else ComplaintGrade.general
        complaint_reasons += major or ["general complaint: no major trigger"]

    rule = policy.urgency
    urgent_reasons = [f"urgent: intent {i}" for i in intents if i in rule.urgent.intents]
    if urgent and not urgent_reasons:
        urgent_reasons.append("urgent: read as urgent")
    urgent_reasons += [f"urgent: impact {name}" for name in rule.urgent.impacts if name in impacts]
    if SAFETY_IMPACT in impacts and SAFETY_IMPACT not in rule.urgent.impacts:
        urgent_reasons.append(f"urgent: impact {SAFETY_IMPACT} (always urgent)")
    if grade is ComplaintGrade.major:
        urgent_reasons.append("urgent: major complaint")

    tier_reasons = urgent_reasons
    tier = UrgencyTier.urgent if urgent_reasons else rule.default
    if not urgent_reasons and not complaint_reasons:
        meaningful = [i for i in intents if i not in rule.neutral_intents]
        consulting = matched_keywords(rule.consultation.keywords, everything, negations)
        if meaningful and all(i in rule.consultation.intents for i in meaningful):
            tier = UrgencyTier.consultation
            tier_reasons = [f"consultation: intent {i}" for i in meaningful]
        elif not meaningful and consulting:
            tier = UrgencyTier.consultation
            tier_reasons = [f"consultation: keyword {k}" for k in consulting]
    if not tier_reasons:
        tier_reasons = [f"{tier.value}: default tier"]
    return Classification(tier, grade, impacts, tuple(tier_reasons + complaint_reasons))
