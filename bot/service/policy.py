"""The service policy: urgency tiers, complaint grades, due times and the words the bot reads.

Non-programmers edit `data/service/policy.yml`; `load_policy` validates it and explains every
mistake with its place. Everything else here is a pure function of a loaded policy: callers
load it once and pass it in. Check a policy file with `python -m bot.service.policy [PATH]`.
"""

from __future__ import annotations

import difflib
import enum
import re
import unicodedata
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode

from bot.core.db.models import ComplaintGrade, UrgencyTier
from bot.core.settings import PROJECT_ROOT

SAFETY_IMPACT = "safety"
"""The impact category that always makes a need urgent (the policy must define it)."""

READER_IMPACTS = ("money", "time", "safety", "business")
"""The kinds of impact the impact reader tells apart (`data/service/understanding.yml`)."""

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Weekday names of `business_hours.days`, Monday first (as `date.weekday()`)."""

_UTC = timezone.utc
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_GREETINGS = ("你好", "您好", "在吗", "在不在", "客服", "hello", "hi", "hey")
"""Greetings skipped before an opener in `is_generic_request` ("你好，我要投诉")."""


class PolicyError(ValueError):
    """Invalid policy file; the message names the file and the place of each mistake."""


class FutureDate(ValueError):
    """A date after today where a past date was asked for (the caller asks again)."""

    def __init__(self, found: date, today: date) -> None:
        super().__init__(f"{found.isoformat()} is after today ({today.isoformat()})")
        self.found = found


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


class _Section(BaseModel):
    """A block of the policy file: unknown keys are refused with the allowed ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            allowed = list(cls.model_fields)
            for key in data:
                if key not in allowed:
                    raise ValueError(
                        f"unknown key {key!r}{_did_you_mean(str(key), allowed)}"
                        f" (allowed here: {', '.join(allowed)})"
                    )
        return data


class Keywords(_Section):
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


class Window(_Section):
    """A time limit in hours, counted on the clock or in business hours only."""

    hours: float = Field(gt=0)
    business_hours_only: bool = False


class ComplaintWindow(Window):
    """The handling time of a complaint grade and the departments that take part."""

    departments: tuple[Name, ...] = ()


class BusinessHours(_Section):
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


class Tiers(_Section):
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


class ComplaintGrades(_Section):
    """Handling windows by complaint grade."""

    general: ComplaintWindow
    major: ComplaintWindow

    def window(self, grade: ComplaintGrade) -> ComplaintWindow:
        """The window of this grade."""
        return self.major if grade is ComplaintGrade.major else self.general


class UrgentRule(_Section):
    """What makes a need urgent: any one of these (and the urgency reader, bot.understanding)."""

    intents: tuple[Name, ...] = ()
    impacts: tuple[Name, ...] = ()


class ConsultationRule(_Section):
    """What makes a need a consultation."""

    intents: tuple[Name, ...] = ()
    keywords: Keywords | None = None


class UrgencyRules(_Section):
    """How the urgency tier is chosen."""

    urgent: UrgentRule
    consultation: ConsultationRule
    neutral_intents: tuple[Name, ...] = ()
    default: UrgencyTier = UrgencyTier.normal


class MajorComplaintRule(_Section):
    """What makes a complaint major: any one of these."""

    impacts: tuple[Name, ...] = ()
    keywords: Keywords | None = None
    min_amount_yuan: float | None = Field(default=None, gt=0)


class ComplaintRules(_Section):
    """What makes a need a complaint (and the complaint reader), and when it is major."""

    intents: tuple[Name, ...] = ()
    major: MajorComplaintRule


class ServicePolicy(_Section):
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
                f"{place}: {name!r} is not defined under impacts{_did_you_mean(name, defined)}"
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


def _did_you_mean(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _PolicyLoader(yaml.SafeLoader):
    """SafeLoader that keeps "21:00" and dates as text (validated later) and refuses duplicate keys.

    Plain YAML 1.1 reads 21:00 as the number 1260; the policy fields parse the text instead.
    """

    _AS_TEXT = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?|\d{4}-\d{1,2}-\d{1,2}")

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        """The tag of a scalar: clock times and dates stay text."""
        if (
            kind is yaml.ScalarNode
            and implicit[0]
            and isinstance(value, str)
            and self._AS_TEXT.fullmatch(value)
        ):
            return "tag:yaml.org,2002:str"
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        """A mapping; a key written twice is an error (YAML would keep the last silently)."""
        seen: set[Hashable] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable):
                if key in seen:
                    raise ConstructorError(
                        None, None, f"the key {key!r} appears twice", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def default_policy_path() -> Path:
    """The shipped policy file: `data/service/policy.yml` in the project."""
    return PROJECT_ROOT / "data" / "service" / "policy.yml"


def _shown(path: Path) -> str:
    """The path as people see it: relative to the project when inside it."""
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def _place(loc: tuple[int | str, ...]) -> str:
    place = ""
    for part in loc:
        place += f"[{part}]" if isinstance(part, int) else (f".{part}" if place else part)
    return place


def _describe(error: ErrorDetails) -> list[str]:
    """One or more lines "place: message" for a validation error, in plain words."""
    loc = tuple(error["loc"])
    kind = error["type"]
    context = error.get("ctx", {})
    message = error["msg"].removeprefix("Value error, ")
    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
        message = "unknown name: " + message.replace("Input should be", "must be")
    elif kind == "greater_than":
        message = f"must be > {context.get('gt')}"
    elif kind == "missing":
        message = "is required but missing"
    elif kind == "extra_forbidden":
        message = "unknown key"
    else:
        message = message.replace("Input should be", "must be")
    given = error["input"]
    if kind not in ("value_error", "missing") and isinstance(given, str | int | float | date):
        message += f" (got {given!r})"
    place = _place(loc)
    return [f"{place}: {line}" if place else line for line in message.splitlines()]


def _read_yaml(text: str) -> Any:
    loader = _PolicyLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def load_policy(path: Path | None = None) -> ServicePolicy:
    """Reads and validates a policy file (default: the shipped one); raises `PolicyError`."""
    path = default_policy_path() if path is None else path
    shown = _shown(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"{shown}: file not found") from None
    except UnicodeDecodeError as error:
        raise PolicyError(f"{shown}: not UTF-8 text ({error.reason})") from error
    except OSError as error:
        raise PolicyError(f"{shown}: cannot read the file ({error.strerror})") from error
    try:
        data = _read_yaml(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        kind = "" if isinstance(error, ConstructorError) else "YAML syntax error: "
        detail = error.problem or error.context or "unreadable"
        if error.context and error.problem:
            detail += f" ({error.context})"
        raise PolicyError(f"{shown}: {where}{kind}{detail}") from error
    except yaml.YAMLError as error:
        raise PolicyError(f"{shown}: YAML syntax error: {error}") from error
    if data is None:
        raise PolicyError(f"{shown}: the file is empty")
    if not isinstance(data, dict):
        raise PolicyError(f"{shown}: must hold keys such as 'version: 1' and 'tiers:'")
    try:
        return ServicePolicy.model_validate(data)
    except ValidationError as error:
        lines = [line for details in error.errors() for line in _describe(details)]
        raise PolicyError("\n".join(f"{shown}: {line}" for line in lines)) from error


# ---------------------------------------------------------------------------------------------
# Reading customers' words


@dataclass(frozen=True)
class _Hit:
    start: int
    end: int
    keyword: str


def _normalise(text: str) -> str:
    """Full-width forms folded (ＡＢＣ１２３￥), lower case, one space between words."""
    text = unicodedata.normalize("NFKC", text).replace("’", "'").replace("‘", "'")
    return re.sub(r"\s+", " ", text.casefold())


def _begins_word(keyword: str) -> bool:
    return keyword[0].isascii() and keyword[0].isalnum()


def _hits(keywords: Iterable[str], text: str) -> list[_Hit]:
    """Where the keywords occur in a normalised text; a hit inside a longer hit is dropped."""
    found: list[_Hit] = []
    for keyword in keywords:
        needle = _normalise(keyword)
        if not needle:
            continue
        pattern = (r"(?<![a-z0-9])" if _begins_word(needle) else "") + re.escape(needle)
        found.extend(_Hit(m.start(), m.end(), keyword) for m in re.finditer(pattern, text))
    kept = [
        hit
        for hit in found
        if not any(
            other.start <= hit.start
            and hit.end <= other.end
            and other.end - other.start > hit.end - hit.start
            for other in found
        )
    ]
    return sorted(kept, key=lambda hit: (hit.start, hit.start - hit.end))


def _negated(text: str, hit: _Hit, negations: Sequence[str]) -> bool:
    """Whether a negation word comes right before the hit ("不急", "not urgent")."""
    before = text[: hit.start].rstrip()
    for word in negations:
        needle = _normalise(word).strip()
        if needle and before.endswith(needle):
            head = before[: len(before) - len(needle)]
            if _begins_word(needle) and head and head[-1].isascii() and head[-1].isalnum():
                continue
            return True
    return False


def _matched(
    keywords: Keywords | None, texts: Iterable[str], negations: Sequence[str] = ()
) -> list[str]:
    """The keywords found in the texts (not negated), in order of appearance, once each."""
    if keywords is None:
        return []
    found: list[str] = []
    for text in texts:
        normal = _normalise(text)
        for hit in _hits(keywords.words, normal):
            if hit.keyword not in found and not _negated(normal, hit, negations):
                found.append(hit.keyword)
    return found


_CN_DIGITS = {
    "零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4,
    "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}  # fmt: skip
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}


def _chinese_number(text: str) -> int | None:
    """Reads Chinese numerals: 三 -> 3, 十五 -> 15, 两千 -> 2000, 一万二 -> 12000."""
    total = section = digit = 0
    unit = 1  # the unit of the last group, for a trailing digit: 三千五 = 3500
    after_zero = False
    for char in text:
        if char in _CN_DIGITS:
            digit = _CN_DIGITS[char]
            after_zero = after_zero or digit == 0
        elif char in _CN_UNITS:
            unit = _CN_UNITS[char]
            section += (digit or 1) * unit
            digit, after_zero = 0, False
        elif char == "万":
            total += (section + digit) * 10000
            section = digit = 0
            unit, after_zero = 10000, False
        else:
            return None
    if digit:
        section += digit if after_zero or unit == 1 else digit * unit // 10
    return total + section


def _number(text: str) -> float | None:
    if text[0].isdigit():
        return float(text)
    value = _chinese_number(text)
    return None if value is None else float(value)


_CN_NUMERAL = "零〇一二两三四五六七八九十百千万"
_NUMBER = rf"(?:\d+(?:\.\d+)?|[零〇一二两三四五六七八九十][{_CN_NUMERAL}]*)"
_FREE = r"(?<![a-z0-9.])"  # a number that is not part of a code such as an order number
_NOT_A_COUNT = (
    rf"(?![\d.{_CN_NUMERAL}]|\s*(?:天|个|次|步|人|米|公里|小时|分钟|毫安|mah|年|月|日|号|台|件"
    r"|days?\b|hours?\b|weeks?\b|months?\b|years?\b|times?\b|minutes?\b|steps?\b))"
)
_AMOUNTS = (
    # ¥3000, $500, RMB 1.2万, $5k
    re.compile(rf"(?:¥|\$|rmb|cny|usd)\s*(?P<num>{_NUMBER})\s*(?P<mag>万|千|k(?![a-z]))?"),
    # 12000元, 3000块, 1.2万元, 两千多块, 500 yuan
    re.compile(
        rf"{_FREE}(?P<num>{_NUMBER})\s*(?P<mag>万|千)?多?\s*"
        r"(?:元|块|圆|rmb\b|cny\b|yuan\b|dollars?\b|bucks\b|usd\b)"
    ),
    # 1.2万, 3千, 两千, 一万二 (not 1.2万步)
    re.compile(rf"{_FREE}(?P<num>\d+(?:\.\d+)?)\s*(?P<mag>万|千){_NOT_A_COUNT}"),
    re.compile(
        rf"(?P<num>[零〇一二两三四五六七八九十][{_CN_NUMERAL}]*[千万][{_CN_NUMERAL}]*)"
        rf"(?P<mag>){_NOT_A_COUNT}"
    ),
    # 损失了5000, lost 5000, cost me 12k
    re.compile(
        r"(?:损失|赔偿|赔|花了|扣了|扣款|亏了|多收了|多收|lost|cost(?:s|\s+me)?|paid|spent"
        r"|charged(?:\s+me)?)\s*了?\s*(?:约|大概|将近|差不多|about|around|nearly|over)?\s*"
        rf"(?P<num>{_NUMBER})\s*(?P<mag>万|千|k(?![a-z]))?{_NOT_A_COUNT}"
    ),
)
_MAGNITUDES = {"万": 10000.0, "千": 1000.0, "k": 1000.0}


def read_amount_yuan(text: str) -> float | None:
    """The largest amount of money a text mentions, as a number of yuan.

    A number counts as money after a currency sign or code (¥ $ RMB), before a currency word
    (元 块 yuan dollars), with 万/千 (1.2万, 两千), or after a money verb (损失 lost paid).
    Dollars are taken as the same number of yuan. Thousands commas are allowed (¥3,000).
    """
    normal = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", _normalise(text))
    amounts = []
    for pattern in _AMOUNTS:
        for match in pattern.finditer(normal):
            value = _number(match["num"])
            if value is not None:
                amounts.append(value * _MAGNITUDES.get(match["mag"] or "", 1.0))
    return max(amounts) if amounts else None


def _product_hits(policy: ServicePolicy, text: str) -> list[tuple[_Hit, str]]:
    normal = _normalise(text)
    found = [
        (hit, kind) for kind, words in policy.products.items() for hit in _hits(words.words, normal)
    ]
    return sorted(found, key=lambda item: (item[0].start, item[0].start - item[0].end))


def read_product(policy: ServicePolicy, text: str) -> str | None:
    """The first product word in the text (as written in the policy)."""
    hits = _product_hits(policy, text)
    return hits[0][0].keyword if hits else None


def product_kind(policy: ServicePolicy, text: str) -> str | None:
    """The kind of the first product the text names ("Nova 14 轻薄笔记本电脑" -> laptop)."""
    hits = _product_hits(policy, text)
    return hits[0][1] if hits else None


def read_special_requests(policy: ServicePolicy, text: str) -> list[str]:
    """The special-request phrases in the text, in order of appearance, once each."""
    return _matched(policy.special_requests, [text])


def _bare(text: str) -> str:
    """Normalised text without spaces, punctuation and symbols."""
    return "".join(char for char in _normalise(text) if unicodedata.category(char)[0] not in "PSZC")


def is_generic_request(policy: ServicePolicy, text: str) -> bool:
    """Whether the text is only an opener ("我要投诉！", "Hi, I have a problem.")."""
    openers = {_bare(opener) for opener in policy.generic_requests.words}
    candidates = {_bare(text)}
    for _ in range(2):  # at most two greetings: "你好客服，我要投诉"
        candidates |= {
            candidate.removeprefix(greeting)
            for candidate in candidates
            for greeting in _GREETINGS
            if candidate.startswith(greeting)
        }
    return any(candidate in openers for candidate in candidates if candidate)


# ---------------------------------------------------------------------------------------------
# Classification and due times


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
            for k in _matched(major_rule.keywords, everything, negations)
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
        consulting = _matched(rule.consultation.keywords, everything, negations)
        if meaningful and all(i in rule.consultation.intents for i in meaningful):
            tier = UrgencyTier.consultation
            tier_reasons = [f"consultation: intent {i}" for i in meaningful]
        elif not meaningful and consulting:
            tier = UrgencyTier.consultation
            tier_reasons = [f"consultation: keyword {k}" for k in consulting]
    if not tier_reasons:
        tier_reasons = [f"{tier.value}: default tier"]
    return Classification(tier, grade, impacts, tuple(tier_reasons + complaint_reasons))


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone; pass an aware datetime")
    return moment.astimezone(_UTC)


def _add_business_time(
    hours: BusinessHours, zone: ZoneInfo, start: datetime, span: timedelta
) -> datetime:
    """`start` plus `span` counted only while the service team works."""
    cursor, remaining = start, span
    day = start.astimezone(zone).date()
    while True:  # ends: some weekday is open, holidays are finite, every open day has time
        if hours.is_open_on(day):
            opens = datetime.combine(day, hours.start, tzinfo=zone).astimezone(_UTC)
            closes = datetime.combine(day, hours.end, tzinfo=zone).astimezone(_UTC)
            cursor = max(cursor, opens)
            if cursor < closes:
                if remaining <= closes - cursor:
                    return cursor + remaining
                remaining -= closes - cursor
        day += timedelta(days=1)


def due_at(policy: ServicePolicy, classification: Classification, created_at: datetime) -> datetime:
    """When the need must be handled (UTC): the complaint grade's window, else the tier's."""
    start = _as_utc(created_at)
    window: Window = (
        policy.complaint_grades.window(classification.complaint_grade)
        if classification.complaint_grade is not None
        else policy.tiers.window(classification.tier)
    )
    span = timedelta(hours=window.hours)
    if window.business_hours_only and policy.business_hours is not None:
        return _add_business_time(policy.business_hours, policy.zone, start, span)
    return start + span


def confirmation_due_at(policy: ServicePolicy, created_at: datetime) -> datetime:
    """When the understood need must be confirmed to the customer (UTC, clock hours)."""
    return _as_utc(created_at) + timedelta(hours=policy.confirmation_window_hours)


def format_due(policy: ServicePolicy, due: datetime, language: str) -> str:
    """A due time in the policy zone: "11月22日 15:30" or "Nov 22, 15:30 (UTC+08:00)"."""
    local = _as_utc(due).astimezone(policy.zone)
    if language.lower().startswith("zh"):
        return f"{local.month}月{local.day}日 {local:%H:%M}"
    offset = local.utcoffset() or timedelta()
    minutes = abs(int(offset.total_seconds())) // 60
    sign = "-" if offset < timedelta() else "+"
    zone = f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    return f"{_MONTHS[local.month - 1]} {local.day}, {local:%H:%M} ({zone})"


# ---------------------------------------------------------------------------------------------
# "Since when?"

_EN_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
}  # fmt: skip
_EN_MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
    "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sept": 9, "sep": 9, "october": 10, "oct": 10, "november": 11, "nov": 11,
    "december": 12, "dec": 12,
}  # fmt: skip
_MONTH_NAME = "|".join(sorted(_EN_MONTHS, key=len, reverse=True))
_CN_SMALL = r"[\d一二两三四五六七八九十]{1,3}"
_EN_COUNT = r"(?:\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten)"

_FULL_DATE = re.compile(r"(?<!\d)(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})(?!\d)")
_MONTH_DAY = (
    re.compile(rf"({_CN_SMALL})\s*月\s*({_CN_SMALL})\s*[日号]?"),
    re.compile(rf"(?<![a-z])({_MONTH_NAME})\.?\s*(\d{{1,2}})(?:st|nd|rd|th)?(?![a-z\d])"),
)
_DAY_MONTH = re.compile(
    rf"(?<![a-z\d])(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTH_NAME})(?![a-z])"
)
_SLASH = re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})(?![\d/])")
_DAYS_BACK = (
    (re.compile(r"大前天"), 3),
    (re.compile(r"前天|(?<![a-z])the day before yesterday(?![a-z])"), 2),
    (re.compile(r"昨天|昨晚|昨日|(?<![a-z])yesterday(?![a-z])"), 1),
    (
        re.compile(
            r"今天|今早|今晚|今日|刚才|刚刚|(?<![a-z])(?:today|this morning|just now)(?![a-z])"
        ),
        0,
    ),
    (re.compile(r"上周|上星期|上个星期|上礼拜|上个礼拜|(?<![a-z])last week(?![a-z])"), 7),
)
_COUNTED_BACK = (
    (re.compile(rf"({_CN_SMALL})\s*天(?:前|以前|之前|了)"), 1),
    (re.compile(rf"({_CN_SMALL})\s*个?(?:星期|周|礼拜)(?:前|以前|之前|了)"), 7),
    (
        re.compile(
            rf"(?<![a-z])(?:({_EN_COUNT})\s+days?\s+ago|for\s+({_EN_COUNT})\s+days?)(?![a-z])"
        ),
        1,
    ),
    (
        re.compile(
            rf"(?<![a-z])(?:({_EN_COUNT})\s+weeks?\s+ago|for\s+({_EN_COUNT})\s+weeks?)(?![a-z])"
        ),
        7,
    ),
)


def _count(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    return _EN_NUMBERS.get(text, _chinese_number(text))


def _past_date(year: int, month: int, day: int, today: date) -> date | None:
    try:
        found = date(year, month, day)
    except ValueError:
        return None
    if found > today:
        raise FutureDate(found, today)
    return found


def _date_without_year(month: int, day: int, today: date) -> date | None:
    """This year's date; last year's when this year's is more than a month ahead."""
    try:
        found = date(today.year, month, day)
    except ValueError:  # 2月30日, or 2月29日 outside a leap year
        return None
    if found <= today:
        return found
    if (found - today).days <= 31:
        raise FutureDate(found, today)
    try:
        return date(today.year - 1, month, day)
    except ValueError:
        return None


def read_since(text: str, today: date) -> date | None:
    """Since when the problem exists, from a Problem answer; None when no date is given.

    Reads 2026-11-20, 11月20日, 11/20, Nov 20, 昨天/前天/今天, 三天前, 上周, yesterday,
    3 days ago, last week. A date without a year is the latest one not far ahead.

    Raises:
        FutureDate: the date is after `today`.
    """
    normal = _normalise(text)
    for match in _FULL_DATE.finditer(normal):
        found = _past_date(int(match[1]), int(match[2]), int(match[3]), today)
        if found:
            return found
    month_days: list[tuple[int | None, int | None]] = []
    for pattern in _MONTH_DAY:
        for match in pattern.finditer(normal):
            month = _EN_MONTHS.get(match[1]) or _count(match[1])
            month_days.append((month, _count(match[2])))
    month_days += [(_EN_MONTHS[m[2]], int(m[1])) for m in _DAY_MONTH.finditer(normal)]
    for match in _SLASH.finditer(normal):
        first, second = int(match[1]), int(match[2])
        month_days.append((second, first) if first > 12 >= second else (first, second))
    for month, day in month_days:
        if month and day:
            found = _date_without_year(month, day, today)
            if found:
                return found
    for pattern, days in _DAYS_BACK:
        if pattern.search(normal):
            return today - timedelta(days=days)
    for pattern, unit in _COUNTED_BACK:
        counted = pattern.search(normal)
        count = _count(next(g for g in counted.groups() if g)) if counted else None
        if count is not None:
            return today - timedelta(days=count * unit)
    return None
