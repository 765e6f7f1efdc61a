"""What a generated day is made of: the project's own questions, replies and agent phrases.

Everything comes from the repository, so a generated transcript reads like a real one:
customer questions from `data/knowledge` (questions, other phrasings), `data/kb_test_queries.jsonl`
and `data/nlu` (colloquial, with typos), SPIN answers from `data/service/understanding.yml`,
the bot's replies from `domain.yml`, agents' phrases from `data/service/canned_replies.yml`.
Loaded once per process (`load_material`).
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from bot.core.settings import PROJECT_ROOT
from bot.handoff.canned import load_canned_replies
from bot.service.records import NEED_NEXT_STEPS
from knowledge_index.sources import load_entries

LANGUAGES = ("zh", "en")
_CJK = re.compile(r"[\u3400-\u9fff]")
_ENTITY = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
TOPIC_INTENTS = {
    "returns": "return_refund",
    "shipping": "logistics_issue",
    "orders": "order_status",
    "invoices": "invoice",
    "payments": "payment_issue",
    "account_security": "account_membership",
    "membership": "account_membership",
    "product_care": "product_question",
    "warranty_repair": "product_question",
    "promotions": "product_question",
}
"""The NLU intent a knowledge topic's questions are usually read as."""


def language_of(text: str) -> str:
    """`zh` when the text has Chinese characters, else `en`."""
    return "zh" if _CJK.search(text) else "en"


@dataclass(frozen=True)
class KbItem:
    """A customer question the knowledge base answers with one entry."""

    text: str
    entry_id: str
    question: str
    answer: str
    link: str | None
    topic: str

    @property
    def source(self) -> str:
        """The source line the bot shows under an answer."""
        return f"{self.question} ({self.link})" if self.link else self.question


@dataclass(frozen=True)
class Material:
    """Texts by language: knowledge questions, NLU examples, bot replies, agent phrases."""

    kb: dict[str, tuple[KbItem, ...]]
    entries: dict[str, tuple[KbItem, ...]]
    off_topic: dict[str, tuple[str, ...]]
    examples: dict[tuple[str, str], tuple[str, ...]]
    responses: dict[tuple[str, str], str]
    canned: dict[tuple[str, str], str]
    clauses: dict[tuple[str, str], tuple[str, ...]]

    def example(self, rng: random.Random, intent: str, language: str) -> str:
        """A random NLU example of `intent` in `language` (entity markup removed)."""
        return rng.choice(self.examples[(intent, language)])

    def reply(self, name: str, language: str, **values: object) -> str:
        """The domain response `name` in `language` with its `{placeholders}` filled."""
        text = self.responses[(name, language)]
        return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), text)

    def phrase(self, reply_id: str, language: str) -> str:
        """A canned agent reply (`basic.greeting.hello`) in `language`."""
        return self.canned[(reply_id, language)]

    def clause(self, rng: random.Random, role: str, language: str, about: str = "") -> str:
        """A SPIN answer of `role` (situation, problem, impact, impact:money...) in `language`.

        With `about` (what the customer said before), one that names the same product, or
        none: no earbuds in the answer after a complaint about a robot vacuum.
        """
        options = self.clauses[(role, language)]
        named = _product_words(about)
        fitting = [text for text in options if _product_words(text) in (named, frozenset())]
        return rng.choice(fitting or options)


@lru_cache(maxsize=2)
def load_material(root: Path = PROJECT_ROOT) -> Material:
    """Reads the project's data files (cached: the files do not change while a day is made)."""
    entries = load_entries(root / "data" / "knowledge")
    by_id = {entry.id: entry for entry in entries}
    kb: dict[str, list[KbItem]] = defaultdict(list)
    canonical: dict[str, list[KbItem]] = defaultdict(list)
    for entry in entries:
        base = KbItem(entry.question, entry.id, entry.question, entry.answer.strip(), entry.link,
                      entry.topic)  # fmt: skip
        canonical[entry.language].append(base)
        for text in (entry.question, *entry.alt_questions):
            kb[entry.language].append(_item(base, text))
    off_topic: dict[str, list[str]] = defaultdict(list)
    with (root / "data" / "kb_test_queries.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line) if line.strip() else None
            if not row:
                continue
            expected = by_id.get(row.get("expected_id") or "")
            if expected is None:
                off_topic[row["language"]].append(row["query"])
            else:
                base = canonical_item(canonical[expected.language], expected.id)
                kb[expected.language].append(_item(base, row["query"]))
    examples = _nlu_examples(root / "data" / "nlu")
    for language in LANGUAGES:
        off_topic[language] += examples.get(("out_of_scope", language), ())
    return Material(
        kb={k: tuple(v) for k, v in kb.items()},
        entries={k: tuple(v) for k, v in canonical.items()},
        off_topic={k: tuple(v) for k, v in off_topic.items()},
        examples=examples,
        responses=_responses(root / "domain.yml"),
        canned=_canned(root / "data" / "service" / "canned_replies.yml"),
        clauses=_clauses(root / "data" / "service" / "understanding.yml"),
    )


def canonical_item(items: list[KbItem], entry_id: str) -> KbItem:
    """The entry's own question among `items`."""
    return next(item for item in items if item.entry_id == entry_id)


def _item(base: KbItem, text: str) -> KbItem:
    return KbItem(text, base.entry_id, base.question, base.answer, base.link, base.topic)


def _nlu_examples(folder: Path) -> dict[tuple[str, str], tuple[str, ...]]:
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(folder.glob("*.yml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for block in document.get("nlu") or []:
            if not isinstance(block, dict) or "intent" not in block:
                continue
            for line in str(block.get("examples") or "").splitlines():
                text = _ENTITY.sub(r"\1", line.strip().removeprefix("- ")).strip()
                if text:
                    found[(block["intent"], language_of(text))].append(text)
    return {key: tuple(texts) for key, texts in found.items()}


def _responses(path: Path) -> dict[tuple[str, str], str]:
    document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    found: dict[tuple[str, str], str] = {}
    for name, variations in (document.get("responses") or {}).items():
        for variation in variations:
            conditions = variation.get("condition") or []
            languages = [c["value"] for c in conditions if c.get("name") == "language"]
            for language in languages or LANGUAGES:
                found.setdefault((name, language), variation["text"])
    return found


def _canned(path: Path) -> dict[tuple[str, str], str]:
    library = load_canned_replies(path)
    return {
        (reply_id, language): reply.text(language)
        for reply_id, reply in library.replies()
        for language in LANGUAGES
    }


def _clauses(path: Path) -> dict[tuple[str, str], tuple[str, ...]]:
    document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for role in ("situation", "problem", "impact", "outcome"):
        for text in document["role"][role]:
            found[(role, language_of(str(text)))].append(str(text))
    for kind in ("money", "time", "safety", "business", "none"):
        for text in document["impact"][kind]:
            found[(f"impact:{kind}", language_of(str(text)))].append(str(text))
    return {key: tuple(texts) for key, texts in found.items()}


# ---------------------------------------------------------------------- how people type
_ZH_TYPOS = (
    ("订单", "定单"), ("哪里", "那里"), ("在吗", "再吗"), ("吗", "嘛"), ("已经", "以经"),
    ("怎么", "咋"), ("发票", "发漂"), ("收到", "收倒"), ("退款", "退宽"), ("什么", "啥"),
)  # fmt: skip
_ZH_TAILS = ("", "", "啊", "呢", "？", "??", "。。。", "呀", " 急", "～")
_EN_SWAPS = (
    ("you", "u"), ("please", "pls"), ("thanks", "thx"), ("i'm", "im"), ("don't", "dont"),
    ("can't", "cant"), ("the ", ""), ("are", "r"), ("received", "recieved"),
)  # fmt: skip


def colloquial(rng: random.Random, text: str, language: str, rate: float = 0.25) -> str:
    """`text` as customers type it now and then: a typo, a particle, no capitals."""
    if rng.random() >= rate:
        return text
    if language == "zh":
        pairs = [pair for pair in _ZH_TYPOS if pair[0] in text]
        if pairs and rng.random() < 0.5:
            old, new = rng.choice(pairs)
            text = text.replace(old, new, 1)
        return text.rstrip("？?。") + rng.choice(_ZH_TAILS)
    text = text.lower() if rng.random() < 0.7 else text
    pairs = [pair for pair in _EN_SWAPS if pair[0] in text.lower()]
    if pairs:
        old, new = rng.choice(pairs)
        text = re.sub(re.escape(old), new, text, count=1, flags=re.IGNORECASE)
    return text.rstrip(".?") + rng.choice(("", "", "?", "??", " pls", "..."))


# ---------------------------------------------------------------------- fixed small texts
PRODUCTS = (
    (
        "AuraSound X2 主动降噪耳机",
        "AuraSound X2 ANC earbuds",
        ("耳机", "耳塞", "earbud", "headphone"),
    ),
    ("Nova 14 轻薄笔记本电脑", "Nova 14 thin laptop", ("笔记本", "电脑", "laptop", "notebook")),
    ("Pulse Watch S3 智能手表", "Pulse Watch S3 smartwatch", ("手表", "表带", "watch")),
    ("CleanBot R7 扫地机器人", "CleanBot R7 robot vacuum", ("扫地机", "vacuum")),
    ("Volt 65W 氮化镓充电器", "Volt 65W GaN charger", ("充电器", "充电头", "charger")),
    ("Tab 11 平板电脑", "Tab 11 tablet", ("平板", "tablet")),
    ("PowerCube 20000mAh 充电宝", "PowerCube 20000mAh power bank", ("充电宝", "power bank")),
    ("Zen 12 智能手机", "Zen 12 phone", ("手机", "phone")),
)
"""The shop's products (zh, en, words that name them), like the demo orders'."""
OUTCOME_WORDS = (
    ("refund", ("退款", "退钱", "退货", "refund", "money back")),
    ("replacement", ("换货", "换新", "换一", "replace", "exchange")),
    ("repair", ("维修", "修", "repair", "fix")),
)
"""Words that tell which outcome a customer wants (else `information`)."""
WANTS = {
    "zh": {"refund": "我想退款", "replacement": "能换个新的吗", "repair": "想修一下",
           "information": "想知道到底怎么回事"},
    "en": {"refund": "I'd like a refund", "replacement": "can I get a new one?",
           "repair": "I want it fixed", "information": "I just want to know what happened"},
}  # fmt: skip
"""How a customer says the outcome they want."""
IMPACT_KINDS = {
    "payment": ("money",), "refund": ("money", "time"), "logistics": ("time", "business"),
    "complaint": ("time", "money", "none"), "safety": ("safety",), "policy": ("money", "none"),
    "general": ("time", "none"),
}  # fmt: skip
"""The kinds of impact a case of each kind has (understanding.yml's impact blocks)."""
_QUESTION = re.compile(
    r"[吗？?]|怎么|为什么|如何|能不能|可不可以|\b(how|why|what|when|can i|can you|do you|is it)\b",
    re.IGNORECASE,
)


def is_question(text: str) -> bool:
    """Whether `text` asks something rather than reports a problem."""
    return bool(_QUESTION.search(text))


def _product_words(text: str) -> frozenset[str]:
    """The products `text` names (by their zh name)."""
    lowered = text.lower()
    return frozenset(zh for zh, _, words in PRODUCTS if any(w in lowered for w in words))


def product_of(rng: random.Random, text: str) -> tuple[str, str]:
    """The product `text` names (zh, en), or a random one."""
    lowered = text.lower()
    named = [(zh, en) for zh, en, words in PRODUCTS if any(w in lowered for w in words)]
    return named[0] if named else rng.choice([(zh, en) for zh, en, _ in PRODUCTS])


def outcome_of(rng: random.Random, text: str) -> str:
    """The outcome `text` asks for (refund, replacement, repair), else a likely one."""
    lowered = text.lower()
    for outcome, words in OUTCOME_WORDS:
        if any(word in lowered for word in words):
            return outcome
    return rng.choice(("refund", "replacement", "repair", "information", "information"))


CARRIERS = (("顺丰速运", "SF Express", "SF"), ("京东物流", "JD Logistics", "JDV"),
            ("中通快递", "ZTO Express", "ZT"))  # fmt: skip
ACKS = {
    "zh": ("好的", "嗯嗯", "好", "行", "可以", "好的，谢谢", "明白了", "嗯", "ok", "收到"),
    "en": ("ok", "sure", "alright", "got it", "ok thanks", "fine", "okay"),
}
FOLLOW_UPS = {
    "zh": (
        ("大概要多久？", "一般 1-3 个工作日，有进展我会第一时间通知您。"),
        ("运费谁出？", "运费由我们承担，您不用担心。"),
        ("那我需要做什么吗", "这个不需要您再操作，我这边处理就可以。"),
        ("今天能处理好吗", "今天内会给您结果，处理好后会通过短信和本对话通知您。"),
        ("会短信通知我吗", "会的，处理结果会通过短信和本对话通知您。"),
        ("需要我拍照吗", "麻烦您拍一张商品和外包装的照片发给我，这样处理会更快。"),
    ),
    "en": (
        (
            "how long will it take?",
            "Usually 1-3 working days, and I'll tell you as soon as there's news.",
        ),
        ("who pays the shipping?", "We cover the shipping, don't worry."),
        (
            "do I need to do anything?",
            "You don't need to do anything else; I'll handle it from here.",
        ),
        ("can it be done today?", "You'll have an answer today, by text and here in the chat."),
        ("do you need photos?", "Yes please, a photo of the item and the box makes it quicker."),
    ),
}
"""A customer's follow-up question and the agent's answer."""
STILL_THERE = {"zh": ("还在吗？", "人呢？？", "有人吗", "还要等多久"),
               "en": ("hello?", "anyone there?", "still there?")}  # fmt: skip
REPEATS = {
    "zh": ("我刚说过了，订单号是 {order}", "我已经说了啊 {order}", "说过了 {order}"),
    "en": ("I already said, it's {order}", "I told you already: {order}"),
}
NEGATIVE_ENDS = {
    "zh": ("太差了，等了这么久", "什么破服务，失望", "算了，垃圾", "气死我了，还是没解决"),
    "en": ("this is useless", "terrible service, really", "worst support ever"),
}
RUDE = {
    "zh": ("爱买不买，不想要就退吧", "这不是我的问题，你去找快递", "你听不懂吗？我说了要等"),
    "en": ("That's not my problem, ask the courier.", "Deal with it, that's how it works."),
}
"""What an agent must never say (the QA rules' forbidden words: a red card)."""
EVASIVE = {
    "zh": ("我也不知道，你自己去问快递吧", "规定就是这样，我也没办法", "这个不归我们管，找别人去"),
    "en": ("I don't know, look it up yourself.", "Nothing I can do, that's the policy."),
}
"""Evasive or impatient answers (a major QA finding, no red card)."""
TRANSFER_OUT = {
    "zh": "这个问题需要售后专员处理，我帮您转接一下，请不要离开对话。",
    "en": "This needs our after-sales specialist, I'll transfer you now; please stay in the chat.",
}
APOLOGY_PREFIX = {"zh": "抱歉让您久等了，", "en": "Sorry to keep you waiting. "}
JOINED = {
    "zh": "客服 {name} 已接入，正在查看您的问题，请稍候。",
    "en": "Agent {name} has joined and is reading your conversation.",
}
"""The desk's own notice when an agent claims a conversation (bot.handoff.service)."""
TRANSFERRED = {
    "zh": "您的对话已转交给客服 {name}，对方会继续为您处理。",
    "en": "Your conversation is now with agent {name}, who will carry on.",
}
RESOLVED = {
    "zh": "本次服务已完成，感谢您的耐心。请为本次服务打分（1-5 分，5 分最满意）：",
    "en": "We're done here, thank you for your patience. How satisfied are you (1-5, 5 is best)?",
}
HANDED_BACK = {
    "zh": "人工客服已结束接待，我是智能助手，还有什么可以帮您？",
    "en": "The agent has handed you back to me, the assistant. What else can I do for you?",
}
RATING_TITLES = {
    "zh": {5: "5 非常满意", 4: "4 满意", 3: "3 一般", 2: "2 不满意", 1: "1 非常不满意"},
    "en": {5: "5 very satisfied", 4: "4 satisfied", 3: "3 okay", 2: "2 unsatisfied",
           1: "1 very unsatisfied"},
}  # fmt: skip
BUTTONS = {
    "solved": {"zh": "解决了", "en": "Yes, solved"},
    "not_solved": {"zh": "没解决", "en": "No"},
    "confirm": {"zh": "确认无误", "en": "Yes, correct"},
    "human": {"zh": "转人工", "en": "Talk to a human"},
    "no_thanks": {"zh": "不用了", "en": "No thanks"},
}
NEED_CHOICES = {
    "refund": ("退款", "Refund"), "replacement": ("换货", "Replacement"),
    "repair": ("维修", "Repair"), "information": ("说明情况", "An explanation"),
}  # fmt: skip
NEXT_STEPS = NEED_NEXT_STEPS
TIER_LABELS = {"urgent": ("紧急", "urgent"), "normal": ("普通", "normal"),
               "consultation": ("咨询", "consultation")}  # fmt: skip
GRADE_LABELS = {
    "general": ("一般投诉", "general complaint"),
    "major": ("重大投诉", "major complaint"),
}
SOLUTIONS = {
    "logistics": ("advanced.logistics.delay_apology", "advanced.logistics.urge_courier",
                  "advanced.logistics.no_tracking_update", "advanced.logistics.lost_parcel"),
    "refund": ("advanced.refund.refund_timeline", "advanced.refund.refund_not_received",
               "advanced.refund.how_to_return", "advanced.refund.exchange"),
    "payment": ("advanced.payment.payment_failed", "advanced.payment.double_charge",
                "advanced.payment.charged_no_order", "advanced.payment.status_pending"),
    "complaint": ("special.complaint_escalation.accept_complaint", "advanced.refund.exchange",
                  "advanced.refund.partial_refund", "advanced.soothing.concrete_plan"),
    "safety": ("special.safety.stop_using", "special.safety.keep_evidence",
               "special.safety.urgent_team"),
    "policy": ("advanced.policy.seven_day_return", "advanced.policy.quality_issue",
               "advanced.policy.warranty", "advanced.policy.exception_request"),
    "general": ("basic.hold.need_more_time", "basic.closing.follow_up",
                "advanced.soothing.take_ownership"),
}  # fmt: skip
"""Canned replies an agent solves each kind of case with."""
BY_OUTCOME = {
    "refund": ("advanced.refund.refund_timeline", "advanced.refund.partial_refund"),
    "replacement": ("advanced.refund.exchange",),
    "repair": ("advanced.policy.warranty", "advanced.policy.quality_issue"),
}
"""What an agent offers for a complaint or a policy question, by the outcome wanted."""
RESULTS = {
    "logistics": (
        "已联系快递核实并加急派送，包裹已送达。",
        "Checked with the courier and expedited; the parcel was delivered.",
    ),
    "refund": (
        "已为您办理退款，款项 1-3 个工作日原路退回。",
        "Refund issued; it reaches your original payment method in 1-3 working days.",
    ),
    "payment": (
        "已核实扣款记录，多扣款项已原路退回。",
        "Checked the charge; the extra amount was returned to your payment method.",
    ),
    "complaint": (
        "已为您更换新品并补偿一张优惠券。",
        "Replaced the item and added a voucher as an apology.",
    ),
    "safety": (
        "已安排上门取回检测并为您换新，检测报告已发送。",
        "Collected the device for inspection and replaced it; the report was sent.",
    ),
    "policy": ("已按售后政策为您办理退货。", "Processed the return under the after-sales policy."),
    "general": ("已查明情况并答复客户。", "Looked into it and answered the customer."),
}
"""What an agent writes as a ticket's result, by kind of case."""
