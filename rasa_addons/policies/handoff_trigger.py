"""Hands the conversation to a person when the customer's messages call for one.

Two triggers of the handoff file (data/service/handoff.yml) need nothing but the tracker, so
a policy decides them right after each customer message: `negative_sentiment` (N negative
customer messages in a row) and `vip` (a VIP customer writes and no agent took over yet in
this session). The other triggers depend on intents and app data; rules and actions own them.

The file is read when the policy is created or loaded: an edit takes effect when the bot
restarts, without training. Only plain PyYAML is used, as the Rasa runtime has no pydantic v2.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rasa.core.constants import POLICY_PRIORITY, RULE_POLICY_PRIORITY
from rasa.core.featurizers.tracker_featurizers import TrackerFeaturizer
from rasa.core.policies.policy import (
    InvalidPolicyConfig,
    Policy,
    PolicyPrediction,
    confidence_scores_for,
)
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.core.constants import (
    ACTION_LISTEN_NAME,
    EXTERNAL_MESSAGE_PREFIX,
    USER_INTENT_BACK,
    USER_INTENT_RESTART,
    USER_INTENT_SESSION_START,
)
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActionExecutionRejected,
    ActionReverted,
    Event,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUtteranceReverted,
    UserUttered,
)
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException

logger = logging.getLogger(__name__)

REASON_SLOT = "handoff_reason"
"""The slot the policy fills with the reason; `action_handoff` reads it."""

VIP_SLOT = "customer_vip"
"""True for customers marked VIP in the app database (set at session start)."""

NEGATIVE_SENTIMENT = "negative_sentiment"
VIP_CUSTOMER = "vip_customer"

PERSISTED_FILE = "handoff_trigger.json"
"""What the model archive records about the policy (the triggers are read at load time)."""

_COMMAND_INTENTS = frozenset({USER_INTENT_RESTART, USER_INTENT_SESSION_START, USER_INTENT_BACK})
"""Intents Rasa answers with its own default actions; the policy leaves them alone."""

_OF_INTEREST = (
    ActionExecuted,
    ActionExecutionRejected,
    ActionReverted,
    UserUttered,
    UserUtteranceReverted,
)
"""Events that tell whether the bot is answering a customer message right now."""

_ZH_GAP = 2
"""Characters that may stand between a Chinese negation and its word ("不是很垃圾")."""

_EN_WORD = re.compile(r"[a-z0-9']+$")


class HandoffFileError(RasaException):
    """The handoff file is missing or its `negative_sentiment` / `vip` parts are malformed."""


@dataclass(frozen=True)
class Words:
    """Words per language: Chinese ones match anywhere, English ones as whole words."""

    zh: tuple[str, ...] = ()
    en: tuple[str, ...] = ()


@dataclass(frozen=True)
class HandoffTriggers:
    """The parts of the handoff file this policy acts on."""

    streak: int
    words: Words
    negations: Words
    vip_enabled: bool


# ---------------------------------------------------------------------------------------------
# Reading the handoff file


def _mapping(value: Any, where: str, source: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        found = "nothing" if value is None else repr(value)
        raise HandoffFileError(f"{source}: '{where}' must be a mapping (found {found})")
    return value


def _word_list(value: Any, where: str, source: str) -> tuple[str, ...]:
    """A list of words; a single word and numbers are accepted, empty entries dropped."""
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    words: list[str] = []
    for index, item in enumerate(items):
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            hint = ' (quote words like "no" and "on" in YAML)' if isinstance(item, bool) else ""
            raise HandoffFileError(
                f"{source}: '{where}[{index}]' must be a word (found {item!r}){hint}"
            )
        word = str(item).strip()
        if word:
            words.append(word)
    return tuple(words)


def _words(value: Any, where: str, source: str) -> Words:
    """Words per language from a mapping with the keys `zh` and `en` (both optional)."""
    if value is None:
        return Words()
    languages = _mapping(value, where, source)
    unknown = sorted(str(key) for key in languages if key not in ("zh", "en"))
    if unknown:
        raise HandoffFileError(
            f"{source}: '{where}' has unknown language {unknown[0]!r} (use zh and en)"
        )
    return Words(
        zh=_word_list(languages.get("zh"), f"{where}.zh", source),
        en=_word_list(languages.get("en"), f"{where}.en", source),
    )


def load_triggers(path: Path) -> HandoffTriggers:
    """Reads `triggers.negative_sentiment` and `triggers.vip` of a handoff file.

    Other keys are left to the app, which validates the whole file.

    Raises:
        HandoffFileError: The file is missing or not YAML, or those parts are malformed.
    """
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HandoffFileError(
            f"{source}: the handoff file was not found (HandoffTriggerPolicy's `policy_file`, "
            f"relative to the working directory {Path.cwd()})"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise HandoffFileError(f"{source}: cannot read the handoff file ({error})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise HandoffFileError(f"{source}: not valid YAML: {error}") from None

    root = _mapping(data, "(file)", source)
    version = root.get("version", 1)
    if version != 1:
        raise HandoffFileError(f"{source}: 'version' {version!r} is not supported (expected 1)")
    triggers = _mapping(root.get("triggers"), "triggers", source)

    where = "triggers.negative_sentiment"
    sentiment = _mapping(triggers.get("negative_sentiment"), where, source)
    streak = sentiment.get("streak")
    if isinstance(streak, bool) or not isinstance(streak, int) or streak < 1:
        raise HandoffFileError(
            f"{source}: '{where}.streak' must be a whole number of at least 1 (found {streak!r})"
        )
    words = _words(sentiment.get("words"), f"{where}.words", source)
    if not words.zh and not words.en:
        raise HandoffFileError(f"{source}: '{where}.words' must list at least one word")
    negations = _words(sentiment.get("negations"), f"{where}.negations", source)

    vip = triggers.get("vip")
    enabled = vip.get("enabled") if isinstance(vip, dict) else vip
    if not isinstance(enabled, bool):
        raise HandoffFileError(
            f"{source}: 'triggers.vip.enabled' must be true or false (found {enabled!r})"
        )
    return HandoffTriggers(streak=streak, words=words, negations=negations, vip_enabled=enabled)


# ---------------------------------------------------------------------------------------------
# Reading the customer's words


def _normalise(text: str) -> str:
    """Full-width forms folded, lower case, curly apostrophes straightened, one space."""
    text = unicodedata.normalize("NFKC", text).replace("’", "'").replace("‘", "'")
    return re.sub(r"\s+", " ", text.casefold())


def _normalised(words: Iterable[str]) -> list[str]:
    return [word for word in (_normalise(w).strip() for w in words) if word]


def _zh_negated(text: str, start: int, negations: Sequence[str]) -> bool:
    """A negation ends at most `_ZH_GAP` letters before `start`, no punctuation between."""
    for gap in range(_ZH_GAP + 1):
        end = start - gap
        if end < 1 or (gap and not text[end:start].isalnum()):
            return False
        if any(text[:end].endswith(negation) for negation in negations):
            return True
    return False


def _en_negated(text: str, start: int, negations: Sequence[str]) -> bool:
    """The word before `start` is a negation, or ends in one with an apostrophe (isn't)."""
    match = _EN_WORD.search(text[:start].rstrip(" "))
    if match is None:
        return False
    previous = match.group()
    return any(
        previous == negation or ("'" in negation and previous.endswith(negation))
        for negation in negations
    )


def _en_pattern(word: str) -> re.Pattern[str]:
    """The word as a whole word: no letter or digit glued to either end."""
    head = r"(?<![a-z0-9])" if word[0].isascii() and word[0].isalnum() else ""
    tail = r"(?![a-z0-9])" if word[-1].isascii() and word[-1].isalnum() else ""
    return re.compile(head + re.escape(word) + tail)


def is_negative(text: str, words: Words, negations: Words) -> bool:
    """True when the text holds a negative word that no negation cancels.

    Chinese words match anywhere; a Chinese negation at most two letters before the word, with
    no punctuation between, cancels that occurrence ("不垃圾", "不是很垃圾"). English words match
    whole words; the word right before cancels one when it is a negation ("not terrible"), and
    a negation with an apostrophe also matches as an ending ("isn't"). Case and full-width
    forms do not matter. The same reading as `is_negative` in bot/handoff/policy.py (app
    runtime), which the Rasa runtime cannot import.
    """
    normal = _normalise(text)
    zh_negations = _normalised(negations.zh)
    for word in _normalised(words.zh):
        start = normal.find(word)
        while start != -1:
            if not _zh_negated(normal, start, zh_negations):
                return True
            start = normal.find(word, start + 1)
    en_negations = _normalised(negations.en)
    for word in _normalised(words.en):
        for match in _en_pattern(word).finditer(normal):
            if not _en_negated(normal, match.start(), en_negations):
                return True
    return False


# ---------------------------------------------------------------------------------------------
# The policy


def _session_events(tracker: DialogueStateTracker) -> list[Event]:
    """The events since the latest session start or restart.

    The policies see a recent window of a long conversation (`rasa_addons.turn_speed`); its
    `full_tracker` is the whole session.
    """
    events = list(getattr(tracker, "full_tracker", tracker).events)
    for index in range(len(events) - 1, -1, -1):
        if isinstance(events[index], SessionStarted | Restarted):
            return events[index + 1 :]
    return events


def _is_customer_message(event: Event | None) -> bool:
    """A message the customer wrote (not an intent triggered from outside, not a reminder)."""
    return isinstance(event, UserUttered) and not (event.text or "").startswith(
        EXTERNAL_MESSAGE_PREFIX
    )


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=False
)
class HandoffTriggerPolicy(Policy):
    """Predicts the handoff action when the customer's messages read negative or a VIP writes.

    It predicts only right after a customer message, with confidence 1 and a priority above
    RulePolicy's, and marks its prediction as not based on the intent so that it also wins
    over an active form. The winning prediction sets `handoff_reason`. Otherwise it abstains
    (all-zero probabilities); it also abstains when the domain lacks the handoff action or the
    `handoff_reason` slot.
    """

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """The handoff file, the priority (above RulePolicy's) and the handoff action."""
        return {
            "policy_file": "data/service/handoff.yml",
            POLICY_PRIORITY: RULE_POLICY_PRIORITY + 1,
            "handoff_action": "action_handoff",
        }

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        featurizer: TrackerFeaturizer | None = None,
    ) -> None:
        """Reads the handoff file (see `load_triggers`)."""
        super().__init__(config, model_storage, resource, execution_context, featurizer)
        action = config.get("handoff_action")
        if not isinstance(action, str) or not action:
            raise InvalidPolicyConfig(
                f"{type(self).__name__}: 'handoff_action' must be an action name (found {action!r})"
            )
        self.handoff_action = action
        self.policy_file = Path(str(config["policy_file"]))
        self.triggers = load_triggers(self.policy_file)
        self._warned_unready = False

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> HandoffTriggerPolicy:
        """Creates the policy and reads the handoff file; the persisted record is not needed."""
        return cls(config, model_storage, resource, execution_context)

    def train(
        self,
        training_trackers: list[TrackerWithCachedStates],
        domain: Domain,
        **kwargs: Any,
    ) -> Resource:
        """Learns nothing; records its settings so the model has the resource."""
        if not self._ready(domain):
            logger.warning(
                f"{type(self).__name__}: the domain lacks the action '{self.handoff_action}' "
                f"or the slot '{REASON_SLOT}'; the policy will never predict."
            )
        self.persist()
        return self._resource

    def persist(self) -> None:
        """Writes the settings (the triggers themselves are read again at load time)."""
        record = {"policy_file": str(self.policy_file), "handoff_action": self.handoff_action}
        with self._model_storage.write_to(self._resource) as directory:
            (directory / PERSISTED_FILE).write_text(json.dumps(record), encoding="utf-8")

    def _ready(self, domain: Domain) -> bool:
        return self.handoff_action in domain.action_names_or_texts and any(
            slot.name == REASON_SLOT for slot in domain.slots
        )

    def _answering_customer(self, tracker: DialogueStateTracker, events: list[Event]) -> bool:
        """Right after a customer message: no action ran since, not paused, not a command."""
        paused = getattr(tracker, "full_tracker", tracker).is_paused()
        if paused or tracker.latest_action_name != ACTION_LISTEN_NAME:
            return False
        latest = next((e for e in reversed(events) if isinstance(e, _OF_INTEREST)), None)
        return (
            isinstance(latest, UserUttered)
            and _is_customer_message(latest)
            and latest.intent_name not in _COMMAND_INTENTS
        )

    def _handed_off(self, events: Iterable[Event]) -> bool:
        return any(
            isinstance(e, ActionExecuted) and e.action_name == self.handoff_action for e in events
        )

    def _negative_streak(self, events: list[Event]) -> bool:
        """The last N customer messages read negative and none of them led to a handoff yet."""
        positions = [i for i, event in enumerate(events) if _is_customer_message(event)]
        streak = positions[-self.triggers.streak :]
        if len(streak) < self.triggers.streak or self._handed_off(events[streak[0] :]):
            return False
        return all(
            is_negative(
                getattr(events[i], "text", None) or "",
                self.triggers.words,
                self.triggers.negations,
            )
            for i in streak
        )

    def _vip(self, tracker: DialogueStateTracker, domain: Domain, events: list[Event]) -> bool:
        """A VIP customer, and no handoff in this session yet."""
        return (
            self.triggers.vip_enabled
            and any(slot.name == VIP_SLOT for slot in domain.slots)
            and tracker.get_slot(VIP_SLOT) is True
            and not self._handed_off(events)
        )

    def handoff_reason(self, tracker: DialogueStateTracker, domain: Domain) -> str | None:
        """Why the conversation should go to a person now, or None."""
        if not self._ready(domain):
            if not self._warned_unready:
                self._warned_unready = True
                logger.warning(
                    f"{type(self).__name__}: the domain lacks the action "
                    f"'{self.handoff_action}' or the slot '{REASON_SLOT}'; abstaining."
                )
            return None
        events = _session_events(tracker)
        if not self._answering_customer(tracker, events):
            return None
        if self._negative_streak(events):
            return NEGATIVE_SENTIMENT
        if self._vip(tracker, domain, events):
            return VIP_CUSTOMER
        return None

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        """The handoff action with confidence 1 when a trigger fires, else all zeros."""
        reason = self.handoff_reason(tracker, domain)
        if reason is None:
            return self._prediction(self._default_predictions(domain))
        logger.debug(f"{type(self).__name__}: '{reason}' -> '{self.handoff_action}'.")
        return self._prediction(
            confidence_scores_for(self.handoff_action, 1.0, domain),
            optional_events=[SlotSet(REASON_SLOT, reason)],
            # Based on neither the intent nor the featurized text: like a form's happy path,
            # the ensemble then prefers it over intent-based predictions, RulePolicy's included.
            is_no_user_prediction=True,
            diagnostic_data={REASON_SLOT: reason},
        )
