"""Per-turn cost that does not grow with the conversation: small patches of Rasa 3.6.

Measured on a 180-turn conversation (README, "Where a turn's time goes"), Rasa 3.6 spends
most of a late turn on work that grows with the conversation's history or repeats on every
call. `install()` changes five things, each a drop-in for what Rasa does:

- **Event classes by name** (`Event.resolve_by_type`): Rasa walks every subclass of `Event`
  (with `inspect.isabstract` on each) to find a class by its name, once per event it reads;
  a dictionary remembers each answer.
- **The policies see the recent conversation** (`MessageProcessor._predict_next_with_tracker`):
  every policy rebuilds the dialogue states of the whole session and then keeps the last
  few (`max_history` 4; rules are a handful of turns). They now get `recent_window`: the last
  `POLICY_USER_TURNS` customer messages, preceded by the slot values and the action in force
  where the window starts. Their predictions are the same (a test replays long conversations
  both ways); the original tracker stays attached as `full_tracker` for a policy that needs
  the whole session (the handoff trigger's "no handoff yet in this session").
- **TED only where it can matter**: when the rules or the memoization policy predict with
  confidence 1.0, TED (priority 1, below both) cannot be chosen, so its TensorFlow inference
  (a third of Rasa's time per turn) is skipped for that prediction. Only for a TED trained
  without end-to-end stories (an end-to-end prediction would overrule the others).
- **Copying a tracker** (`DialogueStateTracker.copy`): Rasa copies the tracker before every
  action it runs by replaying every event of the conversation into a new one. `fast_copy`
  copies the state instead: the event list (not the events, which nothing changes), the
  slots and the active loop, the parts that later events change in place.
- **Action-server calls** (`RemoteAction`, `EndpointConfig.request`): one HTTP session per
  endpoint kept open (Rasa opened a new one per call), the response schema compiled once
  (Rasa recompiled and re-checked it per call), and the tracker sent with the events of the
  last `ACTION_USER_TURNS` customer messages, except to the actions the action endpoint's
  `full_history_actions` names (the handoff's transcript needs the whole session).

Installed by `rasa_addons.launch` before Rasa starts; idempotent.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import functools
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    AllSlotsReset,
    Event,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.slots import Slot
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity

logger = logging.getLogger(__name__)

__all__ = [
    "ACTION_USER_TURNS",
    "POLICY_USER_TURNS",
    "fast_copy",
    "install",
    "recent_events",
    "recent_window",
]

POLICY_USER_TURNS = 10
"""Customer messages the policies see (they use the last 4 dialogue states and short rules)."""

ACTION_USER_TURNS = 30
"""Customer messages whose events the action server gets (its actions look a few back)."""

FULL_HISTORY_KEY = "full_history_actions"
"""Action endpoint key (endpoints.yml): actions that get the whole session's events."""

_installed = False

_decided: contextvars.ContextVar[dict[str, bool] | None] = contextvars.ContextVar(
    "kefu_decided", default=None
)
"""Per prediction: whether a policy above TED already predicted with confidence 1.0."""

TED_SKIPS = {"skipped": 0, "run": 0}
"""How often TED was skipped or run in this process (for tests and profiling)."""


def install() -> None:
    """Applies the patches (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True
    _cache_event_classes()
    DialogueStateTracker.copy = fast_copy  # type: ignore[method-assign,assignment]
    _predict_on_recent_window()
    _skip_ted_when_decided()
    _lighter_action_calls()
    _keep_http_sessions()


# ---------------------------------------------------------------- event classes


def _cache_event_classes() -> None:
    original = Event.resolve_by_type
    found: dict[str, type[Event]] = {}

    def resolve_by_type(type_name: str, default: type[Event] | None = None) -> type[Event] | None:
        cls = found.get(type_name)
        if cls is None:
            cls = original(type_name, default)
            if cls is not None and cls is not default:
                found[type_name] = cls
        return cls

    Event.resolve_by_type = staticmethod(resolve_by_type)  # type: ignore[method-assign]


# ---------------------------------------------------------------- copying a tracker


def fast_copy(tracker: DialogueStateTracker) -> DialogueStateTracker:
    """A tracker in the same state as `tracker`, sharing nothing that updates change in place.

    Same result as Rasa's `copy` (a replay of every event into a new tracker), in time that
    does not grow with the conversation: events are never changed once made, so the new
    tracker's event list holds the same ones; slots and the active loop are copied, since
    events set their fields. Any attribute added to the tracker (the window's
    `full_tracker`) is kept, as the copied object's.
    """
    clone = copy.copy(tracker)
    clone.events = tracker._create_events(list(tracker.events))
    # a plain dict, as Rasa's copy makes (it passes the slots to a new tracker)
    clone.slots = {name: copy.copy(slot) for name, slot in tracker.slots.items()}
    clone.active_loop = copy.copy(tracker.active_loop)
    clone.latest_action = None if tracker.latest_action is None else dict(tracker.latest_action)
    return clone


# ---------------------------------------------------------------- the recent window


def _start_of_recent_turns(events: Sequence[Event], user_turns: int) -> int:
    """Where the last `user_turns` customer messages begin (0: the whole tracker).

    The cut lies on the `action_listen` before a customer message, at a point where no form
    or loop is active (moving back a turn at a time); 0 when there is no such point.
    """
    starts = [i for i, event in enumerate(events) if isinstance(event, UserUttered)]
    if len(starts) <= user_turns:
        return 0
    candidates = starts[: len(starts) - user_turns + 1]
    loop_active_at: dict[int, bool] = {}
    active = False
    for index, event in enumerate(events[: candidates[-1] + 1]):
        loop_active_at[index] = active
        if isinstance(event, ActiveLoop):
            active = bool(event.name)
        elif isinstance(event, Restarted | SessionStarted):
            active = False
    for start in reversed(candidates):
        listen = start - 1
        while listen > 0 and not _is_listen(events[listen]):
            listen -= 1
        if listen > 0 and not loop_active_at[listen]:
            return listen
    return 0


def _is_listen(event: Event) -> bool:
    return isinstance(event, ActionExecuted) and event.action_name == ACTION_LISTEN_NAME


def _state_before(events: Iterable[Event]) -> tuple[dict[str, Any], str | None]:
    """The slot values set by `events` (resets honoured) and the last action they ran."""
    values: dict[str, Any] = {}
    last_action: str | None = None
    for event in events:
        if isinstance(event, SlotSet):
            values[event.key] = event.value
        elif isinstance(event, Restarted | SessionStarted | AllSlotsReset):
            values.clear()
        elif isinstance(event, ActionExecuted) and event.action_name:
            last_action = event.action_name
    return values, last_action


def recent_window(
    tracker: DialogueStateTracker, slots: Iterable[Slot], user_turns: int = POLICY_USER_TURNS
) -> DialogueStateTracker:
    """`tracker` cut to its last `user_turns` customer messages, or `tracker` itself if short.

    The window starts with the slot values in force at the cut and the action that ran just
    before it, so every dialogue state inside the window is the same as in the full tracker.
    The full tracker is kept as the window's `full_tracker` attribute.
    """
    events = list(tracker.events)
    cut = _start_of_recent_turns(events, user_turns)
    if cut == 0:
        return tracker
    values, last_action = _state_before(events[:cut])
    prefix: list[Event] = [SlotSet(key, value) for key, value in values.items()]
    if last_action:
        prefix.append(ActionExecuted(last_action))
    window = DialogueStateTracker.from_events(
        tracker.sender_id, prefix + events[cut:], slots, sender_source=tracker.sender_source
    )
    window.full_tracker = tracker  # type: ignore[attr-defined]
    return window


def recent_events(tracker: DialogueStateTracker, user_turns: int) -> list[Event]:
    """The events from the `action_listen` before the `user_turns`-th last customer message."""
    events = list(tracker.events)
    return events[_start_of_recent_turns(events, user_turns) :]


def _predict_on_recent_window() -> None:
    from rasa.core.policies.policy import PolicyPrediction
    from rasa.core.processor import MessageProcessor
    from rasa.engine.constants import PLACEHOLDER_TRACKER

    original = MessageProcessor._predict_next_with_tracker

    @functools.wraps(original)
    def _predict_next_with_tracker(
        self: MessageProcessor, tracker: DialogueStateTracker
    ) -> PolicyPrediction:
        if tracker.followup_action or not self.model_metadata.core_target:
            return original(self, tracker)
        target = self.model_metadata.core_target
        window = recent_window(tracker, self.domain.slots)
        token = _decided.set({})
        try:
            results = self.graph_runner.run(inputs={PLACEHOLDER_TRACKER: window}, targets=[target])
        finally:
            _decided.reset(token)
        prediction: PolicyPrediction = results[target]
        return prediction

    MessageProcessor._predict_next_with_tracker = _predict_next_with_tracker  # type: ignore[method-assign]


def _skip_ted_when_decided() -> None:
    from rasa.core.policies.memoization import MemoizationPolicy
    from rasa.core.policies.policy import Policy, PolicyPrediction
    from rasa.core.policies.rule_policy import RulePolicy
    from rasa.core.policies.ted_policy import TEDPolicy
    from rasa.shared.nlu.constants import TEXT

    def deciding(policy: type[Policy]) -> None:
        original = policy.predict_action_probabilities

        # `wraps`: Rasa's graph validation reads the type hints of a component's methods
        @functools.wraps(original)
        def predict_action_probabilities(
            self: Policy, *args: Any, **kwargs: Any
        ) -> PolicyPrediction:
            prediction = original(self, *args, **kwargs)
            decided = _decided.get()
            if decided is not None and prediction.max_confidence >= 1.0:
                decided["decided"] = True
            return prediction

        policy.predict_action_probabilities = predict_action_probabilities  # type: ignore[method-assign]

    deciding(MemoizationPolicy)  # RulePolicy subclasses it: patch the subclass's own method too
    deciding(RulePolicy)
    original_ted = TEDPolicy.predict_action_probabilities

    @functools.wraps(original_ted)
    def predict_action_probabilities(
        self: TEDPolicy, tracker: DialogueStateTracker, domain: Any, *args: Any, **kwargs: Any
    ) -> PolicyPrediction:
        decided = _decided.get()
        if decided and decided.get("decided") and TEXT not in self.fake_features:
            TED_SKIPS["skipped"] += 1
            return self._prediction(self._default_predictions(domain))
        TED_SKIPS["run"] += 1
        return original_ted(self, tracker, domain, *args, **kwargs)

    TEDPolicy.predict_action_probabilities = predict_action_probabilities  # type: ignore[method-assign]


# ---------------------------------------------------------------- action-server calls


def _lighter_action_calls() -> None:
    import rasa
    from jsonschema import ValidationError
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    schema = RemoteAction.action_response_format_spec()
    validator = validator_for(schema)(schema)

    def _validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
        try:
            validator.validate(result)
        except ValidationError as error:
            error.message += (
                ". Failed to validate Action server response from API, make sure your "
                "response from the Action endpoint is valid. For more information about the "
                f"format visit {DOCS_BASE_URL}/custom-actions"
            )
            raise
        return True

    def _action_call_format(
        self: RemoteAction, tracker: DialogueStateTracker, domain: Any
    ) -> dict[str, Any]:
        endpoint = self.action_endpoint
        full = set(endpoint.kwargs.get(FULL_HISTORY_KEY) or ()) if endpoint else set()
        state = tracker.current_state(EventVerbosity.NONE)
        events = (
            list(tracker.events)
            if self.name() in full
            else recent_events(tracker, ACTION_USER_TURNS)
        )
        state["events"] = [event.as_dict() for event in events]
        result: dict[str, Any] = {
            "next_action": self._name,
            "sender_id": tracker.sender_id,
            "tracker": state,
            "version": rasa.__version__,
        }
        if (
            not self._is_selective_domain_enabled()
            or domain.does_custom_action_explicitly_need_domain(self.name())
        ):
            result["domain"] = domain.as_dict()
        return result

    RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]
    RemoteAction._action_call_format = _action_call_format  # type: ignore[method-assign]


def _keep_http_sessions() -> None:
    """`EndpointConfig.request` reuses one `aiohttp.ClientSession` per endpoint and event loop."""
    import aiohttp
    from rasa.utils.endpoints import EndpointConfig

    original_session = EndpointConfig.session
    sessions: dict[tuple[Any, ...], aiohttp.ClientSession] = {}

    class _Borrowed:
        """`async with` on a kept session: leaves it open."""

        def __init__(self, session: aiohttp.ClientSession) -> None:
            self.session = session

        async def __aenter__(self) -> aiohttp.ClientSession:
            return self.session

        async def __aexit__(self, *_: object) -> None:
            return None

    def session(self: EndpointConfig) -> Any:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return original_session(self)
        # by what the session carries (not by id(self): a new endpoint object may reuse an id)
        key = (id(loop), repr(sorted((self.headers or {}).items())), repr(self.basic_auth))
        kept = sessions.get(key)
        if kept is None or kept.closed:
            kept = original_session(self)
            sessions[key] = kept
        return _Borrowed(kept)

    EndpointConfig.session = session  # type: ignore[method-assign]
