"""Replays conversations over Rasa's REST channel and judges each turn from the tracker.

Every conversation gets a fresh sender id; its messages are sent one after the other, and its
tracker (read through Rasa's HTTP API) is cut into turns afterwards. Conversations run a few
at a time. Service records are read from the app database when one is given.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import quote

import httpx

from bot.conversation_eval.behaviours import Observation, observe, split_turns
from bot.conversation_eval.dataset import Conversation
from bot.conversation_eval.judge import (
    RecordLike,
    RecordScore,
    TurnResult,
    Verdict,
    answered_directly,
    judge_turn,
    score_record,
    self_served,
)

RecordReader = Callable[[int], RecordLike | None]
"""Reads a stored service record by id (blocking)."""


@dataclass
class ConversationRun:
    """The judged turns of one replayed conversation."""

    conversation: Conversation
    sender: str
    turns: list[TurnResult] = field(default_factory=list)
    error: str = ""


async def _send(client: httpx.AsyncClient, rasa_url: str, sender: str, text: str) -> None:
    response = await client.post(
        f"{rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": text}
    )
    response.raise_for_status()


async def _tracker(
    client: httpx.AsyncClient, rasa_url: str, token: str, sender: str
) -> list[dict[str, Any]]:
    response = await client.get(
        f"{rasa_url}/conversations/{quote(sender, safe=':@')}/tracker",
        params={"token": token, "include_events": "ALL"},
    )
    response.raise_for_status()
    return list(response.json().get("events") or [])


def _record_id(observation: Observation) -> int | None:
    value = observation.slots.get("spin_record_id")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


async def replay_conversation(
    client: httpx.AsyncClient,
    conversation: Conversation,
    *,
    rasa_url: str,
    token: str,
    run_id: str,
    today: date,
    records: RecordReader | None = None,
) -> ConversationRun:
    """Sends every turn, reads the tracker, judges every turn."""
    sender = f"eval-{run_id}-{conversation.id}"[:128]
    run = ConversationRun(conversation, sender)
    try:
        for turn in conversation.spec.turns:
            await _send(client, rasa_url, sender, turn.say)
        events = await _tracker(client, rasa_url, token, sender)
    except httpx.HTTPError as error:
        run.error = f"{type(error).__name__}: {error}"
        return run
    observed = split_turns(events)
    for number, spec in enumerate(conversation.spec.turns):
        if number >= len(observed):
            run.error = f"the tracker has {len(observed)} customer messages, sent {number + 1}+"
            break
        observation = observe(observed[number])
        verdict, reasons = judge_turn(spec, observation)
        record: RecordScore | None = None
        if spec.record is not None:
            record_id = _record_id(observation)
            stored = (
                await asyncio.to_thread(records, record_id)
                if records is not None and record_id is not None
                else None
            )
            record = score_record(spec.record, stored, today)
        run.turns.append(
            TurnResult(
                conversation=conversation.id,
                number=number + 1,
                say=spec.say,
                category=conversation.turn_category(number),
                simple=conversation.is_simple(number),
                verdict=verdict,
                expected=spec.expect,
                observed=tuple(sorted(observation.behaviours)),
                reasons=tuple(reasons),
                intent=observation.intent,
                confidence=observation.confidence,
                texts=observation.texts,
                self_served=self_served(spec, observation, verdict),
                answered=answered_directly(spec, observation, verdict),
                record=record,
            )
        )
    return run


async def replay(
    conversations: Sequence[Conversation],
    *,
    rasa_url: str,
    token: str,
    today: date,
    records: RecordReader | None = None,
    concurrency: int = 4,
    timeout_s: float = 60.0,
) -> list[ConversationRun]:
    """Replays `conversations` (at most `concurrency` at once), in the given order."""
    run_id = uuid.uuid4().hex[:8]
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=timeout_s) as client:

        async def one(conversation: Conversation) -> ConversationRun:
            async with gate:
                return await replay_conversation(
                    client,
                    conversation,
                    rasa_url=rasa_url.rstrip("/"),
                    token=token,
                    run_id=run_id,
                    today=today,
                    records=records,
                )

        return list(await asyncio.gather(*(one(c) for c in conversations)))


def missing_turns(run: ConversationRun) -> list[TurnResult]:
    """Turns that never ran because the conversation failed (counted as missing)."""
    done = len(run.turns)
    return [
        TurnResult(
            conversation=run.conversation.id,
            number=number + 1,
            say=spec.say,
            category=run.conversation.turn_category(number),
            simple=run.conversation.is_simple(number),
            verdict=Verdict.missing,
            expected=spec.expect,
            observed=(),
            reasons=(run.error or "not replayed",),
            intent="",
            confidence=0.0,
            texts=(),
        )
        for number, spec in enumerate(run.conversation.spec.turns)
        if number >= done
    ]
