"""The desk's work on handoffs: what the console's API calls do, end to end.

Each operation checks in the database, talks to Rasa where the customer must hear of it
(the agent joined, a reply, the rating question, the bot is back) and broadcasts the
change to every console. Blocking database and search work runs in threads.

Who may see what (`may_see`): admins every handoff; agents the queued ones and those
assigned to them (an ended one stays theirs); editors none. A handoff the agent may not see
is reported as not found, so its existence does not leak; notes, replies and endings need
the conversation to be the agent's own (or an admin's) and still open.

Claiming and replying are the ticket's first response (`TicketStore.mark_responded`). The
rating question a resolve asks is recorded as the ticket's sent satisfaction notice. Notices
the broker consumer enqueues for waiting customers (acknowledgement, status answers) are
handed to `deliver`, the web app's outbox delivery (`bot.followups`); without it they wait
for the scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from sqlalchemy import Engine

from bot.core.db import Agent, AgentRole, Handoff, HandoffStatus, MessageKind
from bot.core.settings import Settings
from bot.handoff.broker import ConsumedBatch, EventSource, HandoffConsumer
from bot.handoff.hub import DeskHub
from bot.handoff.policy import HandoffPolicy, load_handoff_policy
from bot.handoff.rasa_api import (
    LISTEN_EVENT,
    RESUME_EVENT,
    RasaApiError,
    RasaClient,
    bot_event,
    slot_event,
)
from bot.handoff.store import HandoffError, HandoffNotFound, HandoffStore, NewMessage
from bot.handoff.views import handoff_view, message_view
from bot.knowledge.index import knowledge_settings
from bot.service.notices import rating_buttons
from bot.service.tickets import TicketError
from knowledge_index import KnowledgeBase, KnowledgeIndexError

logger = logging.getLogger(__name__)

RATING_SLOT = "rating_ticket"
"""The slot naming the ticket the customer's next 1-5 score belongs to (actions/handoff.py)."""

ASSIST_SUGGESTIONS = 3


def _text(language: str, zh: str, en: str) -> str:
    return en if language == "en" else zh


def may_see(handoff: Handoff, agent: Agent) -> bool:
    """Whether `agent` may read `handoff`: admins all; agents queued ones and their own."""
    if agent.role is AgentRole.admin:
        return True
    if agent.role is not AgentRole.agent:
        return False
    return handoff.status is HandoffStatus.queued or handoff.agent_id == agent.id


def _latest_packet_text(handoff: Handoff) -> str:
    lines = [
        line
        for line in (handoff.packet or {}).get("transcript", [])
        if line.get("speaker") == "customer"
    ]
    return str(lines[-1].get("text") or "") if lines else ""


@dataclass
class DeskService:
    """The desk of one web process: stores, Rasa client, consoles and the broker consumer."""

    settings: Settings
    store: HandoffStore
    rasa: RasaClient
    hub: DeskHub
    deliver: Callable[[list[int]], Awaitable[None]] | None = field(default=None)
    """Delivers outbox notices now (the web app wires `Deliverer.deliver_ids`)."""

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine) -> DeskService:
        """The desk for `settings` (its Rasa server) on `engine`, the app database's engine."""
        return cls(settings, HandoffStore(engine), RasaClient.from_settings(settings), DeskHub())

    @cached_property
    def policy(self) -> HandoffPolicy:
        """The handoff policy file (who counts as online), read on first use."""
        return load_handoff_policy()

    # ------------------------------------------------------------------ reading
    async def queue(self, agent: Agent | None = None) -> list[dict[str, Any]]:
        """The open handoffs as the queue shows them (those `agent` may see, if given)."""

        def read() -> list[dict[str, Any]]:
            handoffs = self.store.queue()  # ordered as `HandoffStore.position` counts
            queued = [h.id for h in handoffs if h.status == HandoffStatus.queued]
            if agent is not None:
                handoffs = [h for h in handoffs if may_see(h, agent)]
            last = self.store.last_messages(h.id for h in handoffs)
            return [
                handoff_view(h, queued.index(h.id) + 1 if h.id in queued else None, last.get(h.id))
                for h in handoffs
            ]

        return await asyncio.to_thread(read)

    async def view(self, handoff_id: int) -> dict[str, Any]:
        """One handoff as the queue shows it; `HandoffNotFound` if there is none."""
        return await asyncio.to_thread(self._view, handoff_id)

    def _view(self, handoff_id: int) -> dict[str, Any]:
        return self._summary(self._get(handoff_id))

    def _get(self, handoff_id: int, agent: Agent | None = None) -> Handoff:
        """The handoff; `HandoffNotFound` when there is none or `agent` may not see it."""
        handoff = self.store.get(handoff_id)
        if handoff is None or (agent is not None and not may_see(handoff, agent)):
            raise HandoffNotFound(f"No handoff {handoff_id}.")
        return handoff

    def visible(self, handoff_id: int, agent: Agent) -> bool:
        """Whether `agent` may see handoff `handoff_id` (blocking; False when there is none)."""
        handoff = self.store.get(handoff_id)
        return handoff is not None and may_see(handoff, agent)

    def _summary(self, handoff: Handoff) -> dict[str, Any]:
        last = self.store.last_messages([handoff.id]).get(handoff.id)
        return handoff_view(handoff, self.store.position(handoff), last)

    async def detail(self, handoff_id: int, agent: Agent | None = None) -> dict[str, Any]:
        """The handoff, its packet and its messages (`HandoffNotFound` if `agent` may not)."""

        def read() -> dict[str, Any]:
            handoff = self._get(handoff_id, agent)
            return {
                "handoff": self._summary(handoff),
                "packet": handoff.packet,
                "messages": [message_view(m) for m in self.store.messages(handoff_id)],
            }

        return await asyncio.to_thread(read)

    async def agents(self) -> list[dict[str, Any]]:
        """Every active agent, and whether the desk saw them recently."""

        def read() -> list[dict[str, Any]]:
            online = {a.id for a in self.store.online_agents(self.policy.online_window)}
            return [
                {
                    "username": a.username,
                    "display_name": a.display_name,
                    "role": a.role.value,
                    "online": a.id in online,
                }
                for a in self.store.agents()
            ]

        return await asyncio.to_thread(read)

    async def assist(self, handoff_id: int, agent: Agent | None = None) -> dict[str, Any]:
        """Knowledge-base answers for the customer's latest message, in their language."""

        def search() -> dict[str, Any]:
            handoff = self._get(handoff_id, agent)
            query = self.store.latest_customer_text(handoff_id) or _latest_packet_text(handoff)
            if not query:
                return {"query": "", "suggestions": []}
            try:
                hits = self.knowledge_base.search(query, 10, language=handoff.language)
            except KnowledgeIndexError:
                return {"query": query, "suggestions": []}
            chosen = [h for h in hits if h["language"] == handoff.language] or hits
            return {
                "query": query,
                "suggestions": [
                    {
                        "entry_id": hit["entry_id"],
                        "question": hit["question"],
                        "answer": hit["answer"],
                        "source": hit["link"] or f"{hit['topic']} · {hit['entry_id']}",
                        "score": round(hit["confidence"], 3),
                    }
                    for hit in chosen[:ASSIST_SUGGESTIONS]
                ],
            }

        return await asyncio.to_thread(search)

    @cached_property
    def knowledge_base(self) -> KnowledgeBase:
        """The published knowledge-base index (loaded on the first assist request)."""
        return KnowledgeBase(knowledge_settings(self.settings))

    # ------------------------------------------------------------------ ownership
    async def claim(self, handoff_id: int, agent: Agent) -> dict[str, Any]:
        """The agent takes the conversation; the customer hears who joined."""
        handoff = await asyncio.to_thread(self.store.claim, handoff_id, agent)
        await self._responded(handoff, agent)
        await self._system(handoff, f"{agent.display_name} 接入了对话 · joined")
        await self._tell_customer(
            handoff,
            _text(
                handoff.language,
                f"客服 {agent.display_name} 已接入，正在查看您的问题，请稍候。",
                f"Agent {agent.display_name} has joined and is reading your conversation.",
            ),
            agent,
        )
        return await self._announce(handoff.id)

    async def assign(
        self, handoff_id: int, username: str, by: Agent, note: str = ""
    ) -> dict[str, Any]:
        """Gives the conversation to another agent (assign or transfer); the customer is told."""
        target = await asyncio.to_thread(self.store.agent, username)
        if target is None or not target.active or target.role is AgentRole.editor:
            raise HandoffError(f"No active agent {username!r}.")
        handoff = await asyncio.to_thread(self.store.assign, handoff_id, target, by)
        line = f"{by.display_name} → {target.display_name}"
        await self._system(handoff, f"{line}: {note}" if note else line)
        await self._tell_customer(
            handoff,
            _text(
                handoff.language,
                f"您的对话已转交给客服 {target.display_name}，对方会继续为您处理。",
                f"Your conversation is now with agent {target.display_name}, who will carry on.",
            ),
            target,
        )
        return await self._announce(handoff.id)

    # ------------------------------------------------------------------ messages
    async def reply(self, handoff_id: int, agent: Agent, text: str) -> dict[str, Any]:
        """Stores the agent's reply and delivers it on the customer's channel through Rasa."""
        handoff = await self._owned(handoff_id, agent)
        message = await asyncio.to_thread(
            self.store.add_message,
            handoff.id,
            NewMessage(MessageKind.agent, text.strip(), datetime.now(UTC), agent.display_name),
        )
        assert message is not None
        metadata = self._metadata(handoff, agent, message.id)
        try:
            await self.rasa.append(handoff.conversation_id, [bot_event(message.text, metadata)])
        except RasaApiError:
            await asyncio.to_thread(self.store.delete_message, message.id)
            raise
        await self._responded(handoff, agent)
        view = message_view(message)
        await self.hub.broadcast({"type": "message", "handoff_id": handoff.id, "message": view})
        return view

    async def note(self, handoff_id: int, agent: Agent, text: str) -> dict[str, Any]:
        """An internal note on the agent's own open conversation (an admin's on any)."""
        handoff = await self._owned(handoff_id, agent)
        message = await asyncio.to_thread(
            self.store.add_message,
            handoff.id,
            NewMessage(MessageKind.note, text.strip(), datetime.now(UTC), agent.display_name),
        )
        assert message is not None
        view = message_view(message)
        await self.hub.broadcast({"type": "message", "handoff_id": handoff_id, "message": view})
        return view

    # ------------------------------------------------------------------ ending
    async def resolve(self, handoff_id: int, agent: Agent) -> dict[str, Any]:
        """Resolves: the bot resumes and asks the customer for a 1-5 satisfaction score."""
        handoff = await self._owned(handoff_id, agent)
        question = _text(
            handoff.language,
            "本次服务已完成，感谢您的耐心。请为本次服务打分（1-5 分，5 分最满意）：",
            "We're done here, thank you for your patience. How satisfied are you (1-5, 5 is best)?",
        )
        buttons = rating_buttons(handoff.language)
        await self.rasa.append(
            handoff.conversation_id,
            [
                RESUME_EVENT,
                slot_event(RATING_SLOT, handoff.ticket.number),
                bot_event(question, self._metadata(handoff, agent), buttons),
                LISTEN_EVENT,
            ],
        )
        ended = await asyncio.to_thread(self.store.end, handoff.id, HandoffStatus.resolved, agent)
        await asyncio.to_thread(self.store.record_rating_question, ended.id, question, buttons)
        await self._system(
            ended, f"{agent.display_name} 已解决，已请客户评分 · resolved, rating asked"
        )
        return await self._announce(ended.id)

    async def hand_back(self, handoff_id: int, agent: Agent) -> dict[str, Any]:
        """Hands the conversation back to the bot without resolving the ticket."""
        handoff = await self._owned(handoff_id, agent)
        back = _text(
            handoff.language,
            "人工客服已结束接待，我是智能助手，还有什么可以帮您？",
            "The agent has handed you back to me, the assistant. What else can I do for you?",
        )
        await self.rasa.append(
            handoff.conversation_id,
            [RESUME_EVENT, bot_event(back, self._metadata(handoff, agent)), LISTEN_EVENT],
        )
        ended = await asyncio.to_thread(
            self.store.end, handoff.id, HandoffStatus.handed_back, agent
        )
        await self._system(ended, f"{agent.display_name} 交还机器人 · handed back to the bot")
        return await self._announce(ended.id)

    # ------------------------------------------------------------------ live updates
    async def on_batch(self, batch: ConsumedBatch) -> None:
        """Broadcasts what the broker consumer stored."""
        for message in batch.messages:
            await self.hub.broadcast(
                {
                    "type": "message",
                    "handoff_id": message.handoff_id,
                    "message": message_view(message),
                }
            )
        for handoff_id in batch.handoffs:
            with contextlib.suppress(HandoffNotFound):
                await self._announce(handoff_id)
        await self.deliver_notices(batch.notice_ids)

    async def deliver_notices(self, notice_ids: list[int]) -> None:
        """Hands notices to `deliver`; a failure leaves them pending for the scheduler."""
        if not notice_ids or self.deliver is None:
            return
        try:
            await self.deliver(list(notice_ids))
        except Exception:  # delivery is retried by the scheduler: never stop the consumer
            logger.exception("Delivering notices %s failed; the scheduler retries", notice_ids)

    async def run_consumer(self, source: EventSource, stop: asyncio.Event) -> None:
        """Feeds the consoles from the event broker's `source` until `stop` is set."""
        await HandoffConsumer(self.store, source).run(self.on_batch, stop)

    # ------------------------------------------------------------------ helpers
    async def _owned(self, handoff_id: int, agent: Agent) -> Handoff:
        """The open handoff if it is `agent`'s (or `agent` is an admin)."""
        handoff = await asyncio.to_thread(self._get, handoff_id, agent)
        if handoff.status not in (HandoffStatus.queued, HandoffStatus.active):
            raise HandoffError("This conversation has already ended.")
        if handoff.agent_id != agent.id and agent.role is not AgentRole.admin:
            raise HandoffError("Claim the conversation first. 请先接入对话。")
        return handoff

    @staticmethod
    def _metadata(handoff: Handoff, agent: Agent, message_id: int | None = None) -> dict[str, Any]:
        return {
            "kefu": {
                "handoff_id": handoff.id,
                "agent": agent.username,
                "agent_name": agent.display_name,
                "message_id": message_id,
            }
        }

    async def _responded(self, handoff: Handoff, agent: Agent) -> None:
        """The agent's claim or reply is the ticket's first response (if none came before)."""
        try:
            await asyncio.to_thread(
                self.store.tickets.mark_responded,
                handoff.ticket.number,
                datetime.now(UTC),
                agent.username,
            )
        except TicketError:
            logger.warning("Could not mark ticket of handoff %s as answered", handoff.id)

    async def _tell_customer(self, handoff: Handoff, text: str, agent: Agent) -> None:
        """Sends a notice to the customer; a Rasa failure is logged, not fatal."""
        try:
            await self.rasa.append(
                handoff.conversation_id, [bot_event(text, self._metadata(handoff, agent))]
            )
        except RasaApiError:
            logger.warning(
                "Could not tell conversation %s: Rasa did not take the message", handoff.id
            )
            return
        await self._store_and_broadcast(
            handoff.id, NewMessage(MessageKind.agent, text, datetime.now(UTC), agent.display_name)
        )

    async def _system(self, handoff: Handoff, text: str) -> None:
        await self._store_and_broadcast(
            handoff.id, NewMessage(MessageKind.system, text, datetime.now(UTC))
        )

    async def _store_and_broadcast(self, handoff_id: int, message: NewMessage) -> None:
        stored = await asyncio.to_thread(self.store.add_message, handoff_id, message)
        if stored is not None:
            await self.hub.broadcast(
                {"type": "message", "handoff_id": handoff_id, "message": message_view(stored)}
            )

    async def _announce(self, handoff_id: int) -> dict[str, Any]:
        view = await self.view(handoff_id)
        await self.hub.broadcast({"type": "queue", "handoff": view})
        return view
