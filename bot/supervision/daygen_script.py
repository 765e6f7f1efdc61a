"""One generated conversation, message by message: what the customer, the bot and agents say.

Pure (no database): `script_conversation` returns a `Script` with the messages, the questions
taken to the knowledge base and, when a ticket was opened or a person took part, its `Case`.
Agents slip now and then, at rates scaled by their `AgentProfile.lapse`: no greeting, a slow
reply without an apology, a "请稍等" not kept, asking again for what the customer said (the
customer: "我刚说过了"), no rating invitation, rarely a forbidden phrase (a red card).
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.core.db import ComplaintGrade, UrgencyTier
from bot.service.classification import Classification
from bot.service.policy import ServicePolicy
from bot.service.sla import due_at, format_due
from bot.supervision import daygen_material as m
from bot.supervision.bot_replies import FALLBACK_RESPONSES
from bot.supervision.daygen_material import KbItem, Material

ORDER_NUMBER = re.compile(r"KF\d{12}")
GREETING_INTENTS = frozenset({"greet", "affirm", "deny", "thank", "goodbye", "wait"})
LAPSES = {
    "no_greeting": 0.06,
    "slow_reply": 0.06,
    "wait_not_kept": 0.04,
    "asks_again": 0.04,
    "no_rating": 0.05,
    "evasive": 0.015,
    "forbidden": 0.004,
}
"""Base rate of each agent lapse per agent conversation (times the agent's `lapse`)."""
NOTICED = frozenset({"slow_reply", "wait_not_kept", "asks_again", "evasive", "forbidden"})
"""Lapses the customer feels (they lower the rating)."""
SCENARIOS = {
    "kb": 0.49,
    "suggested": 0.04,
    "miss": 0.08,
    "order": 0.12,
    "chat": 0.035,
    "ticket": 0.06,
    "handoff": 0.15,
    "abandoned": 0.01,
}
"""How conversations begin: a knowledge question, an order lookup, a problem to record..."""


@dataclass(frozen=True)
class AgentProfile:
    """A generated agent: how often they slip (`lapse`) and how fast they answer (`speed`)."""

    username: str
    display_name: str
    lapse: float = 1.0
    speed: float = 1.0


DEFAULT_AGENTS = (
    AgentProfile("li.na", "李娜", lapse=0.5, speed=0.8),
    AgentProfile("wang.lei", "王磊", lapse=1.0, speed=1.0),
    AgentProfile("chen.jie", "陈杰", lapse=0.8, speed=1.3),
    AgentProfile("zhao.min", "赵敏", lapse=2.0, speed=1.1),
)


@dataclass
class Line:
    """One message: `role` customer, bot, agent or system (`author`: agent username)."""

    at: datetime
    role: str
    text: str
    author: str | None = None
    intent: str | None = None
    confidence: float | None = None
    action: str | None = None


@dataclass
class KbAsk:
    """A question taken to the knowledge base (a `kb_queries` row)."""

    at: datetime
    query: str
    outcome: str
    entry_id: str | None
    confidence: float
    top_hits: list[dict[str, object]]
    feedback: str | None = None


@dataclass
class Case:
    """The ticket of a conversation and, when a person took part, its handoff."""

    created_at: datetime
    kind: str
    category: str
    tier: str
    grade: str | None
    due_at: datetime
    product: str
    order_number: str | None
    problem: str
    implication: str | None = None
    impacts: list[str] = field(default_factory=list)
    need_payoff: str | None = None
    correction_rounds: int = 0
    completeness: float = 1.0
    reason: str | None = None
    told: bool = True
    """Whether the customer described the problem before the handoff."""
    requested_at: datetime | None = None
    agents: list[str] = field(default_factory=list)
    claimed_at: datetime | None = None
    handoff_ended_at: datetime | None = None
    handed_back: bool = False
    resolved_at: datetime | None = None
    rating: int | None = None
    lapses: int = 0
    desk: list[Line] = field(default_factory=list)
    """The handoff's messages as the desk shows them (author: display name)."""


@dataclass
class Script:
    """A conversation being written: the clock moves with every message."""

    rng: random.Random
    material: Material
    policy: ServicePolicy
    agents: tuple[AgentProfile, ...]
    language: str
    channel: str
    clock: datetime
    sender: str = ""
    lines: list[Line] = field(default_factory=list)
    kb: list[KbAsk] = field(default_factory=list)
    case: Case | None = None
    fallbacks: int = 0
    kb_answers: int = 0
    failed: bool = False
    """The bot's last reply was a miss (fallback, no answer, "did not solve it")."""

    # ------------------------------------------------------------------ messages
    def wait(self, low: float, high: float) -> None:
        """Moves the clock by a random number of seconds."""
        self.clock += timedelta(seconds=self.rng.uniform(low, high))

    def say(self, text: str, intent: str, confidence: float | None = None) -> None:
        """The customer writes (after thinking and typing)."""
        last = self.lines[-1] if self.lines else None
        if last is not None and last.role != "customer":
            self.wait(0, len(last.text) * 0.1)  # reading the answer
        self.wait(4, 12 + len(text) * 0.8)
        conf = round(self.rng.uniform(0.62, 0.99), 3) if confidence is None else confidence
        self._add(Line(self.clock, "customer", text, intent=intent, confidence=conf))

    def bot(self, text: str, action: str, *, miss: bool = False) -> None:
        """The bot answers a second or two later (`miss`: it could not help)."""
        self.wait(0.4, 2.2)
        self.failed = miss
        self.fallbacks += action in FALLBACK_RESPONSES
        self._add(Line(self.clock, "bot", text, action=action))

    def reply(self, name: str, *, miss: bool = False, **v: object) -> None:
        """The bot utters the domain response `name` (recorded as its action, like live)."""
        self.bot(self.material.reply(name, self.language, **v), name, miss=miss)

    def agent(self, profile: AgentProfile, text: str, *, after: float | None = None) -> None:
        """An agent writes, `after` seconds or after reading and typing."""
        pause = after if after is not None else self.rng.uniform(12, 45) * profile.speed
        self.clock += timedelta(seconds=pause)
        self._add(Line(self.clock, "agent", text, author=profile.username))

    def notice(self, profile: AgentProfile, text: str, *, after: float = 1.0) -> None:
        """A text the desk sends in the agent's name (joined, transferred, the rating question).

        The recorder stores it as a system line of the conversation (the agent did not type
        it); the handoff shows it as the agent's.
        """
        self.clock += timedelta(seconds=after)
        self.lines.append(Line(self.clock, "system", text, author=profile.username))
        case = self.case
        if case is not None and case.reason is not None and case.handoff_ended_at is None:
            case.desk.append(Line(self.clock, "agent", text, author=profile.display_name))

    def system(self, text: str) -> None:
        """A desk line (only the handoff shows it)."""
        if self.case is not None:
            self.case.desk.append(Line(self.clock, "system", text))

    def _add(self, line: Line) -> None:
        self.lines.append(line)
        case = self.case
        if case is not None and case.reason is not None and case.handoff_ended_at is None:
            author = line.author and self._profile(line.author).display_name
            case.desk.append(Line(line.at, line.role, line.text, author=author))

    def _profile(self, username: str) -> AgentProfile:
        return next(p for p in self.agents if p.username == username)

    # ------------------------------------------------------------------ helpers
    def pick(self, options: Mapping[str, Sequence[str]]) -> str:
        """A random text of `options` in the conversation's language."""
        return self.rng.choice(options[self.language])

    def example(self, intent: str, typos: float = 0.2) -> str:
        """A customer's message of `intent`, as typed."""
        text = self.material.example(self.rng, intent, self.language)
        return m.colloquial(self.rng, text, self.language, typos)

    def both(self, pair: tuple[str, str]) -> str:
        """The zh or en half of a pair."""
        return pair[1] if self.language == "en" else pair[0]

    def order_number(self) -> str:
        """A plausible order number of the last weeks."""
        day = self.clock - timedelta(days=self.rng.randint(1, 20))
        return f"KF{day:%Y%m%d}{self.rng.randint(1, 9999):04d}"

    def greet_first(self) -> None:
        """Some customers say hello before their question."""
        if self.rng.random() < 0.3:
            self.say(self.example("greet", 0.1), "greet")
            self.reply("utter_greet")

    @property
    def online(self) -> bool:
        """Whether agents are at the desk now."""
        return is_open(self.policy, self.clock)

    def next_opening(self) -> datetime:
        """When agents are next at the desk (within ten minutes)."""
        return next_opening(self.policy, self.clock)


def is_open(policy: ServicePolicy, moment: datetime) -> bool:
    """Whether agents are at the desk at `moment` (the policy's business hours)."""
    hours = policy.business_hours
    local = moment.astimezone(policy.zone)
    if hours is None:
        return True
    return hours.is_open_on(local.date()) and hours.start <= local.time() < hours.end


def next_opening(policy: ServicePolicy, moment: datetime) -> datetime:
    """The first ten-minute step after `moment` when agents are at the desk."""
    moment += timedelta(minutes=10)
    while not is_open(policy, moment):
        moment += timedelta(minutes=10)
    return moment


def sender_id(rng: random.Random, channel: str) -> str:
    """A sender id as the channel names its users (`wechat:o…`, `web:<hex>`, `telegram:<id>`)."""
    if channel == "wechat":
        alphabet = string.ascii_letters + string.digits + "_-"
        return "wechat:o" + "".join(rng.choice(alphabet) for _ in range(27))
    if channel == "telegram":
        return f"telegram:{rng.randint(10**8, 7 * 10**9)}"
    if channel == "rest":
        return f"app:u{rng.randint(10**7, 10**8 - 1)}"
    if rng.random() < 0.3:
        return f"shop:{rng.randint(10**6, 10**8)}"
    return "web:" + "".join(rng.choice("0123456789abcdef") for _ in range(32))


# ---------------------------------------------------------------------- the bot alone
def script_conversation(s: Script) -> Script:
    """Writes one conversation into `s` (a scenario drawn by `SCENARIOS`)."""
    scenario = s.rng.choices(list(SCENARIOS), list(SCENARIOS.values()))[0]
    if scenario == "abandoned":  # the customer wrote; the bot never answered
        intent = s.rng.choice(("greet", "order_status"))
        s.say(s.example(intent), intent)
        return s
    s.greet_first()
    if scenario == "kb":
        ask_kb(s, _kb_item(s))
    elif scenario == "suggested":
        suggested(s)
    elif scenario == "miss":
        miss(s)
    elif scenario == "order":
        order_lookup(s)
    elif scenario == "chat":
        chat(s)
    elif scenario == "ticket":
        record_need(s)
    else:
        ask_for_person(s)
    return s


def _kb_item(s: Script) -> KbItem:
    return s.rng.choice(s.material.kb[s.language])


def _hits(s: Script, item: KbItem | None, confidence: float) -> list[dict[str, object]]:
    others = [e for e in s.rng.sample(s.material.entries[s.language], 3) if e != item][:2]
    hits = [item, *others] if item is not None else others
    return [
        {
            "entry_id": hit.entry_id,
            "confidence": round(confidence * (0.55**n), 4),
            "score": round(confidence * (0.6**n) * 0.9, 4),
            "question": hit.question,
        }
        for n, hit in enumerate(hits)
    ]


def ask_kb(s: Script, item: KbItem, *, depth: int = 0) -> None:
    """A question the knowledge base answers; the customer says whether it solved it."""
    intent = m.TOPIC_INTENTS.get(item.topic, "product_question")
    s.say(m.colloquial(s.rng, item.text, s.language), intent)
    confidence = round(s.rng.uniform(0.62, 0.97), 4)
    ask = KbAsk(s.clock, s.lines[-1].text, "answered", item.entry_id, confidence,
                _hits(s, item, confidence))  # fmt: skip
    s.kb.append(ask)
    s.reply("utter_kb_answer", answer=item.answer, source=item.source)
    s.kb_answers += 1
    roll = s.rng.random()
    if roll < 0.52:
        ask.feedback = "solved"
        s.say(m.BUTTONS["solved"][s.language], "affirm", 1.0)
        s.reply("utter_kb_glad")
        if s.rng.random() < 0.4:
            s.say(s.example("thank", 0.1), "thank")
            s.reply(s.rng.choice(("utter_youre_welcome", "utter_goodbye")))
    elif roll < 0.62 and depth == 0:
        ask_kb(s, _kb_item(s), depth=1)
    elif roll < 0.69:
        ask.feedback = "not_solved"
        s.say(m.BUTTONS["not_solved"][s.language], "deny", 1.0)
        s.reply("utter_kb_not_solved", miss=True)
        if s.rng.random() < 0.45:
            s.say(m.BUTTONS["human"][s.language], "ask_human", 1.0)
            handoff(s, "explicit_request", _kind_of(item.topic), item.text)
        elif s.rng.random() < 0.4:
            s.say(m.BUTTONS["no_thanks"][s.language], "deny", 1.0)
            s.reply("utter_anything_else")
            s.failed = True
    # else: read the answer and left


def suggested(s: Script) -> None:
    """An unclear question: the bot offers entries, the customer picks one."""
    item = _kb_item(s)
    s.say(m.colloquial(s.rng, item.text, s.language, 0.5), "product_question", 0.41)
    s.kb.append(KbAsk(s.clock, item.text, "suggested", None, 0.44, _hits(s, item, 0.44)))
    s.reply("utter_kb_suggestions")
    s.say(item.question, "kb_select", 1.0)
    s.bot(f"{item.answer}\n\n—— {item.source}", "action_answer_from_kb")
    s.kb_answers += 1


def miss(s: Script) -> None:
    """The bot cannot answer; the customer rephrases, asks for a person, or leaves."""
    off_topic = s.rng.random() < 0.5
    if off_topic:
        s.say(s.rng.choice(s.material.off_topic[s.language]), "out_of_scope")
        s.kb.append(KbAsk(s.clock, s.lines[-1].text, "no_answer", None, 0.21, []))
        s.reply("utter_out_of_scope", miss=True)
    else:
        s.say(
            s.example("product_question", 0.4), "nlu_fallback", round(s.rng.uniform(0.2, 0.45), 3)
        )
        s.reply("utter_ask_rephrase", miss=True)
    roll = s.rng.random()
    if roll < 0.4:
        ask_kb(s, _kb_item(s), depth=1)
    elif roll < 0.6:
        s.say(s.example("product_question", 0.5), "nlu_fallback", round(s.rng.uniform(0.2, 0.4), 3))
        s.reply("utter_offer_human", miss=True)
        if s.rng.random() < 0.6:
            s.say(m.BUTTONS["human"][s.language], "affirm", 1.0)
            handoff(s, "consecutive_misses", "general", s.lines[-3].text)
        elif s.rng.random() < 0.3:  # declines, tries once more, gives up
            s.say(m.BUTTONS["no_thanks"][s.language], "deny", 1.0)
            s.reply("utter_anything_else")
            s.say(s.rng.choice(s.material.off_topic[s.language]), "out_of_scope")
            s.kb.append(KbAsk(s.clock, s.lines[-1].text, "no_answer", None, 0.18, []))
            s.reply("utter_out_of_scope", miss=True)


def order_lookup(s: Script) -> None:
    """Where is my order: the number, the last four digits of the phone, the status."""
    s.say(s.example("order_status"), "order_status")
    given = ORDER_NUMBER.search(s.lines[-1].text.upper())
    number = given.group(0) if given else s.order_number()
    if not given:
        s.reply("utter_ask_order_number")
        s.say(number if s.rng.random() < 0.8 else number.lower(), "inform", 0.97)
    status = "shipped" if s.language == "en" else "已发货"
    s.reply("utter_order_status_brief", order_number=number, status=status)
    s.say(f"{s.rng.randint(0, 9999):04d}", "inform", 0.93)
    zh, en, prefix = s.rng.choice(m.CARRIERS)
    product = s.both(m.product_of(s.rng, s.lines[0].text))
    eta = (s.clock + timedelta(days=s.rng.randint(1, 3))).astimezone(s.policy.zone)
    s.reply(
        "utter_order_status_shipped",
        order_number=number,
        product=product,
        carrier=en if s.language == "en" else zh,
        tracking_number=f"{prefix}{s.rng.randint(10**11, 10**12 - 1)}",
        eta=f"{eta:%Y-%m-%d}" if s.language == "en" else f"{eta.month}月{eta.day}日",
    )
    if s.rng.random() < 0.55:
        s.say(s.example("thank"), "thank")
        s.reply("utter_youre_welcome")


def chat(s: Script) -> None:
    """Small talk: is this a bot, thanks, bye."""
    s.say(s.example("bot_challenge"), "bot_challenge")
    s.reply("utter_iamabot")
    if s.rng.random() < 0.5:
        s.say(s.example("goodbye", 0.1), "goodbye")
        s.reply("utter_goodbye")


# ---------------------------------------------------------------------- needs and tickets
_KINDS = {
    "shipping": "logistics",
    "orders": "logistics",
    "returns": "policy",
    "payments": "payment",
    "warranty_repair": "policy",
}
_OPENERS = {
    "complain": ("complaint", "complaint"),
    "urgent_issue": ("safety", "urgent"),
    "logistics_issue": ("logistics", "problem"),
    "return_refund": ("refund", "problem"),
    "payment_issue": ("payment", "problem"),
}


def _kind_of(topic: str) -> str:
    return _KINDS.get(topic, "general")


def _classify(s: Script, kind: str, category: str) -> tuple[str, str | None]:
    if category == "urgent":
        return "urgent", None
    if category == "complaint":
        return "normal", "major" if s.rng.random() < 0.12 else "general"
    if kind == "general" and s.rng.random() < 0.5:
        return "consultation", None
    return ("urgent" if s.rng.random() < 0.06 else "normal"), None


def open_case(s: Script, kind: str, category: str, problem: str) -> Case:
    """The need as the bot records it, classified, with its response due time."""
    tier, grade = _classify(s, kind, category)
    kinds = Classification(
        UrgencyTier(tier), ComplaintGrade(grade) if grade else None, frozenset(), ()
    )
    product = s.both(m.product_of(s.rng, problem))
    order = s.order_number() if s.rng.random() < 0.7 else None
    case = Case(s.clock, kind, category, tier, grade, due_at(s.policy, kinds, s.clock), product,
                order, problem[:500])  # fmt: skip
    case.need_payoff = m.outcome_of(s.rng, problem)
    case.completeness = 1.0 if s.rng.random() < 0.96 else s.rng.choice((0.8, 0.9))
    s.case = case
    return case


def record_need(s: Script) -> None:
    """A problem recorded step by step (SPIN), confirmed, and a ticket opened: no person."""
    intent = s.rng.choice(("complain", "logistics_issue", "return_refund", "payment_issue"))
    reports = [t for t in s.material.examples[(intent, s.language)] if not m.is_question(t)]
    s.say(m.colloquial(s.rng, s.rng.choice(reports), s.language), intent)
    kind, category = _OPENERS[intent]
    case = open_case(s, kind, category, s.lines[-1].text)
    s.reply("utter_complain_ack" if intent == "complain" else "utter_problem_ack")
    s.reply("utter_ask_spin_situation")
    situation = s.material.clause(s.rng, "situation", s.language, case.problem)
    s.say(case.order_number or situation, "inform")
    s.reply("utter_ask_spin_implication")
    impact = s.rng.choice(m.IMPACT_KINDS[kind])
    case.implication = s.material.clause(s.rng, f"impact:{impact}", s.language, case.problem)
    case.impacts = [] if impact == "none" else [impact]
    s.say(case.implication, "inform")
    s.reply("utter_ask_spin_need_payoff")
    s.say(s.both(m.NEED_CHOICES[case.need_payoff or "information"]), "choose", 1.0)
    s.reply("utter_need_confirmation", summary=_summary(s, case))
    if s.rng.random() < 0.06:
        case.correction_rounds = 1
        s.say(s.both(("需要修改", "Needs a change")), "deny", 1.0)
        s.reply("utter_ask_correction_field")
        s.say(s.both(("问题描述", "The problem")), "choose", 1.0)
        s.reply("utter_ask_spin_problem")
        s.say(s.material.clause(s.rng, "problem", s.language, case.problem), "inform")
        s.reply("utter_need_confirmation", summary=_summary(s, case))
    s.say(m.BUTTONS["confirm"][s.language], "affirm", 1.0)
    case.created_at = s.clock
    if case.tier == "urgent" or case.grade == "major":
        handoff(
            s, "urgent_tier" if case.tier == "urgent" else "major_complaint", kind, case.problem
        )
        return
    s.reply(
        "utter_ticket_opened",
        ticket_number="{ticket_number}",
        tier=s.both(m.TIER_LABELS[case.tier]),
        next_step=s.both(m.NEXT_STEPS[case.need_payoff or "information"]),
        due=format_due(s.policy, case.due_at, s.language),
    )
    if s.rng.random() < 0.5:
        s.say(s.pick(m.ACKS), "affirm")


def _summary(s: Script, case: Case) -> str:
    """The need confirmation's lines, as `utter_need_confirmation` shows them."""
    en = s.language == "en"
    tier = s.both(m.TIER_LABELS[case.tier])
    if case.grade:
        tier += ", " if en else "，"
        tier += s.both(m.GRADE_LABELS[case.grade])
    situation = case.product
    if case.order_number:
        situation = (
            f"{case.order_number} ({situation})" if en else f"{case.order_number}（{situation}）"
        )
    rows = (
        ("订单/商品", "Order / product", situation),
        ("问题", "Problem", case.problem),
        ("影响", "Impact", case.implication or ""),
        ("期望处理", "Outcome wanted", s.both(m.NEED_CHOICES[case.need_payoff or "information"])),
        ("紧急程度", "Priority", tier),
        ("承诺时间", "Committed by", format_due(s.policy, case.due_at, s.language)),
    )
    return "\n".join(f"- {en_}: {v}" if en else f"- {zh}：{v}" for zh, en_, v in rows)


# ---------------------------------------------------------------------- a person
def ask_for_person(s: Script) -> None:
    """The customer wants a person at once, complains, or reports something urgent."""
    roll = s.rng.random()
    if roll < 0.45:
        intent = s.rng.choice(("logistics_issue", "return_refund", "payment_issue", "complain"))
        problem = s.example(intent, 0.3)
        told = s.rng.random() < 0.5
        if told:  # says what it is about, then wants a person; else the agent will ask
            s.say(problem, intent)
        s.say(s.example("ask_human"), "ask_human")
        handoff(s, "explicit_request", _OPENERS[intent][0], problem)
        if s.case is not None:
            s.case.told = told
    elif roll < 0.8:
        s.say(s.example("complain"), "complain")
        problem = s.lines[-1].text
        s.reply("utter_complain_ack")
        s.say(s.material.clause(s.rng, "problem", s.language, problem), "complain")
        s.say(s.example("ask_human"), "ask_human")
        handoff(s, "negative_sentiment", "complaint", problem, category="complaint")
    else:
        s.say(s.example("urgent_issue"), "urgent_issue")
        s.reply("utter_safety_warning")
        handoff(s, "urgent_tier", "safety", s.lines[-2].text, category="urgent")


def handoff(s: Script, reason: str, kind: str, problem: str, category: str = "problem") -> None:
    """The bot hands over; an agent claims it and serves the customer (see `serve`)."""
    case = s.case or open_case(s, kind, category, problem)
    case.reason = reason
    case.created_at = min(case.created_at, s.clock)
    due = format_due(s.policy, case.due_at, s.language)
    opening = s.lines[-6:]
    case.desk.extend(
        Line(line.at, line.role, line.text) for line in opening if line.role != "agent"
    )
    profile = s.rng.choice(s.agents)
    if s.online:
        s.reply("utter_handoff_queued", ahead=s.rng.randint(0, 4), due=due)
        wait = (25 if case.tier == "urgent" else 45) * s.rng.lognormvariate(0, 0.6)
        if s.rng.random() < 0.05:
            wait = s.rng.uniform(620, 1500)  # busy: nobody free for ten minutes and more
        wait *= profile.speed
    else:
        s.reply("utter_handoff_offline", due=due)
        wait = (s.next_opening() - s.clock).total_seconds() + s.rng.uniform(60, 1500)
    case.requested_at = s.clock
    if wait > 240 and s.rng.random() < 0.6:
        s.wait(150, min(wait - 30, 420))
        s.say(s.pick(m.STILL_THERE), "greet")
    serve(s, case, profile, max(5.0, wait - (s.clock - case.requested_at).total_seconds()))


def serve(s: Script, case: Case, profile: AgentProfile, wait: float) -> None:
    """An agent's part: join, greet, look into it, solve it, close, ask for the rating."""
    rng, lang = s.rng, s.language

    def slips(name: str) -> bool:
        slipped = rng.random() < LAPSES[name] * profile.lapse
        case.lapses += slipped and name in NOTICED
        return slipped

    s.notice(profile, m.JOINED[lang].format(name=profile.display_name), after=wait)
    case.claimed_at = s.clock
    case.agents.append(profile.username)
    s.system(f"{profile.display_name} 接入了对话 · joined")
    chance = 0.05
    while rng.random() < chance and len(s.agents) > 1:
        s.agent(profile, m.TRANSFER_OUT[lang])
        profile = rng.choice([p for p in s.agents if p != profile])
        s.notice(profile, m.TRANSFERRED[lang].format(name=profile.display_name), after=40)
        case.agents.append(profile.username)
        chance = 0.15  # now and then passed on once more
    if not slips("no_greeting"):
        waited = (s.clock - (case.requested_at or s.clock)).total_seconds() > 180
        s.agent(profile, s.material.phrase(f"basic.greeting.hello{'_after_wait' * waited}", lang))
    if case.order_number and slips("asks_again"):
        s.agent(profile, s.material.phrase("basic.greeting.ask_order_number", lang))
        s.say(s.pick(m.REPEATS).format(order=case.order_number), "inform")
        s.agent(profile, s.material.phrase("basic.apology.inconvenience", lang))
    elif not case.told:
        s.agent(profile, s.material.phrase("basic.greeting.ask_details", lang))
        s.say(case.problem, "inform")
        if rng.random() < 0.6:
            s.say(m.WANTS[lang][case.need_payoff or "information"], "inform")
    s.agent(profile, s.material.phrase("basic.hold.checking", lang))
    if rng.random() < 0.6:
        s.say(s.pick(m.ACKS), "affirm")
    if slips("wait_not_kept"):
        if rng.random() < 0.6:
            s.wait(360, 600)
            s.say(s.pick(m.STILL_THERE), "greet")
        s.agent(
            profile, s.material.phrase("basic.apology.delay", lang), after=rng.uniform(960, 1500)
        )
    else:
        s.agent(profile, s.material.phrase("basic.hold.thanks_for_waiting", lang),
                after=rng.uniform(50, 170) * profile.speed)  # fmt: skip
    options = m.SOLUTIONS[case.kind]
    if case.kind in ("complaint", "policy", "general") and case.need_payoff in m.BY_OUTCOME:
        options = m.BY_OUTCOME[case.need_payoff]
    solution = s.material.phrase(rng.choice(options), lang)
    if slips("forbidden"):
        solution = s.pick(m.RUDE)
        case.lapses += 2
    elif slips("evasive"):
        solution = s.pick(m.EVASIVE)
    s.agent(profile, solution)
    if rng.random() < 0.45:
        question, answer = rng.choice(m.FOLLOW_UPS[lang])
        s.say(question, "inform")
        slow = rng.uniform(200, 420)
        if slips("slow_reply"):
            s.agent(profile, answer, after=slow)
        elif rng.random() < 0.08:
            s.agent(profile, m.APOLOGY_PREFIX[lang] + answer, after=slow)
        else:
            s.agent(profile, answer)
    unhappy = (case.lapses > 0 and rng.random() < 0.35) or rng.random() < 0.03
    if unhappy:
        s.say(s.pick(m.NEGATIVE_ENDS), "complain")
    s.agent(profile, s.material.phrase("basic.closing.anything_else", lang))
    if not unhappy and rng.random() < 0.75:
        s.say(s.example("thank", 0.1), "thank")
    end(s, case, profile, unhappy, no_rating=slips("no_rating"))


def end(s: Script, case: Case, profile: AgentProfile, unhappy: bool, *, no_rating: bool) -> None:
    """The agent resolves (the rating question) or, slipping, hands back without it."""
    if no_rating:
        s.notice(profile, m.HANDED_BACK[s.language])
        case.handed_back = True
        s.system(f"{profile.display_name} 交还机器人 · handed back to the bot")
        case.handoff_ended_at = s.clock
        return
    if s.rng.random() < 0.3:
        s.agent(profile, s.material.phrase("basic.closing.rating", s.language))
    s.notice(profile, m.RESOLVED[s.language])
    s.system(f"{profile.display_name} 已解决，已请客户评分 · resolved, rating asked")
    case.handoff_ended_at = case.resolved_at = s.clock
    if s.rng.random() < 0.66:
        score = rating(s.rng, case.lapses + 2 * unhappy)
        case.rating = score
        s.say(m.RATING_TITLES[s.language][score], "rate_service", 1.0)
        thanks = "utter_rating_thanks" if score > 3 else "utter_rating_sorry"
        s.reply(thanks, score=score)


def rating(rng: random.Random, troubles: int = 0) -> int:
    """A 1-5 satisfaction score, mostly 5 and 4; lower after lapses or an unhappy end."""
    weights = (
        [0.02, 0.03, 0.07, 0.2, 0.68],
        [0.08, 0.12, 0.25, 0.3, 0.25],
        [0.3, 0.3, 0.25, 0.1, 0.05],
    )[min(troubles, 2)]
    return rng.choices([1, 2, 3, 4, 5], weights)[0]
