"""What the app-runtime unit tests share: a database, trackers, records, the review data."""

from __future__ import annotations

import hashlib
import shutil
import zlib
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from aiosmtpd.controller import Controller
from rasa_sdk import Tracker
from sqlalchemy import Engine

from bot.bench.common import free_port
from bot.core.db import (
    ComplaintGrade,
    KbFeedback,
    KbOutcome,
    MessageKind,
    TicketStatus,
    UrgencyTier,
    make_engine,
    upgrade,
)
from bot.core.settings import PROJECT_ROOT, Settings
from bot.handoff.store import HandoffStore, NewMessage
from bot.knowledge.query_log import KbLog
from bot.service.orders import seed_demo_orders
from bot.service.records import RecordDraft
from tests.app.followups.support import Inbox


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite app database with the demo orders."""
    url = f"sqlite:///{tmp_path}/kefu.db"
    upgrade(url)
    engine = make_engine(url)
    seed_demo_orders(engine)
    yield engine
    engine.dispose()


def user_event(text: str, intent: str, confidence: float = 0.9) -> dict[str, Any]:
    """A `user` event as Rasa sends it to the action server."""
    return {
        "event": "user",
        "text": text,
        "parse_data": {"intent": {"name": intent, "confidence": confidence}, "entities": []},
    }


def make_tracker(
    text: str,
    intent: str,
    confidence: float = 0.9,
    slots: dict[str, Any] | None = None,
    entities: list[dict[str, Any]] | None = None,
    events: list[dict[str, Any]] | None = None,
    metadata: dict[str, Any] | None = None,
    ranking: list[dict[str, Any]] | None = None,
) -> Tracker:
    """A tracker whose latest message is `text` classified as `intent`."""
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": confidence},
        "intent_ranking": ranking or [{"name": intent, "confidence": confidence}],
        "entities": entities or [],
        "metadata": metadata or {},
    }
    history = [*(events or []), user_event(text, intent, confidence)]
    return Tracker(
        "test-user",
        {"language": "zh", **(slots or {})},
        latest,
        history,
        False,
        None,
        None,
        "action_listen",
    )


# ---------------------------------------------------------------- service records and tickets
NOW = datetime(2026, 11, 22, 9, 30, tzinfo=timezone.utc)


def draft(customer: str = "sender-1", **changes: Any) -> RecordDraft:
    """A complete service record (headphones with a dead left ear), with `changes` applied."""
    values: dict[str, Any] = {
        "customer_id": customer,
        "channel": "rest",
        "language": "zh",
        "category": "complaint",
        "order_number": "KF202611200001",
        "product": "AuraSound X2 主动降噪耳机",
        "situation": "上周收到耳机",
        "problem": "左耳没有声音",
        "problem_since": date(2026, 11, 20),
        "implication": "无法通勤时使用",
        "impacts": ["工作受影响"],
        "need_payoff": "replacement",
        "need_points": ["更换一副新耳机"],
        "preferences": {"contact_channel": "phone", "contact_time": "工作日晚上", "language": "zh"},
        "urgency": UrgencyTier.normal,
        "complaint_grade": ComplaintGrade.general,
        "created_at": NOW,
        "confirmation_due_at": NOW + timedelta(minutes=30),
        "due_at": NOW + timedelta(hours=24),
    }
    values.update(changes)
    return RecordDraft(**values)


# ---------------------------------------------------------------- the review queue's data
PROJECT_DATA = PROJECT_ROOT / "data"
KEPT_TOPICS = ("product_care", "returns", "shipping", "warranty_repair")
ENGRAVE_ANSWER = (
    "可以刻字。下单时在订单备注里写上要刻的内容（最多 10 个字），\n刻字商品不支持七天无理由退货。"
)


class KeywordEncoder:
    """A deterministic fake encoder: texts sharing a keyword are identical vectors."""

    name = "keywords"
    dimension = 32
    KEYWORDS = ("刻字", "火星", "发票", "保修", "退款", "engrav")

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            hits = [i for i, word in enumerate(self.KEYWORDS) if word in text.lower()]
            if hits:
                vectors[row, hits[0]] = 1.0
            else:  # unrelated texts: their own direction (by a stable hash)
                vectors[row, len(self.KEYWORDS) + zlib.crc32(text.encode()) % 26] = 1.0
        return vectors


def tree_digest(folder: Path) -> str:
    """A digest of every file (name and bytes) under `folder`."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def project_data_untouched() -> Iterator[None]:
    """No review test may write into the project's own data/."""
    before = tree_digest(PROJECT_DATA)
    yield
    assert tree_digest(PROJECT_DATA) == before, "a test wrote into /work/main/data"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings over a temporary copy of data/ and its own var/ (database inside)."""
    shutil.copytree(PROJECT_DATA, tmp_path / "data")
    for path in (tmp_path / "data" / "knowledge").glob("*.yml"):
        if path.stem not in KEPT_TOPICS:  # fewer files: loading the knowledge base is slow
            path.unlink()
    return Settings(var_dir=tmp_path / "var", data_dir=tmp_path / "data")


def open_handoff(
    engine: Engine,
    conversation: str,
    opening: Sequence[tuple[MessageKind, str]] = (),
    packet: dict[str, Any] | None = None,
    language: str = "zh",
) -> int:
    """Opens a handoff with its opening messages (as the handoff action does); returns its id."""
    store = HandoffStore(engine)
    now = datetime.now(UTC)
    record = store.tickets.save_record(
        RecordDraft(customer_id=conversation, channel="socketio", language=language,
                    category="consultation", created_at=now, due_at=now,
                    confirmation_due_at=now)
    )  # fmt: skip
    ticket = store.tickets.confirm(record, at=now, actor="bot", status=TicketStatus.pending_agent)
    start = now - timedelta(minutes=5)
    handoff, _ = store.open(
        conversation_id=conversation, channel="socketio", language=language,
        reason="explicit_request", ticket_id=ticket.id, packet=packet or {},
        due_at=ticket.due_at,
        opening=[NewMessage(kind, text, start + timedelta(seconds=i))
                 for i, (kind, text) in enumerate(opening)],
    )  # fmt: skip
    return handoff.id


def say(engine: Engine, handoff_id: int, kind: MessageKind, text: str) -> None:
    """Adds a message to a handoff, now (agents' messages are signed 李娜)."""
    HandoffStore(engine).add_message(
        handoff_id,
        NewMessage(kind, text, datetime.now(UTC), "李娜" if kind != "customer" else None),
    )


def seed(engine: Engine) -> dict[str, int]:
    """Knowledge-base misses and a handoff whose agent answered the customer's question."""
    log = KbLog(engine)
    common = {"channel": "rest", "language": "zh", "confidence": 0.1, "index_version": "v1"}
    ids = {
        "no_answer": log.record(sender_id="c1", query="商品可以刻字吗", outcome=KbOutcome.no_answer,
                                entry_id=None, top_hits=[], **common),
        "suggested": log.record(sender_id="c2", query="耳机能刻字吗？", outcome=KbOutcome.suggested,
                                entry_id=None, top_hits=[{"entry_id": "warranty-standard-period",
                                                          "confidence": 0.3}], **common),
        "answered": log.record(sender_id="c3", query="七天无理由退货的条件", entry_id="x",
                               outcome=KbOutcome.answered, top_hits=[], **common),
        "rejected": log.record(sender_id="c4", query="退款多久能到账啊",
                               entry_id="returns-refund-time", outcome=KbOutcome.answered,
                               top_hits=[{"entry_id": "returns-refund-time"}], **common),
        "trivial": log.record(sender_id="c5", query="好的", outcome=KbOutcome.no_answer,
                              entry_id=None, top_hits=[], **common),
        "selected": log.record(sender_id="c6", query="[returns-refund-time] 火星上能收到快递吗",
                               entry_id=None, outcome=KbOutcome.no_answer, top_hits=[], **common),
    }  # fmt: skip
    log.record_feedback("c4", KbFeedback.not_solved)
    handoff = open_handoff(
        engine,
        "c7",
        [
            (MessageKind.customer, "我想给耳机刻字可以吗"),
            (MessageKind.bot, "抱歉，我没找到答案"),
            (MessageKind.customer, "转人工"),
        ],
    )
    say(engine, handoff, MessageKind.agent, "客服 李娜 已接入，正在查看您的问题，请稍候。")
    say(engine, handoff, MessageKind.agent, "好的，请稍等")
    say(engine, handoff, MessageKind.note, "客户想刻字，查一下刻字规则")
    say(engine, handoff, MessageKind.agent, ENGRAVE_ANSWER)
    say(engine, handoff, MessageKind.customer, "谢谢")
    ids["handoff"] = handoff
    # A handoff without a customer question in its messages: the packet's question is used.
    packet = {"kb_answers": [{"query": "可以开增值税专用发票吗", "outcome": "no_answer"}]}
    other = open_handoff(engine, "c8", [(MessageKind.customer, "人工客服")], packet)
    say(engine, other, MessageKind.agent, "可以开增值税专用发票，请在订单详情页申请并填写税号。")
    ids["packet_handoff"] = other
    return ids


# ---------------------------------------------------------------- data files (YAML builders)
def write_yaml(folder: Path, content: str | object, name: str = "data.yml") -> Path:
    """Writes a data file into `folder`: text as given, anything else dumped as YAML (UTF-8)."""
    path = folder / name
    text = content if isinstance(content, str) else yaml.safe_dump(content, allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    return path


def edited_text(base: str, old: str, new: str) -> str:
    """`base` with its first `old` replaced by `new`; `old` must be in it."""
    assert old in base, old
    return base.replace(old, new, 1)


def load_error(load: Callable[[Path], object], error: type[Exception], path: Path) -> str:
    """The message `load` refuses `path` with (it must refuse it with `error`)."""
    with pytest.raises(error) as caught:
        load(path)
    return str(caught.value)


# ---------------------------------------------------------------- production settings
PRODUCTION: dict[str, Any] = {
    "env": "production",
    "rasa_token": "r" * 32,
    "customer_session_secret": "c" * 32,
    "action_token": "a" * 32,
    "rest_token": "t" * 32,
}
"""Keyword arguments of `Settings` that production accepts (every secret set)."""


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    """A real SMTP server (aiosmtpd) on a free loopback port; `inbox.port` is its port."""
    box = Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port  # type: ignore[attr-defined]
    yield box
    controller.stop()
