"""The customer service record before it is stored: a typed draft and how complete it is.

The bot fills a `RecordDraft` while it asks the SPIN questions (Situation, Problem,
Implication, Need-payoff), then stores it with `bot.service.tickets.TicketStore.save_record`.

Completeness rule: `completeness(draft)` is the share of `REQUIRED_FIELDS` that are known,
a number in [0, 1]. A field is known when it holds a non-blank value, with these rules:

- `situation` is satisfied by an order number, a product or a situation text;
- `implication` is satisfied by an implication text or at least one listed impact;
- `need_points` needs at least one need point;
- `preferences.<key>` needs a non-blank value under that key of `preferences`;
- a SPIN field (`SPIN_FIELDS`) the customer explicitly declined, i.e. listed in `skipped`,
  counts as recorded: the question was asked and the answer "unknown" is on record.

`special_requests` and `email` are optional and not counted.

Datetimes are timezone-aware UTC (`TicketStore` refuses naive ones).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from bot.core.db.models import ComplaintGrade, ServiceRecord, UrgencyTier

SPIN_FIELDS = ("situation", "problem", "implication", "need_payoff")
"""The SPIN questions; each may be declined by the customer (listed in `skipped`)."""

NEED_NEXT_STEPS: dict[str, tuple[str, str]] = {
    "refund": (
        "售后专员核实后为您办理退款",
        "An after-sales specialist will check and process your refund",
    ),
    "replacement": (
        "售后专员核实后为您安排换货",
        "An after-sales specialist will check and arrange a replacement",
    ),
    "repair": (
        "售后专员为您安排检测维修",
        "An after-sales specialist will arrange the inspection and repair",
    ),
    "information": ("专人查明情况后给您答复", "A specialist will look into it and get back to you"),
    "call_back": ("专人按您方便的时间回电", "A specialist will call you back at the time you gave"),
}
"""What happens next for each outcome the customer wants (`need_payoff`), Chinese and English:
the need confirmation promises it, the desk's packet suggests it."""

PREFERENCE_KEYS = ("contact_channel", "contact_time", "language")
"""The keys of `RecordDraft.preferences` a complete record has."""

REQUIRED_FIELDS: tuple[str, ...] = (
    "customer_id",
    "channel",
    "language",
    "category",
    "situation",
    "problem",
    "implication",
    "need_payoff",
    "need_points",
    *(f"preferences.{key}" for key in PREFERENCE_KEYS),
    "urgency",
    "created_at",
    "due_at",
    "confirmation_due_at",
)
"""What a complete record has (see the module docstring for how each is satisfied)."""


@dataclass
class RecordDraft:
    """Everything the bot knows about a customer's need before it is stored."""

    customer_id: str
    channel: str
    language: str
    category: str
    order_number: str | None = None
    product: str | None = None
    situation: str | None = None
    problem: str | None = None
    problem_since: date | None = None
    implication: str | None = None
    impacts: list[str] = field(default_factory=list)
    need_payoff: str | None = None
    need_points: list[str] = field(default_factory=list)
    preferences: dict[str, str] = field(default_factory=dict)
    special_requests: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    urgency: UrgencyTier = UrgencyTier.normal
    complaint_grade: ComplaintGrade | None = None
    classification_reasons: list[str] = field(default_factory=list)
    correction_rounds: int = 0
    created_at: datetime | None = None
    confirmation_due_at: datetime | None = None
    due_at: datetime | None = None
    email: str | None = None

    @classmethod
    def from_record(cls, record: ServiceRecord) -> RecordDraft:
        """The draft of a stored record, e.g. to apply a customer's correction and save again."""
        return cls(
            customer_id=record.customer_id,
            channel=record.channel,
            language=record.language,
            category=record.category,
            order_number=record.order_number,
            product=record.product,
            situation=record.situation,
            problem=record.problem,
            problem_since=record.problem_since,
            implication=record.implication,
            impacts=list(record.impacts),
            need_payoff=record.need_payoff,
            need_points=list(record.need_points),
            preferences=dict(record.preferences),
            special_requests=list(record.special_requests),
            skipped=list(record.skipped),
            urgency=record.urgency,
            complaint_grade=record.complaint_grade,
            classification_reasons=list(record.classification_reasons),
            correction_rounds=record.correction_rounds,
            created_at=record.created_at,
            confirmation_due_at=record.confirmation_due_at,
            due_at=record.due_at,
            email=record.email,
        )


def _filled(value: object) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | dict):
        return any(_filled(item) for item in value)
    return True


def _known(draft: RecordDraft, name: str) -> bool:
    if name in SPIN_FIELDS and name in draft.skipped:
        return True
    if name == "situation":
        return any(_filled(v) for v in (draft.order_number, draft.product, draft.situation))
    if name == "implication":
        return _filled(draft.implication) or _filled(draft.impacts)
    if name.startswith("preferences."):
        return _filled(draft.preferences.get(name.removeprefix("preferences.")))
    return _filled(getattr(draft, name))


def missing_fields(draft: RecordDraft) -> list[str]:
    """The `REQUIRED_FIELDS` the draft does not know yet, in `REQUIRED_FIELDS` order."""
    return [name for name in REQUIRED_FIELDS if not _known(draft, name)]


def completeness(draft: RecordDraft) -> float:
    """The share of `REQUIRED_FIELDS` that are known, in [0, 1] (see the module docstring)."""
    return (len(REQUIRED_FIELDS) - len(missing_fields(draft))) / len(REQUIRED_FIELDS)
