"""The QA rules file: what the inspector checks in every ended conversation, and what it costs.

Supervisors maintain `data/service/qa_rules.yml`; `load_qa_rules` validates it and names every
mistake as `file:line: place: message` (`bot.core.data_file`). Each rule has a `check` type
(one model per type, chosen by the `check` key: a parameter another type takes, such as
`within_seconds` on `no_greeting`, is refused with a "did you mean"), the subject it is about
(`bot`, `agent` or `both`), the points it costs and whether it is a red card.

Keyword lists match like the service policy's (`bot.service.reading`): full-width forms and
case folded, Chinese keywords anywhere in a message, a keyword that begins with a Latin letter or
digit only at the start of a word. `WordMatcher` compiles a list once for the many messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, StringConstraints, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from bot.core.data_file import (
    DataFileError,
    Problem,
    Section,
    did_you_mean,
    read_data_file,
    validate_data,
)
from bot.core.settings import PROJECT_ROOT
from bot.service.policy import Keywords
from bot.service.reading import normalise

DEFAULT_RED_CARD_BELOW = 60
"""A subject scoring under this gets a red card (unless the file says otherwise)."""

SUBJECT_BOT = "bot"
AGENT_PREFIX = "agent:"


class QaRulesError(ValueError):
    """Invalid QA rules file; the message names the file and the place of each mistake."""


def agent_subject(username: str) -> str:
    """The subject key of an agent: `agent:<username>`."""
    return f"{AGENT_PREFIX}{username}"


def subject_agent(subject_key: str) -> str | None:
    """The username of an agent subject key, None for the bot."""
    return subject_key[len(AGENT_PREFIX) :] if subject_key.startswith(AGENT_PREFIX) else None


# ---------------------------------------------------------------------------------------------
# Keyword matching


@dataclass(frozen=True)
class WordMatcher:
    """A keyword list compiled once: `find` returns the keywords a normalised text contains."""

    pattern: re.Pattern[str] | None
    keywords: dict[str, str]
    """Normalised keyword -> keyword as written in the file."""

    @classmethod
    def of(cls, words: Iterable[str]) -> WordMatcher:
        """Compiles keywords; at one place the longest keyword wins (as in `reading`)."""
        keywords: dict[str, str] = {}
        for word in words:
            needle = normalise(word).strip()
            if needle:
                keywords.setdefault(needle, word)
        if not keywords:
            return cls(None, {})
        parts = [
            (r"(?<![a-z0-9])" if needle[0].isascii() and needle[0].isalnum() else "")
            + re.escape(needle)
            for needle in sorted(keywords, key=len, reverse=True)
        ]
        return cls(re.compile("|".join(parts)), keywords)

    def find(self, normal: str) -> list[str]:
        """The keywords in a normalised text (`reading.normalise`), in order, once each."""
        if self.pattern is None:
            return []
        found: list[str] = []
        for match in self.pattern.finditer(normal):
            word = self.keywords[match.group(0)]
            if word not in found:
                found.append(word)
        return found

    def matches(self, normal: str) -> bool:
        """Whether any keyword occurs in the normalised text."""
        return self.pattern is not None and self.pattern.search(normal) is not None


# ---------------------------------------------------------------------------------------------
# The rules file

RuleId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[a-z][a-z0-9_]{0,59}$"),
]
"""A rule's id: lower-case letters, digits and "_", starting with a letter (at most 60)."""

Subject = Literal["bot", "agent", "both"]
Severity = Literal["minor", "major", "fatal"]


class Title(Section):
    """A rule's name in Chinese and English, as the desk and the reports show it."""

    zh: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
    en: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]

    @property
    def both(self) -> str:
        """`中文 · English`."""
        return f"{self.zh} · {self.en}"


class RuleBase(Section):
    """What every rule has; each check type adds its parameters."""

    SUBJECTS: ClassVar[frozenset[str]] = frozenset({"bot", "agent", "both"})
    """The subjects this check type can be about."""

    id: RuleId
    title: Title
    subject: Subject
    check: str
    points: int = Field(ge=0, le=100)
    severity: Severity = "minor"
    red_card: bool = False
    enabled: bool = True

    def about(self, subject_key: str) -> bool:
        """Whether the rule applies to this subject (`bot` or `agent:<username>`)."""
        if self.subject == "both":
            return True
        return (subject_key == SUBJECT_BOT) == (self.subject == "bot")

    @property
    def title_text(self) -> str:
        """The title as stored on a finding."""
        return self.title.both


class WordsRule(RuleBase):
    """A rule with a keyword list."""

    words: Keywords

    @cached_property
    def matcher(self) -> WordMatcher:
        """The compiled keyword list."""
        return WordMatcher.of(self.words.words)


class TierSeconds(Section):
    """Seconds allowed by urgency tier (the linked ticket's; `normal` without a ticket)."""

    urgent: int = Field(gt=0)
    normal: int = Field(gt=0)
    consultation: int = Field(gt=0)

    def of(self, tier: str) -> int:
        """The limit of this tier (`normal` for an unknown one)."""
        return {"urgent": self.urgent, "consultation": self.consultation}.get(tier, self.normal)


class FirstResponseOver(RuleBase):
    """The first agent reply after the handoff came later than the tier allows."""

    SUBJECTS: ClassVar[frozenset[str]] = frozenset({"agent"})
    check: Literal["first_response_over"]
    seconds_by_tier: TierSeconds


class SlaMissed(RuleBase):
    """The linked ticket's first response came after its response due time (or never came)."""

    SUBJECTS: ClassVar[frozenset[str]] = frozenset({"agent"})
    check: Literal["sla_missed"]


class NoGreeting(WordsRule):
    """The subject's first message has none of the greeting words."""

    check: Literal["no_greeting"]


class NoClosing(WordsRule):
    """The subject's last message has none of the closing words."""

    check: Literal["no_closing"]


class ForbiddenWords(WordsRule):
    """A message of the subject contains one of the words."""

    check: Literal["forbidden_words"]


class CustomerRepeats(WordsRule):
    """The customer says they already said it: charged to whoever spoke just before."""

    check: Literal["customer_repeats"]


class SlowReplyWithoutApology(WordsRule):
    """A reply came more than `after_seconds` after the customer wrote, without an apology."""

    check: Literal["slow_reply_without_apology"]
    after_seconds: int = Field(gt=0)


class WaitNotKept(WordsRule):
    """The subject asked the customer to wait and then sent nothing within `within_seconds`."""

    check: Literal["wait_not_kept"]
    within_seconds: int = Field(gt=0)


class NoRatingInvitation(WordsRule):
    """An agent conversation ended without inviting the customer to rate the service."""

    SUBJECTS: ClassVar[frozenset[str]] = frozenset({"agent"})
    check: Literal["no_rating_invitation"]


class NegativeEnd(WordsRule):
    """The customer's last two messages are angry or disappointed."""

    check: Literal["negative_end"]


class HandoffNoHumanReply(RuleBase):
    """A person was asked for and no agent wrote within `max_seconds` (or at all)."""

    SUBJECTS: ClassVar[frozenset[str]] = frozenset({"agent", "bot", "both"})
    check: Literal["handoff_no_human_reply"]
    max_seconds: int = Field(600, gt=0)


class TransfersOver(RuleBase):
    """The customer was passed from agent to agent more than `max` times."""

    SUBJECTS: ClassVar[frozenset[str]] = frozenset({"agent"})
    check: Literal["transfers_over"]
    max: int = Field(1, ge=0)


class BotFallbacksOver(RuleBase):
    """The bot said it did not understand (or had no answer) more than `max` times."""

    SUBJECTS: ClassVar[frozenset[str]] = frozenset({"bot"})
    check: Literal["bot_fallbacks_over"]
    max: int = Field(2, ge=0)


class BotKbRejected(RuleBase):
    """The customer said a knowledge-base answer did not solve their problem."""

    SUBJECTS: ClassVar[frozenset[str]] = frozenset({"bot"})
    check: Literal["bot_kb_rejected"]


RULE_TYPES: tuple[type[RuleBase], ...] = (
    FirstResponseOver,
    SlaMissed,
    NoGreeting,
    NoClosing,
    ForbiddenWords,
    CustomerRepeats,
    SlowReplyWithoutApology,
    WaitNotKept,
    NoRatingInvitation,
    NegativeEnd,
    HandoffNoHumanReply,
    TransfersOver,
    BotFallbacksOver,
    BotKbRejected,
)

CHECK_TYPES: tuple[str, ...] = tuple(
    str(model.model_fields["check"].annotation.__args__[0])  # type: ignore[union-attr]
    for model in RULE_TYPES
)
"""The check types, in the order of the file's header."""

Rule = Annotated[
    FirstResponseOver
    | SlaMissed
    | NoGreeting
    | NoClosing
    | ForbiddenWords
    | CustomerRepeats
    | SlowReplyWithoutApology
    | WaitNotKept
    | NoRatingInvitation
    | NegativeEnd
    | HandoffNoHumanReply
    | TransfersOver
    | BotFallbacksOver
    | BotKbRejected,
    Field(discriminator="check"),
]
"""One rule: its model is chosen by its `check`."""


class QaRules(Section):
    """The QA rules file, validated."""

    version: Literal[1]
    red_card_below: int = Field(DEFAULT_RED_CARD_BELOW, ge=0, le=100)
    rules: tuple[Rule, ...] = ()

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> QaRules:
        """Validates; errors inside a rule point at the rule's keys, not at its check type.

        Pydantic places an error of a tagged union under the tag (`rules[0].no_greeting.x`);
        the file has no such key, so the tag is dropped, and an unknown `check` gets a hint.
        """
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError as invalid:
            errors = [_untagged(error, obj) for error in invalid.errors()]
            raise ValidationError.from_exception_data(invalid.title, errors) from None

    @property
    def enabled(self) -> tuple[RuleBase, ...]:
        """The rules that are switched on."""
        return tuple(rule for rule in self.rules if rule.enabled)

    def by_id(self, rule_id: str) -> RuleBase | None:
        """The rule with this id, or None."""
        return next((rule for rule in self.rules if rule.id == rule_id), None)


def _untagged(error: Any, data: Any) -> InitErrorDetails:
    """A pydantic error of the rules list without the union tag in its place."""
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind in ("union_tag_invalid", "union_tag_not_found") and len(loc) == 2:
        given = data["rules"][loc[1]].get("check") if isinstance(data, dict) else None
        if kind == "union_tag_not_found":
            message = "check is required: one of " + ", ".join(CHECK_TYPES)
            return {"type": PydanticCustomError("check", message), "loc": loc, "input": {}}
        message = (
            f"unknown check type {given!r}{did_you_mean(str(given), CHECK_TYPES)}"
            f" (known: {', '.join(CHECK_TYPES)})"
        )
        return {"type": PydanticCustomError("check", message), "loc": (*loc, "check"), "input": {}}
    if len(loc) >= 3 and loc[0] == "rules" and loc[2] in CHECK_TYPES:
        loc = (*loc[:2], *loc[3:])
    message = str(error["msg"]).removeprefix("Value error, ")
    unknown = re.match(r"unknown key '([^']+)'", message)
    if kind == "value_error" and unknown:
        owners = [
            name
            for name, model in zip(CHECK_TYPES, RULE_TYPES, strict=True)
            if unknown[1] in model.model_fields
        ]
        if owners:
            message += f"; {unknown[1]} is a parameter of {', '.join(owners)}"
        return {"type": PydanticCustomError("key", message), "loc": loc, "input": error["input"]}
    details: InitErrorDetails = {"type": kind, "loc": loc, "input": error["input"]}
    if "ctx" in error:
        details["ctx"] = error["ctx"]
    return details


def _check(rules: QaRules) -> Iterator[Problem]:
    """What the schema cannot see: unique ids, subjects a check can be about, red cards."""
    seen: dict[str, int] = {}
    for index, rule in enumerate(rules.rules):
        if rule.id in seen:
            yield (
                ("rules", index, "id"),
                f"{rule.id!r} is used twice (also rules[{seen[rule.id]}]); ids must be unique",
            )
        seen.setdefault(rule.id, index)
        check = getattr(rule, "check", "")
        if rule.subject not in type(rule).SUBJECTS:
            yield (
                ("rules", index, "subject"),
                f"{check} cannot be about {rule.subject!r}"
                f" (allowed: {', '.join(sorted(type(rule).SUBJECTS))})",
            )
        if rule.red_card and rule.severity != "fatal":
            yield (
                ("rules", index, "red_card"),
                f"a red card is a fatal item: set severity: fatal (got {rule.severity!r})",
            )


def default_rules_path() -> Path:
    """The shipped rules file: `data/service/qa_rules.yml` in the project."""
    return PROJECT_ROOT / "data" / "service" / "qa_rules.yml"


def load_qa_rules(path: Path | None = None) -> QaRules:
    """Reads and validates a QA rules file (default: the shipped one).

    Raises:
        QaRulesError: Every mistake, one per line "file:line: place: message".
    """
    try:
        document = read_data_file(default_rules_path() if path is None else path)
    except DataFileError as problem:
        raise QaRulesError(str(problem)) from problem
    return validate_data(document, QaRules, QaRulesError, _check)


def rules_about(rules: Sequence[RuleBase], subject_key: str) -> list[RuleBase]:
    """The rules among `rules` that apply to this subject."""
    return [rule for rule in rules if rule.about(subject_key)]
