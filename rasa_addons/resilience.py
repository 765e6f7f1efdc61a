"""Failures customers barely notice: a short apology instead of silence, and nothing lost.

`install()` (called by `rasa_addons.launch` before Rasa starts; idempotent) changes what
Rasa 3.6 does when a part fails:

- **An action fails** (action server down, 5xx, no answer within
  `KEFU_ACTION_TIMEOUT_SECONDS`, a bug). Rasa logs a traceback, drops the action's events and
  predicts on: usually the customer hears nothing. Now the customer gets `utter_system_busy`
  in their language (a short apology: leave a message, or ask for a person) and the turn ends
  with `action_listen`; the failure is logged once. A custom `action_session_start` that fails
  falls back to Rasa's default session start, and the turn goes on.
- **The tracker store fails.** Rasa's `FailSafeTrackerStore` then answers with an empty
  tracker and keeps the turn in memory only: the bot greets a customer in the middle of a
  conversation and the turn is never stored. Now the failure is raised
  (`TrackerStoreUnavailable`); the HTTP API answers 500 instead of acting on an empty tracker.
- **A message meets a failing tracker store or lock store** (Redis): it is appended to the
  spool (`rasa_addons.spool`) and the customer gets the apology on their channel; when only
  the final save of an answered turn failed, that turn's events are spooled instead (the
  answer is not given twice). Any other error in a turn: the apology, logged once.
- **Replay**: each Rasa server process replays the spool once the stores answer, in order per
  sender, through the normal message path; answers go out through the channel when it can
  send outside a request (socket.io, WeChat, Telegram), else only into the conversation. A
  sender's new message first replays what waits for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Coroutine
from typing import Any, Literal

from rasa.core.actions.action import (
    Action,
    ActionExecutionRejection,
    ActionSessionStart,
    action_for_name_or_text,
    create_bot_utterance,
)
from rasa.core.agent import Agent
from rasa.core.channels.channel import (
    CollectingOutputChannel,
    InputChannel,
    OutputChannel,
    UserMessage,
)
from rasa.core.lock_store import LockError
from rasa.core.nlg.generator import NaturalLanguageGenerator
from rasa.core.policies.policy import PolicyPrediction
from rasa.core.processor import MessageProcessor
from rasa.core.tracker_store import FailSafeTrackerStore
from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, Event, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import Sanic

from rasa_addons.nlu.language import detect_language
from rasa_addons.spool import Spool, SpoolEntry, spool_path

logger = logging.getLogger(__name__)

__all__ = [
    "SYSTEM_BUSY",
    "Replayer",
    "TrackerStoreUnavailable",
    "install",
    "replayer",
]

SYSTEM_BUSY = "utter_system_busy"
"""The apology's response in domain.yml (Chinese, and English by the `language` slot)."""
FALLBACK_TEXTS = {
    "zh": "抱歉，系统正忙，刚才这条消息没能及时处理。您写的内容都已记下：可以稍后再发一次，"
    "也可以直接留言，或发“转人工”请人工客服联系您。",
    "en": "Sorry, our system is busy and couldn't handle your message just now. What you wrote "
    "is kept: try again in a moment, leave a message, or type “talk to a human” and a person "
    "will get back to you.",
}
"""The apology when the domain has none (an old model)."""
ACTION_TIMEOUT_VARIABLE = "KEFU_ACTION_TIMEOUT_SECONDS"
DEFAULT_ACTION_TIMEOUT_SECONDS = 20.0
"""Rasa waits 5 minutes for the action server; a customer (and the conversation's lock) not."""
REPLAY_INTERVAL_SECONDS = 2.0
"""How often the spool is retried while it holds something."""
IDLE_INTERVAL_SECONDS = 10.0
"""How often an empty spool is looked at (another process of the machine may fill it)."""
MAX_REPLAY_ATTEMPTS = 3
"""A spooled entry that fails this often for another reason than a store is set aside."""
STOP_GRACE_SECONDS = 10.0
"""How long a stopping server lets the replay of one entry finish."""
SPOOLED_AT_KEY = "kefu_spooled_at"
"""Metadata of a replayed message: when the customer wrote it (epoch seconds)."""

_STORED_EVENTS = "_kefu_stored_events"
"""Attribute on a tracker: how many of its events the tracker store holds."""
_DUPLICATE_LOG_PREFIX = "Failed to run custom action"
_installed = False


class TrackerStoreUnavailable(RuntimeError):
    """The tracker store failed (`operation`: retrieve or save); `tracker` is the unsaved one."""

    def __init__(
        self, operation: str, error: BaseException, tracker: DialogueStateTracker | None = None
    ) -> None:
        super().__init__(f"tracker store {operation} failed: {type(error).__name__}: {error}")
        self.operation = operation
        self.tracker = tracker


def install() -> None:
    """Applies the changes above (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True
    _guard_actions()
    _strict_tracker_store()
    _guard_messages()
    _replay_in_server()
    logging.getLogger("rasa.core.actions.action").addFilter(_drop_duplicate_failure_log)


def action_timeout(environ: dict[str, str] | None = None) -> float:
    """`KEFU_ACTION_TIMEOUT_SECONDS` (default 20; a non-positive value means Rasa's 5 minutes)."""
    raw = (os.environ if environ is None else environ).get(ACTION_TIMEOUT_VARIABLE, "").strip()
    try:
        seconds = float(raw) if raw else DEFAULT_ACTION_TIMEOUT_SECONDS
    except ValueError:
        logger.warning("Ignoring %s=%r: not a number.", ACTION_TIMEOUT_VARIABLE, raw)
        seconds = DEFAULT_ACTION_TIMEOUT_SECONDS
    return seconds if seconds > 0 else 300.0


def _drop_duplicate_failure_log(record: logging.LogRecord) -> bool:
    """Rasa's own "couldn't connect" error line: the guard logs the same failure once."""
    return not str(record.msg).startswith(_DUPLICATE_LOG_PREFIX)


# ---------------------------------------------------------------- the apology


def _language(tracker: DialogueStateTracker | None, text: str | None) -> str:
    """The conversation's language slot, else the message's language, else Chinese."""
    if tracker is not None:
        slot = tracker.get_slot("language")
        if slot in FALLBACK_TEXTS:
            return str(slot)
    return detect_language(text or "") or "zh"


async def system_busy(
    nlg: NaturalLanguageGenerator,
    tracker: DialogueStateTracker,
    channel_name: str,
) -> dict[str, Any]:
    """The apology as a bot message (text, buttons) in the tracker's language."""
    try:
        draft = await nlg.generate(SYSTEM_BUSY, tracker, channel_name)
    except Exception:
        logger.exception("system_busy_response_failed")
        draft = None
    if not draft or not draft.get("text"):
        draft = {"text": FALLBACK_TEXTS[_language(tracker, None)]}
    draft["utter_action"] = SYSTEM_BUSY
    return dict(draft)


async def _apologise_without_tracker(agent: Agent, message: UserMessage) -> None:
    """Sends the apology when the conversation cannot be read: language from the message."""
    output = message.output_channel
    domain = agent.domain
    processor = agent.processor
    if processor is None or domain is None:
        draft: dict[str, Any] = {"text": FALLBACK_TEXTS[_language(None, message.text)]}
    else:
        tracker = DialogueStateTracker(message.sender_id, domain.slots)
        tracker.update(SlotSet("language", _language(None, message.text)))
        draft = await system_busy(processor.nlg, tracker, output.name())
    draft.pop("utter_action", None)
    try:
        await output.send_response(message.sender_id, draft)
    except Exception:
        logger.exception("system_busy_not_sent sender=%s", _tag(message.sender_id))


def _tag(sender_id: str) -> str:
    """A sender id short enough to log (the Rasa process masks ids in logs as well)."""
    return sender_id if len(sender_id) <= 12 else f"{sender_id[:12]}…"


# ---------------------------------------------------------------- failing actions


class _GuardedAction(Action):
    """Runs `inner`; a failure becomes the apology (or the default session start)."""

    def __init__(self, inner: Action, timeout: float) -> None:
        self.inner = inner
        self.timeout = timeout
        self.failure: BaseException | None = None

    def name(self) -> str:
        """The inner action's name."""
        return self.inner.name()

    def __str__(self) -> str:
        return str(self.inner)

    async def run(
        self,
        output_channel: OutputChannel,
        nlg: NaturalLanguageGenerator,
        tracker: DialogueStateTracker,
        domain: Domain,
    ) -> list[Event]:
        """The inner action's events; on failure the apology's (see the module docstring)."""
        started = time.monotonic()
        try:
            return await asyncio.wait_for(
                self.inner.run(output_channel, nlg, tracker, domain), self.timeout
            )
        except ActionExecutionRejection:
            raise
        except Exception as error:
            failure = error
        elapsed_ms = (time.monotonic() - started) * 1000
        reason = "timeout" if isinstance(failure, asyncio.TimeoutError) else type(failure).__name__
        if self.name() == ACTION_SESSION_START_NAME:
            logger.warning(
                "action_failed action=%s reason=%s elapsed_ms=%d fallback=default_session_start"
                " error=%s",
                self.name(),
                reason,
                elapsed_ms,
                failure,
            )
            return await ActionSessionStart().run(output_channel, nlg, tracker, domain)
        self.failure = failure
        logger.warning(
            "action_failed action=%s sender=%s reason=%s elapsed_ms=%d reply=%s error=%s",
            self.name(),
            _tag(tracker.sender_id),
            reason,
            elapsed_ms,
            SYSTEM_BUSY,
            failure,
        )
        draft = await system_busy(nlg, tracker, output_channel.name())
        return [create_bot_utterance(draft)]

    def event_for_successful_execution(self, prediction: PolicyPrediction) -> ActionExecuted:
        """The inner action's event; after a failure, the apology is what was executed."""
        if self.failure is None:
            return self.inner.event_for_successful_execution(prediction)
        return ActionExecuted(
            SYSTEM_BUSY,
            prediction.policy_name,
            prediction.max_confidence,
            hide_rule_turn=prediction.hide_rule_turn,
        )


RunAction = Callable[
    [
        MessageProcessor,
        Action,
        DialogueStateTracker,
        OutputChannel,
        NaturalLanguageGenerator,
        PolicyPrediction,
    ],
    Coroutine[Any, Any, bool],
]


def guarded_run_action(original: RunAction) -> RunAction:
    """`MessageProcessor._run_action` with failures turned into the apology and a listen."""

    async def _run_action(
        self: MessageProcessor,
        action: Action,
        tracker: DialogueStateTracker,
        output_channel: OutputChannel,
        nlg: NaturalLanguageGenerator,
        prediction: PolicyPrediction,
    ) -> bool:
        if action.name() == ACTION_LISTEN_NAME:
            return await original(self, action, tracker, output_channel, nlg, prediction)
        guarded = _GuardedAction(action, action_timeout())
        go_on = await original(self, guarded, tracker, output_channel, nlg, prediction)
        if guarded.failure is None:
            return go_on
        listen = action_for_name_or_text(ACTION_LISTEN_NAME, self.domain, self.action_endpoint)
        await original(
            self,
            listen,
            tracker,
            output_channel,
            nlg,
            PolicyPrediction.for_action_name(self.domain, ACTION_LISTEN_NAME),
        )
        return False

    return _run_action


def _guard_actions() -> None:
    MessageProcessor._run_action = guarded_run_action(  # type: ignore[method-assign, assignment]
        MessageProcessor._run_action
    )


# ---------------------------------------------------------------- the tracker store


def _mark_stored(tracker: DialogueStateTracker | None) -> None:
    if tracker is not None:
        setattr(tracker, _STORED_EVENTS, len(tracker.events))


def unsaved_events(tracker: DialogueStateTracker) -> list[Event]:
    """The events of `tracker` the tracker store does not hold (all when unknown)."""
    stored = getattr(tracker, _STORED_EVENTS, 0)
    return list(tracker.events)[stored:]


def _strict_tracker_store() -> None:
    """`FailSafeTrackerStore` raises `TrackerStoreUnavailable` instead of an empty tracker."""

    async def retrieve(self: FailSafeTrackerStore, sender_id: str) -> DialogueStateTracker | None:
        try:
            tracker = await self._tracker_store.retrieve(sender_id)
        except Exception as error:
            raise TrackerStoreUnavailable("retrieve", error) from error
        _mark_stored(tracker)
        return tracker

    async def retrieve_full_tracker(
        self: FailSafeTrackerStore, sender_id: str
    ) -> DialogueStateTracker | None:
        try:
            return await self._tracker_store.retrieve_full_tracker(sender_id)
        except Exception as error:
            raise TrackerStoreUnavailable("retrieve", error) from error

    async def save(self: FailSafeTrackerStore, tracker: DialogueStateTracker) -> None:
        try:
            await self._tracker_store.save(tracker)
        except Exception as error:
            raise TrackerStoreUnavailable("save", error, tracker) from error
        _mark_stored(tracker)

    FailSafeTrackerStore.retrieve = retrieve  # type: ignore[method-assign]
    FailSafeTrackerStore.retrieve_full_tracker = retrieve_full_tracker  # type: ignore[method-assign]
    FailSafeTrackerStore.save = save  # type: ignore[method-assign]


# ---------------------------------------------------------------- messages


def _store_failure(error: BaseException) -> BaseException | None:
    """The tracker- or lock-store failure in `error`'s chain, if any."""
    seen: set[int] = set()
    current: BaseException | None = error
    found: BaseException | None = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, TrackerStoreUnavailable):
            return current  # it may carry an answered turn: it wins
        if found is None and _is_lock_failure(current):
            found = current
        current = current.__cause__ or current.__context__
    return found


def _is_lock_failure(error: BaseException) -> bool:
    if isinstance(error, LockError):
        return True
    try:
        from redis.exceptions import RedisError
    except ImportError:  # pragma: no cover - redis is one of Rasa's dependencies
        return False
    return isinstance(error, RedisError)


async def process(agent: Agent, message: UserMessage) -> list[dict[str, Any]] | None:
    """Rasa's own `Agent.handle_message`; raises whatever fails.

    Only a lock that cannot be released after an answered turn is logged instead (the turn
    is stored).
    """
    processor = agent.processor
    if processor is None:
        return None
    answered = False
    result: list[dict[str, Any]] | None = None
    try:
        async with agent.lock_store.lock(message.sender_id):
            result = await processor.handle_message(message)
            answered = True
    except Exception as error:
        if answered and _is_lock_failure(error):
            logger.warning("lock_release_failed sender=%s error=%s", _tag(message.sender_id), error)
            return result
        raise
    return result


def _collected(message: UserMessage) -> list[dict[str, Any]] | None:
    output = message.output_channel
    return output.messages if isinstance(output, CollectingOutputChannel) else None


async def handle_message(agent: Agent, message: UserMessage) -> list[dict[str, Any]] | None:
    """A customer message: answered, or spooled with the apology (see the module docstring)."""
    spool = replayer()
    if spool.is_waiting(message.sender_id):
        state = await spool.replay_sender(agent, message.sender_id, message.output_channel)
        if state != "drained":
            await spool.keep_message(message, "earlier messages are waiting")
            await _apologise_without_tracker(agent, message)
            return _collected(message)
    try:
        return await process(agent, message)
    except Exception as error:
        failure = _store_failure(error)
        if failure is None:
            logger.exception(
                "message_failed sender=%s reply=%s", _tag(message.sender_id), SYSTEM_BUSY
            )
            await _apologise_without_tracker(agent, message)
            return _collected(message)
        if isinstance(failure, TrackerStoreUnavailable) and failure.tracker is not None:
            events = unsaved_events(failure.tracker)
            if any(isinstance(event, UserUttered) for event in events):
                # the turn ran (and answered, unless the bot is paused): store it later
                await spool.keep_events(message.sender_id, events, str(failure))
                return _collected(message)
        await spool.keep_message(message, str(failure))
        await _apologise_without_tracker(agent, message)
        return _collected(message)


def _guard_messages() -> None:
    async def agent_handle_message(
        self: Agent, message: UserMessage
    ) -> list[dict[str, Any]] | None:
        if not self.is_ready():
            logger.info("Ignoring message as there is no agent to handle it.")
            return None
        return await handle_message(self, message)

    Agent.handle_message = agent_handle_message  # type: ignore[method-assign]


# ---------------------------------------------------------------- replay

ReplayState = Literal["drained", "busy", "down"]


class Replayer:
    """The spool of this process, and the replay of it."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.waiting: set[str] = set()
        self.stopping = False
        self._wake = asyncio.Event()

    def is_waiting(self, sender_id: str) -> bool:
        """Whether `sender_id` has spooled entries (as far as this process knows)."""
        return sender_id in self.waiting

    async def refresh(self) -> None:
        """Re-reads which senders have entries (other processes may have spooled some)."""
        self.waiting = set(await asyncio.to_thread(self.spool.senders))

    async def keep_message(self, message: UserMessage, reason: str) -> None:
        """Appends a customer message; logged once (a lost message is logged as an error)."""
        metadata = dict(message.metadata or {})
        try:
            entry = await asyncio.to_thread(
                self.spool.append_message,
                message.sender_id,
                message.text,
                message.input_channel,
                message.message_id,
                metadata,
                reason,
            )
        except Exception:
            logger.exception("message_lost sender=%s reason=%s", _tag(message.sender_id), reason)
            return
        self.waiting.add(message.sender_id)
        self._wake.set()
        logger.warning(
            "message_spooled sender=%s entry=%d reason=%s reply=%s",
            _tag(message.sender_id),
            entry,
            reason,
            SYSTEM_BUSY,
        )

    async def keep_events(self, sender_id: str, events: list[Event], reason: str) -> None:
        """Appends the events of an answered turn whose save failed."""
        serialised = [event.as_dict() for event in events]
        try:
            entry = await asyncio.to_thread(self.spool.append_events, sender_id, serialised, reason)
        except Exception:
            logger.exception("turn_lost sender=%s reason=%s", _tag(sender_id), reason)
            return
        self.waiting.add(sender_id)
        self._wake.set()
        logger.warning(
            "turn_spooled sender=%s entry=%d events=%d reason=%s",
            _tag(sender_id),
            entry,
            len(serialised),
            reason,
        )

    async def replay_sender(
        self,
        agent: Agent,
        sender_id: str,
        output: OutputChannel | None = None,
        channels: list[InputChannel] | None = None,
    ) -> ReplayState:
        """Replays `sender_id`'s entries oldest first, until none is left or one fails.

        Answers go to `output` (a live message's channel), else to the sender's channel
        when it can send outside a request (`channels`), else only into the conversation.
        """
        while True:
            if self.stopping and output is None:
                return "busy"  # the server stops: the next process goes on from here
            entry = await asyncio.to_thread(self.spool.claim_next, sender_id)
            if entry is None:
                if await asyncio.to_thread(self.spool.waiting, sender_id):
                    return "busy"  # another process replays this sender
                self.waiting.discard(sender_id)
                return "drained"
            try:
                target = output if output is not None else _output_for(entry, channels or [])
                await self._replay(agent, entry, target)
            except Exception as error:
                if _store_failure(error) is not None:
                    await asyncio.to_thread(self.spool.release, entry.id)
                    logger.debug("spool_replay_waits sender=%s error=%s", _tag(sender_id), error)
                    return "down"
                if entry.attempts + 1 >= MAX_REPLAY_ATTEMPTS:
                    await asyncio.to_thread(self.spool.bury, entry.id, repr(error))
                    logger.exception(
                        "spool_entry_set_aside sender=%s entry=%d", _tag(sender_id), entry.id
                    )
                    continue
                await asyncio.to_thread(self.spool.release, entry.id, True)
                logger.exception(
                    "spool_replay_failed sender=%s entry=%d", _tag(sender_id), entry.id
                )
                return "down"
            await asyncio.to_thread(self.spool.done, entry.id)
            logger.info(
                "spool_replayed sender=%s entry=%d kind=%s waited_s=%.1f",
                _tag(sender_id),
                entry.id,
                entry.kind,
                time.time() - entry.received_at,
            )

    async def _replay(self, agent: Agent, entry: SpoolEntry, output: OutputChannel) -> None:
        if entry.kind == "events":
            await _store_events(agent, entry)
            return
        message = UserMessage(
            entry.text,
            output,
            entry.sender_id,
            input_channel=entry.input_channel,
            message_id=entry.message_id,
            metadata={**entry.metadata, SPOOLED_AT_KEY: entry.received_at},
        )
        await process(agent, message)

    def _stopped(self) -> bool:
        return self.stopping

    async def stop(self, task: asyncio.Task[None], grace: float = STOP_GRACE_SECONDS) -> None:
        """Ends `run()` after the entry being replayed (cancelled after `grace` seconds)."""
        self.stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), grace)
        except asyncio.TimeoutError:
            task.cancel()  # its claim lapses after the lease; another process replays it
        except Exception:
            logger.exception("spool_replay_stop_failed")

    async def replay_all(self, agent: Agent, channels: list[InputChannel]) -> None:
        """One pass over every waiting sender; stops at the first store that still fails."""
        await self.refresh()
        for sender_id in sorted(self.waiting):
            if await self.replay_sender(agent, sender_id, None, channels) == "down":
                return

    async def run(self, app: Sanic) -> None:
        """Replays in a Rasa server process until `stop()` (a deploy may replace its agent)."""
        while not self._stopped():
            try:
                agent = getattr(app.ctx, "agent", None)
                if agent is not None and agent.is_ready():
                    await self.replay_all(agent, getattr(app.ctx, "input_channels", None) or [])
            except Exception:
                logger.exception("spool_replay_pass_failed")
            if self._stopped():
                return
            interval = REPLAY_INTERVAL_SECONDS if self.waiting else IDLE_INTERVAL_SECONDS
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)


async def _store_events(agent: Agent, entry: SpoolEntry) -> None:
    """Appends an answered turn's events to the stored conversation."""
    from rasa.shared.core.events import deserialise_events

    domain = agent.domain
    async with agent.lock_store.lock(entry.sender_id):
        tracker = await agent.tracker_store.get_or_create_tracker(
            entry.sender_id, append_action_listen=False
        )
        tracker.update_with_events(
            deserialise_events(entry.events), domain, override_timestamp=False
        )
        await agent.tracker_store.save(tracker)


def _output_for(entry: SpoolEntry, channels: list[InputChannel]) -> OutputChannel:
    """The entry's channel's own output (sending outside a request), else a collecting one."""
    for channel in channels:
        if channel.name() == entry.input_channel:
            try:
                output = channel.get_output_channel()
            except Exception:
                logger.exception("spool_output_unavailable channel=%s", entry.input_channel)
                output = None
            if output is not None:
                return output
    return CollectingOutputChannel()


_replayer: Replayer | None = None


def replayer() -> Replayer:
    """This process's replayer over the spool file `rasa_addons.spool.spool_path` names."""
    global _replayer
    if _replayer is None:
        _replayer = Replayer(Spool(spool_path(os.environ)))
    return _replayer


def _replay_in_server() -> None:
    """Every Rasa server process (`rasa run`) starts the replay loop with its Sanic app."""
    import rasa.core.run

    original = rasa.core.run.configure_app

    def configure_app(*args: Any, **kwargs: Any) -> Sanic:
        app = original(*args, **kwargs)

        async def start(running: Sanic, _: Any) -> None:
            running.ctx.kefu_replay = asyncio.create_task(replayer().run(running))

        async def stop(running: Sanic, _: Any) -> None:
            task = getattr(running.ctx, "kefu_replay", None)
            if task is not None:
                await replayer().stop(task)

        app.register_listener(start, "after_server_start")
        app.register_listener(stop, "before_server_stop")
        return app

    rasa.core.run.configure_app = configure_app
