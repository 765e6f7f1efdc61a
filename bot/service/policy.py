"""The service policy file: urgency tiers, complaint grades, due times and the words the bot reads.

Non-programmers edit `data/service/policy.yml`; `load_policy` validates it and names every
mistake as `file:line: place: message` (read by `bot.core.data_file`). The readers of customers'
words (`bot.service.reading`), `classify` (`bot.service.classification`) and the due times
(`bot.service.sla`) are pure functions of a loaded policy: callers load it once and pass it in.
Check a policy file with `kefu service check`.
"""

from __future__ import annotations

import enum
import re
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BeforeValidator,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from bot.core.data_file import Section, did_you_mean, load_data_file
from bot.core.db.models import ComplaintGrade, UrgencyTier
from bot.core.settings import PROJECT_ROOT

SAFETY_IMPACT = "safety"
"""The impact category that always makes a need urgent (the policy must define it)."""

READER_IMPACTS = ("money", "time", "safety", "business")
"""The kinds of impact the impact reader tells apart (`data/service/understanding.yml`)."""

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Weekday names of `business_hours.days`, Monday first (as `date.weekday()`)."""


class PolicyError(ValueError):
    """Invalid policy file; the message names the file and the place of each mistake."""


class NeedPayoff(str, enum.Enum):
    """The outcome a customer wants."""

    refund = "refund"
    replacement = "replacement"
    repair = "repair"
    information = "information"
    call_back = "call_back"


# ---------------------------------------------------------------------------------------------
# The policy file


def _keyword_text(value: Any) -> Any:
    """Accepts numbers as keyword text (12315) and refuses YAML yes/no values with a hint."""
    if isinstance(value, bool):
        raise ValueError(
            f'{value!r} was read as yes/no: put the keyword in quotes, e.g. "no" or "on"'
        )
    if isinstance(value, int | float):
        return str(value)
    return value


def _clock_time(value: Any) -> Any:
    """Reads "HH:MM" (24-hour clock) as a time of day."""
    if isinstance(value, time):
        return value
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip()) if isinstance(value, str) else None
    if match and int(match[1]) < 24 and int(match[2]) < 60:
        return time(int(match[1]), int(match[2]))
    raise ValueError(f'must be a time of day like "09:00" (24-hour clock), got {value!r}')


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
"""An intent, impact or department name."""

KeywordText = Annotated[
    str, BeforeValidator(_keyword_text), StringConstraints(strip_whitespace=True, min_length=1)
]
"""One keyword (numbers are accepted as text)."""

ClockTime = Annotated[time, BeforeValidator(_clock_time)]
"""A time of day written "HH:MM"."""

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class Keywords(Section):
    """Chinese and English keywords; at least one in all."""

    zh: tuple[KeywordText, ...] = ()
    en: tuple[KeywordText, ...] = ()

    @field_validator("zh", "en", mode="before")
    @classmethod
    def _empty_as_none(cls, value: Any) -> Any:
        return () if value is None else value

    @model_validator(mode="after")
    def _at_least_one(self) -> Keywords:
        if not self.zh and not self.en:
            raise ValueError(
                "list at least one keyword under zh or en"
                " (or remove the block where it is optional)"
            )
        return self

    @property
    def words(self) -> tuple[str, ...]:
        """Every keyword, Chinese first."""
        return self.zh + self.en


class Window(Section):
    """A time limit in hours, counted on the clock or in business hours only."""

    hours: float = Field(gt=0)
    business_hours_only: bool = False


class ComplaintWindow(Window):
    """The handling time of a complaint grade and the departments that take part."""

    departments: tuple[Name, ...] = ()


class BusinessHours(Section):
    """Opening hours in the policy time zone."""

    days: tuple[Weekday, ...] = Field(min_length=1)
    start: ClockTime
    end: ClockTime
    holidays: tuple[date, ...] = ()
    workdays: tuple[date, ...] = ()

    @field_validator("days", mode="before")
    @classmethod
    def _lower_case_days(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [day.strip().lower() if isinstance(day, str) else day for day in value]
        return value

    @model_validator(mode="after")
    def _start_before_end(self) -> BusinessHours:
        if self.start >= self.end:
            raise ValueError(
                f"start ({self.start:%H:%M}) must be before end ({self.end:%H:%M});"
                " hours past midnight are not supported"
            )
        return self

    def is_open_on(self, day: date) -> bool:
        """Whether the service team works on this date."""
        if day in self.workdays:
            return True
        return WEEKDAYS[day.weekday()] in self.days and day not in self.holidays


class Tiers(Section):
    """Response windows by urgency."""

    urgent: Window
    normal: Window
    consultation: Window

    def window(self, tier: UrgencyTier) -> Window:
        """The window of this tier."""
        return {
            UrgencyTier.urgent: self.urgent,
            UrgencyTier.normal: self.normal,
            UrgencyTier.consultation: self.consultation,
        }[tier]


class ComplaintGrades(Section):
    """Handling windows by complaint grade."""

    general: ComplaintWindow
    major: ComplaintWindow

    def window(self, grade: ComplaintGrade) -> ComplaintWindow:
        """The window of this grade."""
        return self.major if grade is ComplaintGrade.major else self.general


class UrgentRule(Section):
    """What makes a need urgent: any one of these (and the urgency reader, bot.understanding)."""

    intents: tuple[Name, ...] = ()
    impacts: tuple[Name, ...] = ()


class ConsultationRule(Section):
    """What makes a need a consultation."""

    intents: tuple[Name, ...] = ()
    keywords: Keywords | None = None


class UrgencyRules(Section):
    """How the urgency tier is chosen."""

    urgent: UrgentRule
    consultation: ConsultationRule
    neutral_intents: tuple[Name, ...] = ()
    default: UrgencyTier = UrgencyTier.normal


class MajorComplaintRule(Section):
    """What makes a complaint major: any one of these."""

    impacts: tuple[Name, ...] = ()
    keywords: Keywords | None = None
    min_amount_yuan: float | None = Field(default=None, gt=0)


class ComplaintRules(Section):
    """What makes a need a complaint (and the complaint reader), and when it is major."""

    intents: tuple[Name, ...] = ()
    major: MajorComplaintRule


class QuietHours(Section):
    """When customers get no automatic messages (urgent ones aside), in the policy zone.

    `start` later than `end` spans midnight ("21:00" to "09:00").
    """

    start: ClockTime
    end: ClockTime
    urgent_exempt: bool = True

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end are the same time; remove quiet_hours instead")
        return self

    def contains(self, moment: time) -> bool:
        """Whether this time of day is quiet."""
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


class ResolutionWindows(Section):
    """How long a case may take to resolve, in hours (clock hours), by tier and complaint grade."""

    urgent: float = Field(24, gt=0)
    normal: float = Field(72, gt=0)
    consultation: float = Field(72, gt=0)
    general_complaint: float = Field(72, gt=0)
    major_complaint: float = Field(48, gt=0)

    def hours(self, tier: UrgencyTier, grade: ComplaintGrade | None) -> float:
        """The resolution window of a ticket of this tier and complaint grade."""
        if grade is ComplaintGrade.major:
            return self.major_complaint
        if grade is ComplaintGrade.general:
            return self.general_complaint
        return {
            UrgencyTier.urgent: self.urgent,
            UrgencyTier.normal: self.normal,
            UrgencyTier.consultation: self.consultation,
        }[tier]


class ServiceLoop(Section):
    """After the bot: progress notices, result, satisfaction visit, second follow-up, SLA alerts."""

    progress_every_days: float = Field(3, gt=0)
    result_within_hours: float = Field(24, gt=0)
    satisfaction_within_days: float = Field(7, gt=0)
    satisfaction_reminder_after_days: float = Field(2, gt=0)
    unhappy_score: int = Field(3, ge=1, le=4)
    second_followup_hours: float = Field(48, gt=0)
    reopen_within_days: float = Field(7, gt=0)
    at_risk_share: float = Field(0.8, gt=0, lt=1)
    resolution_hours: ResolutionWindows = ResolutionWindows()
    vip_checkin_every_days: float = Field(30, gt=0)
    wechat_window_hours: float = Field(48, gt=0)
    quiet_hours: QuietHours | None = None
    default_supervisor: str | None = None
    """Username of the supervisor of tickets whose agent has none."""


class Targets(Section):
    """The service plan's targets: the monthly audit and the reports compare against these."""

    need_accuracy: float = Field(0.95, gt=0, le=1)
    """Needs the customer confirmed as recorded, without correcting them."""
    record_completeness: float = Field(0.98, gt=0, le=1)
    """Service records with every field filled."""
    self_service_rate: float = Field(0.70, gt=0, le=1)
    """Conversations the bot solved alone."""
    answer_accuracy: float = Field(0.98, gt=0, le=1)
    """Knowledge-base answers the customer did not reject."""
    sla_hit_rate: float = Field(0.95, gt=0, le=1)
    """Tickets answered and resolved within their windows."""
    csat_response_rate: float = Field(0.60, gt=0, le=1)
    """Resolved tickets whose customer gave a 1-5 score."""
    satisfaction: float = Field(4.5, ge=1, le=5)
    """Average 1-5 score."""
    qa_pass_rate: float = Field(0.95, gt=0, le=1)
    """Scored subjects (the bot, each agent) without a red card."""
    complaint_rate: float = Field(0.05, gt=0, le=1)
    """At most this share of conversations end in a complaint ticket."""


class Supervision(Section):
    """Quality inspection and reports (`bot.supervision`)."""

    conversation_idle_minutes: float = Field(30, gt=0)
    """A conversation ends after this long without a message (no handoff open)."""
    daily_report_at: ClockTime = time(7, 0)
    """Yesterday's report is built and emailed to the supervisors at this time."""
    review_item_due_days: int = Field(7, gt=0)
    """Items of the weekly review list are due this many days after the list."""
    frequent_problem_min: int = Field(5, gt=0)
    """A question asked at least this often in a month goes to the knowledge review queue."""
    targets: Targets = Targets()


class ServicePolicy(Section):
    """The service policy file, validated."""

    version: Literal[1]
    timezone: str
    confirmation_window_hours: float = Field(gt=0)
    business_hours: BusinessHours | None = None
    tiers: Tiers
    complaint_grades: ComplaintGrades
    negations: Keywords | None = None
    urgency: UrgencyRules
    complaints: ComplaintRules
    impacts: tuple[Name, ...] = Field(min_length=1)
    products: dict[Name, Keywords] = Field(min_length=1)
    generic_requests: Keywords
    special_requests: Keywords
    service_loop: ServiceLoop = ServiceLoop()
    supervision: Supervision = Supervision()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use a name like Asia/Shanghai"
            ) from None
        return value

    @model_validator(mode="after")
    def _check_references(self) -> ServicePolicy:
        problems = []
        defined = list(self.impacts)
        unknown = [name for name in self.impacts if name not in READER_IMPACTS]
        if unknown:
            problems.append(
                f"impacts: {', '.join(map(repr, unknown))} cannot be read"
                f" (the impact reader knows: {', '.join(READER_IMPACTS)})"
            )
        if SAFETY_IMPACT not in self.impacts:
            problems.append(
                f"impacts: must define {SAFETY_IMPACT!r} (safety problems are always urgent)"
            )
        for place, names in (
            ("urgency.urgent.impacts", self.urgency.urgent.impacts),
            ("complaints.major.impacts", self.complaints.major.impacts),
        ):
            problems.extend(
                f"{place}: {name!r} is not defined under impacts{did_you_mean(name, defined)}"
                f" (defined: {', '.join(defined)})"
                for name in names
                if name not in self.impacts
            )
        neutral = set(self.urgency.neutral_intents)
        for place, intents in (
            ("urgency.urgent.intents", self.urgency.urgent.intents),
            ("urgency.consultation.intents", self.urgency.consultation.intents),
            ("complaints.intents", self.complaints.intents),
        ):
            problems.extend(
                f"{place}: {intent!r} is also listed in urgency.neutral_intents; keep it in one"
                for intent in intents
                if intent in neutral
            )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def zone(self) -> ZoneInfo:
        """The time zone due times are computed and shown in."""
        return ZoneInfo(self.timezone)

    @property
    def negation_words(self) -> tuple[str, ...]:
        """Words that cancel a keyword right after them."""
        return self.negations.words if self.negations else ()


def default_policy_path() -> Path:
    """The shipped policy file: `data/service/policy.yml` in the project."""
    return PROJECT_ROOT / "data" / "service" / "policy.yml"


def load_policy(path: Path | None = None) -> ServicePolicy:
    """Reads and validates a policy file (default: the shipped one).

    Raises:
        PolicyError: Every mistake, one per line "file:line: place: message".
    """
    return load_data_file(
        default_policy_path() if path is None else path, ServicePolicy, PolicyError
    )
