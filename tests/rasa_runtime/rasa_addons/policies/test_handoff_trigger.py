import json
from pathlib import Path

import pytest
import rasa.engine.validation
from rasa.core.constants import RULE_POLICY_PRIORITY
from rasa.core.policies.ensemble import DefaultPolicyPredictionEnsemble
from rasa.core.policies.policy import InvalidPolicyConfig, PolicyPrediction, confidence_scores_for
from rasa.engine.graph import ExecutionContext, GraphModelConfiguration, GraphSchema
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.recipes.recipe import Recipe
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ConversationPaused,
    ConversationResumed,
    Event,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.data import TrainingType

from rasa_addons.policies.handoff_trigger import (
    PERSISTED_FILE,
    HandoffFileError,
    HandoffTriggerPolicy,
    Words,
    is_negative,
    load_triggers,
)

POLICY_NAME = "rasa_addons.policies.handoff_trigger.HandoffTriggerPolicy"

# Rasa warns about slot auto-fill on every Domain.from_yaml, mappings or not.
pytestmark = pytest.mark.filterwarnings("ignore:Slot auto-fill:UserWarning")

HANDOFF_YML = """\
version: 1
triggers:
  explicit_request:
    intents: [ask_human]
  consecutive_misses:
    count: 2
  major_complaint: true
  urgent_tier: true
  negative_sentiment:
    streak: 3
    words:
      zh: [垃圾, 气死, 太差]
      en: [terrible, angry, worst]
    negations:
      zh: [不, 没]
      en: [not, "n't", never]
  vip:
    enabled: {vip}
queue:
  online_window_minutes: 2
"""

DOMAIN_YML = """\
version: "3.1"
intents: [greet, complain, ask_human]
slots:
  customer_vip:
    type: bool
    influence_conversation: false
    mappings: [{type: custom}]
  handoff_reason:
    type: text
    influence_conversation: false
    mappings: [{type: custom}]
responses:
  utter_sorry:
    - text: 抱歉 Sorry
actions: [action_handoff]
"""

NEGATIVE = "这服务太差了"
ANGRY = "I am so angry"
NEUTRAL = "我的订单到哪了"

WORDS = Words(zh=("垃圾", "气死", "太差"), en=("terrible", "angry", "worst"))
NEGATIONS = Words(zh=("不", "没"), en=("not", "n't", "never"))


def write_handoff_file(directory: Path, vip: bool = True) -> Path:
    path = directory / "handoff.yml"
    path.write_text(HANDOFF_YML.format(vip=str(vip).lower()), encoding="utf-8")
    return path


def make_policy(
    path: Path, storage: ModelStorage | None = None, **config: object
) -> HandoffTriggerPolicy:
    return HandoffTriggerPolicy.create(
        {**HandoffTriggerPolicy.get_default_config(), "policy_file": str(path), **config},
        storage,  # type: ignore[arg-type]
        Resource(f"train_{POLICY_NAME}1"),
        ExecutionContext(GraphSchema({}), node_name=f"train_{POLICY_NAME}1"),
    )


@pytest.fixture
def domain() -> Domain:
    return Domain.from_yaml(DOMAIN_YML)


@pytest.fixture
def policy(tmp_path: Path) -> HandoffTriggerPolicy:
    return make_policy(write_handoff_file(tmp_path))


def session_start(vip: bool = False) -> list[Event]:
    events: list[Event] = [ActionExecuted(ACTION_SESSION_START_NAME), SessionStarted()]
    if vip:
        events.append(SlotSet("customer_vip", True))
    return [*events, ActionExecuted(ACTION_LISTEN_NAME)]


def user(text: str, intent: str = "complain") -> UserUttered:
    return UserUttered(text, {"name": intent, "confidence": 0.9})


def bot_turn() -> list[Event]:
    return [ActionExecuted("utter_sorry"), ActionExecuted(ACTION_LISTEN_NAME)]


def messages(*texts: str) -> list[Event]:
    """Customer messages, each answered by the bot except the last one."""
    events: list[Event] = []
    for index, text in enumerate(texts):
        events.append(user(text))
        if index < len(texts) - 1:
            events.extend(bot_turn())
    return events


def handoff() -> list[Event]:
    """The handoff action ran, an agent talked, then handed back to the bot."""
    return [
        ActionExecuted("action_handoff"),
        ConversationPaused(),
        ConversationResumed(),
        ActionExecuted(ACTION_LISTEN_NAME),
    ]


def tracker(domain: Domain, *events: Event) -> DialogueStateTracker:
    return DialogueStateTracker.from_events("c1", list(events), domain.slots, domain=domain)


def assert_handoff(prediction: PolicyPrediction, domain: Domain, reason: str) -> None:
    assert prediction.max_confidence_index == domain.index_for_action("action_handoff")
    assert prediction.max_confidence == 1.0
    assert prediction.optional_events == [SlotSet("handoff_reason", reason)]
    assert prediction.events == []
    assert prediction.is_no_user_prediction
    assert prediction.policy_priority == RULE_POLICY_PRIORITY + 1


def assert_abstains(prediction: PolicyPrediction, domain: Domain) -> None:
    assert prediction.probabilities == [0.0] * domain.num_actions
    assert prediction.events == prediction.optional_events == []
    assert not prediction.is_no_user_prediction


# ------------------------------------------------------------------------- is_negative


@pytest.mark.parametrize(
    "text",
    [
        "垃圾服务",
        "真是气死我了",
        "你们太差了",
        "This is TERRIBLE!",
        "worst shop ever",
        "ＴＥＲＲＩＢＬＥ",
        "我不想说，但你们太差了",
        "不垃圾，但是气死我了",
        "not really terrible",
        "我的order太差了",
    ],
)
def test_negative_texts(text: str) -> None:
    assert is_negative(text, WORDS, NEGATIONS)


@pytest.mark.parametrize(
    "text",
    [
        "你好",
        "不垃圾",
        "这个不是垃圾",
        "没太差",
        "这个不是很垃圾",
        "not terrible at all",
        "It isn't terrible",
        "I never angry",
        "terribly sorry",
        "angrywords",
        "",
    ],
)
def test_neutral_or_negated_texts(text: str) -> None:
    assert not is_negative(text, WORDS, NEGATIONS)


def test_negation_must_touch_the_word() -> None:
    # punctuation between the negation and the word: the negation speaks of something else
    assert is_negative("不，垃圾", WORDS, NEGATIONS)
    # three letters between the negation and the word is too far
    assert is_negative("不知道真垃圾", WORDS, NEGATIONS)
    # the negation must be the word right before in English
    assert is_negative("not the worst", WORDS, NEGATIONS)
    assert not is_negative("don't angry", WORDS, NEGATIONS)


def test_no_negations_configured() -> None:
    assert is_negative("不垃圾", WORDS, Words())


# ------------------------------------------------------------------------- negative streak


def test_streak_met(policy: HandoffTriggerPolicy, domain: Domain) -> None:
    t = tracker(domain, *session_start(), *messages(NEGATIVE, ANGRY, "垃圾"))
    assert_handoff(policy.predict_action_probabilities(t, domain), domain, "negative_sentiment")


def test_streak_not_met(policy: HandoffTriggerPolicy, domain: Domain) -> None:
    t = tracker(domain, *session_start(), *messages(NEGATIVE, ANGRY))
    assert_abstains(policy.predict_action_probabilities(t, domain), domain)


def test_streak_broken_by_a_neutral_message(policy: HandoffTriggerPolicy, domain: Domain) -> None:
    t = tracker(domain, *session_start(), *messages(NEGATIVE, NEUTRAL, ANGRY, NEGATIVE))
    assert_abstains(policy.predict_action_probabilities(t, domain), domain)
    t = tracker(domain, *session_start(), *messages(NEUTRAL, NEGATIVE, ANGRY, NEGATIVE))
    assert_handoff(policy.predict_action_probabilities(t, domain), domain, "negative_sentiment")


def test_negated_words_do_not_count(policy: HandoffTriggerPolicy, domain: Domain) -> None:
    t = tracker(domain, *session_start(), *messages(NEGATIVE, "这个不是垃圾", "not angry"))
    assert_abstains(policy.predict_action_probabilities(t, domain), domain)


def test_previous_handoff(policy: HandoffTriggerPolicy, domain: Domain) -> None:
    events = [*session_start(), *messages(NEGATIVE, ANGRY), *handoff(), user(NEGATIVE)]
    assert_abstains(policy.predict_action_probabilities(tracker(domain, *events), domain), domain)
    # three fresh negative messages after the hand-back count again
    events = [*events, *bot_turn(), *messages(ANGRY, NEGATIVE)]
    assert_handoff(
        policy.predict_action_probabilities(tracker(domain, *events), domain),
        domain,
        "negative_sentiment",
    )


def test_session_restart_resets_the_streak(policy: HandoffTriggerPolicy, domain: Domain) -> None:
    old = [*session_start(), *messages(NEGATIVE, ANGRY), *bot_turn()]
    t = tracker(domain, *old, *session_start(), user(NEGATIVE))
    assert_abstains(policy.predict_action_probabilities(t, domain), domain)
    t = tracker(domain, *old, Restarted(), ActionExecuted(ACTION_LISTEN_NAME), user(NEGATIVE))
    assert_abstains(policy.predict_action_probabilities(t, domain), domain)


def test_only_right_after_a_customer_message(policy: HandoffTriggerPolicy, domain: Domain) -> None:
    events = [*session_start(), *messages(NEGATIVE, ANGRY, NEGATIVE)]
    after_bot_action = tracker(domain, *events, ActionExecuted("utter_sorry"))
    assert_abstains(policy.predict_action_probabilities(after_bot_action, domain), domain)
    # slots set by the slot mappings after the message do not hide it
    with_slot = tracker(domain, *events, SlotSet("handoff_reason", None))
    assert policy.predict_action_probabilities(with_slot, domain).max_confidence == 1.0


def test_paused_conversation(policy: HandoffTriggerPolicy, domain: Domain) -> None:
    events = [*session_start(), *messages(NEGATIVE, ANGRY), *bot_turn()]
    t = tracker(domain, *events, ConversationPaused(), user(NEGATIVE))
    assert_abstains(policy.predict_action_probabilities(t, domain), domain)


def test_restart_intent_and_external_events_are_ignored(
    policy: HandoffTriggerPolicy, domain: Domain
) -> None:
    events = [*session_start(), *messages(NEGATIVE, ANGRY), *bot_turn()]
    t = tracker(domain, *events, user("/restart 垃圾", intent="restart"))
    assert_abstains(policy.predict_action_probabilities(t, domain), domain)
    t = tracker(domain, *events, UserUttered.create_external("greet"))
    assert_abstains(policy.predict_action_probabilities(t, domain), domain)
    # an external event between customer messages neither counts nor breaks the streak
    external = [UserUttered.create_external("greet"), *bot_turn()]
    t = tracker(domain, *events, *external, user(NEGATIVE))
    assert_handoff(policy.predict_action_probabilities(t, domain), domain, "negative_sentiment")


# ------------------------------------------------------------------------- VIP


def test_vip_first_message(policy: HandoffTriggerPolicy, domain: Domain) -> None:
    t = tracker(domain, *session_start(vip=True), user("你好", intent="greet"))
    assert_handoff(policy.predict_action_probabilities(t, domain), domain, "vip_customer")


def test_not_vip(policy: HandoffTriggerPolicy, domain: Domain) -> None:
    t = tracker(domain, *session_start(), user("你好", intent="greet"))
    assert_abstains(policy.predict_action_probabilities(t, domain), domain)


def test_vip_after_handoff(policy: HandoffTriggerPolicy, domain: Domain) -> None:
    events = [*session_start(vip=True), user("你好", intent="greet"), *handoff(), user(NEUTRAL)]
    assert_abstains(policy.predict_action_probabilities(tracker(domain, *events), domain), domain)


def test_vip_disabled(tmp_path: Path, domain: Domain) -> None:
    policy = make_policy(write_handoff_file(tmp_path, vip=False))
    t = tracker(domain, *session_start(vip=True), user("你好", intent="greet"))
    assert_abstains(policy.predict_action_probabilities(t, domain), domain)


def test_negative_streak_wins_over_vip(policy: HandoffTriggerPolicy, domain: Domain) -> None:
    t = tracker(domain, *session_start(vip=True), *messages(NEGATIVE, ANGRY, NEGATIVE))
    assert_handoff(policy.predict_action_probabilities(t, domain), domain, "negative_sentiment")


# ------------------------------------------------------------------------- domain


@pytest.mark.parametrize(
    "domain_yml",
    [
        DOMAIN_YML.replace("actions: [action_handoff]", "actions: []"),
        DOMAIN_YML.replace("handoff_reason:", "other_reason:"),
    ],
    ids=["no-action", "no-reason-slot"],
)
def test_incomplete_domain_abstains(policy: HandoffTriggerPolicy, domain_yml: str) -> None:
    domain = Domain.from_yaml(domain_yml)
    t = tracker(domain, *session_start(vip=True), *messages(NEGATIVE, ANGRY, NEGATIVE))
    assert_abstains(policy.predict_action_probabilities(t, domain), domain)


def test_vip_without_the_vip_slot(policy: HandoffTriggerPolicy) -> None:
    domain = Domain.from_yaml(DOMAIN_YML.replace("customer_vip:", "other_flag:"))
    t = tracker(domain, *session_start(), user("你好", intent="greet"))
    assert_abstains(policy.predict_action_probabilities(t, domain), domain)


def test_other_handoff_action(tmp_path: Path) -> None:
    domain = Domain.from_yaml(DOMAIN_YML.replace("[action_handoff]", "[action_agent]"))
    policy = make_policy(write_handoff_file(tmp_path), handoff_action="action_agent")
    t = tracker(domain, *session_start(), *messages(NEGATIVE, ANGRY, NEGATIVE))
    prediction = policy.predict_action_probabilities(t, domain)
    assert prediction.max_confidence_index == domain.index_for_action("action_agent")


# ------------------------------------------------------------------------- ensemble


def test_wins_a_tie_with_rules_and_forms(policy: HandoffTriggerPolicy, domain: Domain) -> None:
    t = tracker(domain, *session_start(), *messages(NEGATIVE, ANGRY, NEGATIVE))
    sorry = confidence_scores_for("utter_sorry", 1.0, domain)
    for is_no_user_prediction in (False, True):  # a rule, a form's happy path
        rule = PolicyPrediction(
            list(sorry),
            "RulePolicy",
            RULE_POLICY_PRIORITY,
            is_no_user_prediction=is_no_user_prediction,
        )
        ours = policy.predict_action_probabilities(t, domain)
        best = DefaultPolicyPredictionEnsemble().combine_predictions([rule, ours], t, domain)
        assert best.policy_name == "HandoffTriggerPolicy"
        assert SlotSet("handoff_reason", "negative_sentiment") in best.events


def test_abstaining_leaves_the_rules_alone(policy: HandoffTriggerPolicy, domain: Domain) -> None:
    t = tracker(domain, *session_start(), user(NEUTRAL))
    rule = PolicyPrediction(
        confidence_scores_for("utter_sorry", 1.0, domain), "RulePolicy", RULE_POLICY_PRIORITY
    )
    ours = policy.predict_action_probabilities(t, domain)
    best = DefaultPolicyPredictionEnsemble().combine_predictions([rule, ours], t, domain)
    assert best.policy_name == "RulePolicy"
    assert not any(isinstance(event, SlotSet) for event in best.events)


# ------------------------------------------------------------------------- the handoff file


def test_reads_the_triggers(tmp_path: Path) -> None:
    triggers = load_triggers(write_handoff_file(tmp_path))
    assert triggers.streak == 3
    assert triggers.words == WORDS
    assert triggers.negations == NEGATIONS
    assert triggers.vip_enabled is True


def test_repository_handoff_file_loads() -> None:
    path = Path("data/service/handoff.yml")
    if not path.exists():
        pytest.skip("data/service/handoff.yml is not written yet")
    triggers = load_triggers(path)
    assert triggers.streak >= 1
    assert triggers.words.zh or triggers.words.en


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(HandoffFileError, match=r"missing\.yml: the handoff file was not found"):
        make_policy(tmp_path / "missing.yml")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("streak: 3", "streak: three", r"negative_sentiment\.streak' must be a whole number"),
        ("streak: 3", "streak: 0", r"at least 1 \(found 0\)"),
        ("never]\n  vip", "no]\n  vip", r"negations\.en\[2\]'.*quote words"),
        ("      en: [terrible", "      EN: [terrible", r"unknown language 'EN'"),
        ("    enabled: true", "    enabled: maybe", r"vip\.enabled' must be true or false"),
        ("  vip:\n    enabled: true\n", "", r"vip\.enabled' must be true or false"),
        ("  negative_sentiment:\n", "  sentiment:\n", r"negative_sentiment' must be a mapping"),
        ("version: 1", "version: 2", r"'version' 2 is not supported"),
        ("streak: 3", "streak: [3", "not valid YAML"),
    ],
)
def test_malformed_file(tmp_path: Path, old: str, new: str, message: str) -> None:
    path = write_handoff_file(tmp_path)
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(HandoffFileError, match=message):
        load_triggers(path)


def test_no_words_at_all(tmp_path: Path) -> None:
    path = write_handoff_file(tmp_path)
    text = path.read_text(encoding="utf-8")
    text = text.replace("[垃圾, 气死, 太差]", "[]").replace("[terrible, angry, worst]", "[]")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(HandoffFileError, match="at least one word"):
        load_triggers(path)


def test_tolerant_reading(tmp_path: Path) -> None:
    path = tmp_path / "handoff.yml"
    path.write_text(
        "triggers:\n"
        "  negative_sentiment: {streak: 2, words: {zh: 垃圾, en: [12315, ' ']}}\n"
        "  vip: false\n"
        "  something_new: 1\n",
        encoding="utf-8",
    )
    triggers = load_triggers(path)
    assert triggers.words == Words(zh=("垃圾",), en=("12315",))
    assert triggers.negations == Words()
    assert triggers.vip_enabled is False


def test_invalid_handoff_action(tmp_path: Path) -> None:
    with pytest.raises(InvalidPolicyConfig, match="handoff_action"):
        make_policy(write_handoff_file(tmp_path), handoff_action="")


# ------------------------------------------------------------------------- model storage


def recipe_config(handoff_file: Path) -> GraphModelConfiguration:
    config = {
        "recipe": "default.v1",
        "language": "zh",
        "policies": [
            {"name": "RulePolicy"},
            {"name": POLICY_NAME, "policy_file": str(handoff_file)},
        ],
    }
    recipe = Recipe.recipe_for_name(DefaultV1Recipe.name)
    return recipe.graph_config_for_recipe(config, {}, training_type=TrainingType.CORE)


def test_the_recipe_builds_a_valid_graph(tmp_path: Path) -> None:
    model_config = recipe_config(write_handoff_file(tmp_path))
    rasa.engine.validation.validate(model_config)
    train_node = model_config.train_schema.nodes[f"train_{POLICY_NAME}1"]
    run_node = model_config.predict_schema.nodes[f"run_{POLICY_NAME}1"]
    assert (train_node.fn, train_node.constructor_name) == ("train", "create")
    assert (run_node.fn, run_node.constructor_name) == ("predict_action_probabilities", "load")
    assert run_node.resource == Resource(f"train_{POLICY_NAME}1")


def test_round_trip_through_a_model_archive(tmp_path: Path, domain: Domain) -> None:
    handoff_file = write_handoff_file(tmp_path)
    for directory in ("train", "run"):
        (tmp_path / directory).mkdir()
    storage = LocalModelStorage.create(tmp_path / "train")
    created = make_policy(handoff_file, storage)
    resource = created.train([], domain)
    archive = tmp_path / "model.tar.gz"
    storage.create_model_package(archive, recipe_config(handoff_file), domain)

    run_storage, _ = LocalModelStorage.from_model_archive(tmp_path / "run", archive)
    with run_storage.read_from(resource) as directory:
        record = json.loads((directory / PERSISTED_FILE).read_text(encoding="utf-8"))
    assert record == {"policy_file": str(handoff_file), "handoff_action": "action_handoff"}

    config = {**HandoffTriggerPolicy.get_default_config(), "policy_file": str(handoff_file)}
    context = ExecutionContext(GraphSchema({}), node_name=f"run_{POLICY_NAME}1")
    loaded = HandoffTriggerPolicy.load(config, run_storage, resource, context)
    assert loaded.triggers == created.triggers
    assert loaded.priority == RULE_POLICY_PRIORITY + 1
    t = tracker(domain, *session_start(), *messages(NEGATIVE, ANGRY, NEGATIVE))
    assert loaded.predict_action_probabilities(t, domain) == created.predict_action_probabilities(
        t, domain
    )


def test_loads_without_persisted_data(tmp_path: Path) -> None:
    # models trained before `persist` wrote anything, or a cache that skipped the resource
    storage = LocalModelStorage(tmp_path / "model")
    config = {
        **HandoffTriggerPolicy.get_default_config(),
        "policy_file": str(write_handoff_file(tmp_path)),
    }
    context = ExecutionContext(GraphSchema({}), node_name=f"run_{POLICY_NAME}1")
    loaded = HandoffTriggerPolicy.load(config, storage, Resource("never_written"), context)
    assert loaded.triggers.streak == 3
