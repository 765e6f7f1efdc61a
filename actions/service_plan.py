"""What the actions share: the database engine, service plan files, stores, encoder, labels."""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache

from sqlalchemy import Engine

from bot.core.db import make_engine
from bot.core.settings import get_settings
from bot.flows.loading import load_flows
from bot.flows.schema import FlowBook
from bot.handoff.policy import HandoffPolicy, load_handoff_policy
from bot.knowledge.index import knowledge_settings
from bot.service.policy import ServicePolicy, load_policy
from bot.service.records import NEED_NEXT_STEPS
from bot.service.tickets import TicketStore
from knowledge_index import Encoder, load_encoder

SKIPPED = "-"
"""The value of a SPIN slot the customer chose not to answer ("不知道", "skip")."""

TIER_LABELS = {
    "urgent": ("紧急", "urgent"),
    "normal": ("普通", "normal"),
    "consultation": ("咨询", "consultation"),
}
GRADE_LABELS = {
    "general": ("一般投诉", "general complaint"),
    "major": ("重大投诉", "major complaint"),
}
IMPACT_LABELS = {
    "money": ("经济损失", "money"),
    "time": ("耽误时间", "time"),
    "safety": ("安全隐患", "safety"),
    "business": ("影响工作或学习", "work or study"),
}
NEED_LABELS = {
    "refund": ("退款", "refund"),
    "replacement": ("换货", "replacement"),
    "repair": ("维修", "repair"),
    "information": ("说明情况", "an explanation"),
    "call_back": ("回电联系", "a call back"),
}
NEXT_STEPS = NEED_NEXT_STEPS
"""The next step the confirmation promises for the outcome the customer wants."""
DEFAULT_NEXT_STEP = ("专人跟进处理", "A specialist will follow up")
MAJOR_NEXT_STEP = (
    "投诉专员会联合相关部门（{departments}）处理。",
    "A complaints specialist will handle it with the departments concerned ({departments}). ",
)
CHANNEL_LABELS = {
    "rest": ("在线客服", "online chat"),
    "socketio": ("网页聊天", "web chat"),
    "wechat": ("微信", "WeChat"),
    "telegram": ("Telegram", "Telegram"),
    "phone": ("电话", "phone"),
}


def label(labels: dict[str, tuple[str, str]], key: str | None, language: str) -> str:
    """The zh or en label of `key` (the key itself when unknown)."""
    if key is None:
        return ""
    pair = labels.get(key)
    if pair is None:
        return key
    return pair[1] if language == "en" else pair[0]


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def local_today() -> date:
    """Today in the service policy's time zone (what "yesterday" and day counts refer to)."""
    return utc_now().astimezone(service_policy().zone).date()


@lru_cache(maxsize=1)
def app_engine() -> Engine:
    """The app database's engine: one per action-server process, every store uses it.

    The server makes it as it starts (`actions.server`), before any action runs.
    """
    return make_engine(get_settings().database_url)


@lru_cache(maxsize=1)
def sentence_encoder() -> Encoder:
    """The sentence encoder of the knowledge base, shared with the message readers."""
    settings = knowledge_settings(get_settings())
    return load_encoder(
        settings.model, threads=settings.encoder_threads, batch_size=settings.batch_size
    )


@lru_cache(maxsize=1)
def service_policy() -> ServicePolicy:
    """The service policy file (data/service/policy.yml), loaded on first use."""
    return load_policy()


@lru_cache(maxsize=1)
def ticket_store() -> TicketStore:
    """Service records and tickets in the app database."""
    return TicketStore(app_engine())


@lru_cache(maxsize=1)
def flow_book() -> FlowBook:
    """The guided decision flows (data/service/flows.yml), loaded on first use."""
    return load_flows()


@lru_cache(maxsize=1)
def handoff_policy() -> HandoffPolicy:
    """The handoff policy file (data/service/handoff.yml), loaded on first use."""
    return load_handoff_policy()
