"""The QA checks: one pure function per check type of `qa_rules.yml`.

Each check reads a conversation's facts (`bot.supervision.facts`) for one subject (`bot` or
`agent:<username>`) and returns its hits: the message that shows the lapse (when one does)
and a short bilingual detail. A check charges only the subject responsible (the agent who
replied first, whoever spoke before the customer repeated themselves...); `run_checks` asks
every rule about every subject it applies to and keeps one finding per rule and subject.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.supervision.bot_replies import is_fallback
from bot.supervision.facts import ConversationFacts, Message
from bot.supervision.rules import (
    SUBJECT_BOT,
    BotFallbacksOver,
    FirstResponseOver,
    HandoffNoHumanReply,
    RuleBase,
    SlowReplyWithoutApology,
    TransfersOver,
    WaitNotKept,
    WordsRule,
    agent_subject,
)

RATING_NOTICES = frozenset({"csat", "csat_reminder"})
"""System messages (the scheduler's notices, by kind) that ask for a rating."""


@dataclass(frozen=True)
class Hit:
    """One lapse: the message that shows it (None: the conversation as a whole) and why."""

    message_id: int | None
    detail: str


@dataclass(frozen=True)
class Finding:
    """A rule broken by a subject in a conversation, with every hit (the first is shown)."""

    subject_key: str
    rule: RuleBase
    hits: tuple[Hit, ...]

    @property
    def message_id(self) -> int | None:
        """The evidence: the first hit's message."""
        return self.hits[0].message_id

    @property
    def detail(self) -> str:
        """The first hit's detail, with how often it happened when more than once."""
        first = self.hits[0].detail
        return (
            first
            if len(self.hits) == 1
            else f"{first}（共 {len(self.hits)} 次 · x{len(self.hits)}）"
        )


Check = Callable[[Any, ConversationFacts, str], list[Hit]]


# ---------------------------------------------------------------------------------------------
# Helpers


def _seconds(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()


def _duration(seconds: float) -> str:
    """`7分12秒 (432 s)`, `45秒 (45 s)`."""
    whole = max(0, round(seconds))
    minutes, rest = divmod(whole, 60)
    text = f"{minutes}分{rest}秒" if minutes else f"{rest}秒"
    return f"{text} ({whole} s)"


def _quote(message: Message, limit: int = 40) -> str:
    text = " ".join(message.text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _words(found: Sequence[str]) -> str:
    return "、".join(found)


def _turn_of(message: Message) -> str | None:
    """Whose turn a staff message is: its subject, or the agent a desk notice speaks for.

    A notice in an agent's name ("客服 X 已接入", a transfer) makes it that agent's turn: the
    customer now talks to them.
    """
    if message.subject_key is not None:
        return message.subject_key
    if message.role == "system" and message.author:
        return agent_subject(message.author)
    return None


def _last_speaker_before(facts: ConversationFacts, message: Message) -> str | None:
    """Who of the bot and the agents the customer was talking to just before `message`."""
    speaker = None
    for other in facts.messages:
        if other is message:
            break
        speaker = _turn_of(other) or speaker
    return speaker


def _waited(facts: ConversationFacts, requested: datetime, until: datetime) -> float:
    """Seconds a customer waited for a person, counted from when agents were at work."""
    start = max(requested, facts.agents_on_duty_at or requested)
    return max(_seconds(start, until), 0.0)


def _agent_messages(facts: ConversationFacts) -> list[Message]:
    return [m for m in facts.messages if m.role == "agent"]


def _first_agent_reply(facts: ConversationFacts, since: datetime) -> Message | None:
    return next((m for m in facts.messages if m.role == "agent" and m.at >= since), None)


# ---------------------------------------------------------------------------------------------
# The checks


def first_response_over(
    rule: FirstResponseOver, facts: ConversationFacts, subject: str
) -> list[Hit]:
    """The first agent reply after the handoff came later than the tier's limit."""
    requested = facts.handoff_requested_at
    if requested is None:
        return []
    first = _first_agent_reply(facts, requested)
    if first is None or first.subject_key != subject:
        return []
    waited = _waited(facts, requested, first.at)
    limit = rule.seconds_by_tier.of(facts.tier)
    if waited <= limit:
        return []
    return [
        Hit(
            first.id,
            f"转人工后 {_duration(waited)} 才首次回复，{facts.tier} 时限 {limit} 秒"
            f" · first reply {round(waited)} s after the handoff, limit {limit} s ({facts.tier})",
        )
    ]


def sla_missed(rule: RuleBase, facts: ConversationFacts, subject: str) -> list[Hit]:
    """The ticket's first response was late, or is missing past its due time.

    About the agent who took the conversation. A ticket the bot opened and the desk answered
    late elsewhere is not the bot's conduct in this conversation: the SLA figures of the
    reports count it, not QA.
    """
    due = facts.response_due_at
    owner = facts.agents[0] if facts.agents else facts.handoff_agent
    if due is None or owner is None or subject != agent_subject(owner):
        return []
    answered = facts.first_responded_at
    if answered is not None:
        if answered <= due:
            return []
        late = _seconds(due, answered)
        return [
            Hit(
                None,
                f"工单首次响应晚于时限 {_duration(late)}"
                f" · ticket first answered {round(late)} s after its due time",
            )
        ]
    checked = facts.checked_at or facts.end
    if checked <= due:
        return []
    return [Hit(None, "工单已过响应时限仍未响应 · ticket still unanswered past its due time")]


def no_greeting(rule: WordsRule, facts: ConversationFacts, subject: str) -> list[Hit]:
    """The subject's first message has no greeting."""
    mine = facts.of(subject)
    if not mine or rule.matcher.matches(mine[0].normal):
        return []
    first = mine[0]
    return [Hit(first.id, f"第一句没有问候：「{_quote(first)}」 · first message has no greeting")]


def no_closing(rule: WordsRule, facts: ConversationFacts, subject: str) -> list[Hit]:
    """The subject's last message has no closing (agents: only the last agent; bot: if last)."""
    mine = facts.of(subject)
    if not mine:
        return []
    if subject == SUBJECT_BOT:
        staff = facts.staff_messages
        if staff and staff[-1].role != "bot":
            return []
    else:
        agents = _agent_messages(facts)
        if agents[-1].subject_key != subject:
            return []
    last = mine[-1]
    if rule.matcher.matches(last.normal):
        return []
    return [Hit(last.id, f"最后一句没有结束语：「{_quote(last)}」 · last message has no closing")]


def forbidden_words(rule: WordsRule, facts: ConversationFacts, subject: str) -> list[Hit]:
    """Every message of the subject with one of the words."""
    hits = []
    for message in facts.of(subject):
        found = rule.matcher.find(message.normal)
        if found:
            hits.append(Hit(message.id, f"使用了「{_words(found)}」 · said: {', '.join(found)}"))
    return hits


def customer_repeats(rule: WordsRule, facts: ConversationFacts, subject: str) -> list[Hit]:
    """The customer had to repeat themselves, right after the subject spoke."""
    hits = []
    speaker: str | None = None
    for message in facts.messages:
        if (turn := _turn_of(message)) is not None:
            speaker = turn
        elif message.role == "customer" and speaker == subject:
            found = rule.matcher.find(message.normal)
            if found:
                hits.append(
                    Hit(
                        message.id,
                        f"客户说「{_quote(message)}」 · customer had to repeat ({found[0]})",
                    )
                )
    return hits


def slow_reply_without_apology(
    rule: SlowReplyWithoutApology, facts: ConversationFacts, subject: str
) -> list[Hit]:
    """Replies later than `after_seconds` after the customer wrote, without an apology.

    An agent's first reply is left to `first_response_over`; any reply of the same role
    (bot, or any agent) ends the customer's wait.
    """
    role = "bot" if subject == SUBJECT_BOT else "agent"
    started = role == "bot"
    waiting_since: datetime | None = None
    hits = []
    for message in facts.messages:
        if message.role == "customer":
            waiting_since = waiting_since or message.at
            continue
        if message.role != role:
            continue
        mine = message.subject_key == subject
        if waiting_since is not None and mine and started:
            waited = _seconds(waiting_since, message.at)
            if waited > rule.after_seconds and not rule.matcher.matches(message.normal):
                hits.append(
                    Hit(
                        message.id,
                        f"客户等了 {_duration(waited)}，回复未致歉"
                        f" · replied {round(waited)} s after the customer without an apology",
                    )
                )
        waiting_since = None
        started = started or mine
    return hits


def wait_not_kept(rule: WaitNotKept, facts: ConversationFacts, subject: str) -> list[Hit]:
    """A "one moment" and then nothing within `within_seconds`.

    The promise is kept by the subject's next message, or by any agent's (a colleague, or
    the person the bot said was coming; the bot's "please wait" after a handoff request is
    left to `handoff_no_human_reply`). Broken: that message came later than the limit, or
    never came while the customer wrote on or the conversation lasted past the limit.
    """
    hits = []
    messages = facts.messages
    handoff = facts.handoff_requested_at
    for index, message in enumerate(messages):
        if message.subject_key != subject or not rule.matcher.matches(message.normal):
            continue
        if subject == SUBJECT_BOT and handoff is not None and message.at >= handoff:
            continue  # "please wait for an agent": handoff_no_human_reply judges that wait
        deadline_seconds = rule.within_seconds
        later = messages[index + 1 :]
        kept_by = next((m for m in later if m.role == "agent" or m.subject_key == subject), None)
        if kept_by is not None:
            broken = _seconds(message.at, kept_by.at) > deadline_seconds
        else:
            customer_on = any(m.role == "customer" for m in later)
            broken = customer_on or _seconds(message.at, facts.end) > deadline_seconds
        if broken:
            hits.append(
                Hit(
                    message.id,
                    f"说了「{_quote(message, 30)}」后 {deadline_seconds // 60} 分钟内没有回复"
                    f" · no follow-up within {deadline_seconds} s",
                )
            )
    return hits


def no_rating_invitation(rule: WordsRule, facts: ConversationFacts, subject: str) -> list[Hit]:
    """An agent conversation ended without asking the customer to rate it (last agent)."""
    agents = _agent_messages(facts)
    if not agents or agents[-1].subject_key != subject or facts.rating is not None:
        return []
    since = agents[0].at
    for message in facts.messages:
        if message.at < since or message.role == "customer":
            continue
        if rule.matcher.matches(message.normal) or (
            message.role == "system" and message.action in RATING_NOTICES
        ):
            return []
    return [Hit(agents[-1].id, "结束前没有邀请客户评价 · the customer was not asked to rate")]


def negative_end(rule: WordsRule, facts: ConversationFacts, subject: str) -> list[Hit]:
    """One of the customer's last two messages is angry; about whoever spoke before it."""
    last_two = [m for m in facts.messages if m.role == "customer"][-2:]
    for message in reversed(last_two):
        found = rule.matcher.find(message.normal)
        if found and _last_speaker_before(facts, message) == subject:
            return [
                Hit(
                    message.id,
                    f"客户最后说「{_quote(message)}」 · customer left saying: {', '.join(found)}",
                )
            ]
    return []


def handoff_no_human_reply(
    rule: HandoffNoHumanReply, facts: ConversationFacts, subject: str
) -> list[Hit]:
    """A person was asked for and none wrote within `max_seconds` (or at all, while waiting).

    About the agent who claimed the handoff (or wrote first), else the bot: nobody took it.
    A customer who left before the limit without a reply is not counted.
    """
    requested = facts.handoff_requested_at
    if requested is None:
        return []
    first = _first_agent_reply(facts, requested)
    limit = rule.max_seconds
    if first is not None and _waited(facts, requested, first.at) <= limit:
        return []
    if first is None and _waited(facts, requested, facts.end) <= limit:
        return []
    if facts.handoff_agent:
        responsible = f"agent:{facts.handoff_agent}"
    elif first is not None and first.subject_key:
        responsible = first.subject_key
    else:
        responsible = SUBJECT_BOT
    if subject != responsible:
        return []
    if first is None:
        detail = (
            f"转人工后无客服回复，客户等了 {_duration(_waited(facts, requested, facts.end))}"
            " · no agent ever replied after the handoff"
        )
        return [Hit(None, detail)]
    waited = _waited(facts, requested, first.at)
    return [
        Hit(
            first.id,
            f"转人工后 {_duration(waited)} 才有客服回复（上限 {limit // 60} 分钟）"
            f" · first agent reply {round(waited)} s after the handoff, limit {limit} s",
        )
    ]


def transfers_over(rule: TransfersOver, facts: ConversationFacts, subject: str) -> list[Hit]:
    """More than `max` transfers: about each agent who passed the customer on."""
    if facts.transfers <= rule.max:
        return []
    agents = _agent_messages(facts)
    passed = {
        agents[i].subject_key
        for i in range(len(agents) - 1)
        if agents[i].subject_key != agents[i + 1].subject_key
    }
    if subject not in passed:
        return []
    return [Hit(None, f"客户被转接 {facts.transfers} 次 · passed on {facts.transfers} times")]


def bot_fallbacks_over(rule: BotFallbacksOver, facts: ConversationFacts, subject: str) -> list[Hit]:
    """The bot fell back more than `max` times (evidence: the fallback over the limit)."""
    if subject != SUBJECT_BOT or facts.fallbacks <= rule.max:
        return []
    fallbacks = [m for m in facts.of(SUBJECT_BOT) if is_fallback(None, m.action)]
    evidence = fallbacks[rule.max].id if len(fallbacks) > rule.max else None
    return [
        Hit(
            evidence,
            f"机器人 {facts.fallbacks} 次未能理解或无答案 · bot fell back {facts.fallbacks} times",
        )
    ]


def bot_kb_rejected(rule: RuleBase, facts: ConversationFacts, subject: str) -> list[Hit]:
    """The customer said a knowledge-base answer did not solve it."""
    if subject != SUBJECT_BOT or not facts.kb_rejected:
        return []
    return [Hit(None, "客户反馈知识库答案没有解决问题 · customer said the answer did not help")]


CHECKS: dict[str, Check] = {
    "first_response_over": first_response_over,
    "sla_missed": sla_missed,
    "no_greeting": no_greeting,
    "no_closing": no_closing,
    "forbidden_words": forbidden_words,
    "customer_repeats": customer_repeats,
    "slow_reply_without_apology": slow_reply_without_apology,
    "wait_not_kept": wait_not_kept,
    "no_rating_invitation": no_rating_invitation,
    "negative_end": negative_end,
    "handoff_no_human_reply": handoff_no_human_reply,
    "transfers_over": transfers_over,
    "bot_fallbacks_over": bot_fallbacks_over,
    "bot_kb_rejected": bot_kb_rejected,
}
"""Check type -> its function."""


def run_checks(rules: Sequence[RuleBase], facts: ConversationFacts) -> list[Finding]:
    """Every enabled rule asked about every subject it applies to: the findings, in rule order.

    The bot is asked even when it did not write (a handoff nobody took is charged to it).
    """
    subjects = facts.subjects()
    if SUBJECT_BOT not in subjects:
        subjects.append(SUBJECT_BOT)
    found = []
    for rule in rules:
        if not rule.enabled:
            continue
        check = CHECKS[rule.check]
        for subject in subjects:
            if rule.about(subject):
                hits = check(rule, facts, subject)
                if hits:
                    found.append(Finding(subject, rule, tuple(hits)))
    return found
