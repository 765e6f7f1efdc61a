"""UniversalSentenceEncoderFeaturizer: shapes, languages, empty input, cache, persistence."""

import asyncio
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.recipes.recipe import Recipe
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.data import TrainingType
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from rasa_addons.nlu import use_featurizer
from rasa_addons.nlu.tokenizer import KefuJiebaTokenizer
from rasa_addons.nlu.use_featurizer import DIMENSIONS, UniversalSentenceEncoderFeaturizer

ROOT = Path(__file__).resolve().parents[4]
FEATURIZER = "rasa_addons.nlu.use_featurizer.UniversalSentenceEncoderFeaturizer"
TOKENIZER = "rasa_addons.nlu.tokenizer.KefuJiebaTokenizer"
"""The names config.yml uses for the two components."""

ZH, EN, UNRELATED = "我的订单到哪了", "where is my order", "今天天气怎么样"
NUMERIC_OPTIONS = ("threads", "token_cache_size", "batch_size")

MakeMessage = Callable[[str], Message]

slow = pytest.mark.slow
"""Trains a tiny Rasa model (TensorFlow); still part of `make test-unit`."""


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> KefuJiebaTokenizer:
    config = {
        **KefuJiebaTokenizer.get_default_config(),
        "dictionary_path": str(ROOT / "data/jieba"),
    }
    return KefuJiebaTokenizer.create(
        config,
        LocalModelStorage(tmp_path_factory.mktemp("tokenizer")),
        Resource("tokenizer"),
        ExecutionContext(GraphSchema({}), node_name="tokenizer"),
    )


def make_featurizer(**options: Any) -> UniversalSentenceEncoderFeaturizer:
    """A featurizer with the default config plus `options` (a fresh token cache)."""
    config = {**UniversalSentenceEncoderFeaturizer.get_default_config(), **options}
    return UniversalSentenceEncoderFeaturizer.create(
        config,
        None,  # type: ignore[arg-type]  # the featurizer stores nothing
        Resource("use"),
        ExecutionContext(GraphSchema({}), node_name="use"),
    )


@pytest.fixture(scope="module")
def featurizer() -> UniversalSentenceEncoderFeaturizer:
    return make_featurizer()


@pytest.fixture
def make_message(tokenizer: KefuJiebaTokenizer) -> MakeMessage:
    """Messages tokenized by the real tokenizer, as in the pipeline."""

    def make(text: str) -> Message:
        message = Message(data={TEXT: text})
        tokenizer.process([message])
        return message

    return make


def dense(message: Message) -> tuple[np.ndarray, np.ndarray]:
    """(sequence, sentence) feature matrices of the message's text."""
    sequence, sentence = message.get_dense_features(TEXT, [])
    assert sequence is not None and sentence is not None
    return sequence.features, sentence.features


def token_count(message: Message) -> int:
    return len(message.get(TOKENS_NAMES[TEXT]))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("text", [ZH, EN], ids=["zh", "en"])
def test_sentence_and_sequence_shapes(
    featurizer: UniversalSentenceEncoderFeaturizer, make_message: MakeMessage, text: str
) -> None:
    message = make_message(text)
    assert token_count(message) > 1
    featurizer.process([message])
    sequence, sentence = dense(message)
    assert sentence.shape == (1, DIMENSIONS)
    assert sequence.shape == (token_count(message), DIMENSIONS)
    for matrix in (sequence, sentence):
        assert np.issubdtype(matrix.dtype, np.floating)
        assert np.isfinite(matrix).all()
        assert (np.linalg.norm(matrix, axis=1) > 0.1).all()  # no zero rows
    assert np.linalg.norm(sentence) == pytest.approx(1.0, abs=1e-3)


def test_a_translation_is_closer_than_an_unrelated_sentence(
    featurizer: UniversalSentenceEncoderFeaturizer, make_message: MakeMessage
) -> None:
    messages = [make_message(t) for t in (ZH, EN, UNRELATED)]
    featurizer.process(messages)
    zh, en, unrelated = (dense(m)[1][0] for m in messages)
    assert cosine(zh, en) > cosine(zh, unrelated) + 0.2
    assert cosine(zh, en) > cosine(en, unrelated) + 0.2


@pytest.mark.parametrize("text", ["", "   ", "\n\t "], ids=["empty", "spaces", "blanks"])
def test_empty_and_blank_text_get_no_features(
    featurizer: UniversalSentenceEncoderFeaturizer, make_message: MakeMessage, text: str
) -> None:
    message = make_message(text)
    assert token_count(message) == 0
    featurizer.process([message])
    assert not message.features_present(TEXT, [])
    assert message.get_dense_features(TEXT, []) == (None, None)


def test_training_data_with_empty_and_textless_examples(
    featurizer: UniversalSentenceEncoderFeaturizer, make_message: MakeMessage
) -> None:
    full, blank = make_message(EN), make_message("  ")
    intent_only = Message(data={"intent": "greet"})
    featurizer.process_training_data(TrainingData([full, blank, intent_only]))
    assert dense(full)[1].shape == (1, DIMENSIONS)
    assert not blank.features_present(TEXT, [])
    assert not intent_only.features_present(TEXT, [])


def test_process_and_process_training_data_agree(make_message: MakeMessage) -> None:
    # Separate featurizers, so neither reuses the other's cached token vectors.
    trained = [make_message(t) for t in (ZH, "hello there", EN)]
    make_featurizer().process_training_data(TrainingData(trained))
    parsed = [make_message(ZH), make_message(EN)]
    make_featurizer().process(parsed)
    for a, b in zip((trained[0], trained[2]), parsed, strict=True):
        assert [(f.type, f.origin) for f in a.features] == [(f.type, f.origin) for f in b.features]
        for x, y in zip(dense(a), dense(b), strict=True):
            np.testing.assert_allclose(x, y, rtol=0, atol=1e-6)


class RecordingEncoder:
    """Wraps the real encoder and remembers every text it was asked to encode."""

    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder
        self.texts: list[str] = []

    def encode(self, texts: list[str]) -> Any:
        self.texts += texts
        return self.encoder.encode(texts)

    def count(self, text: str) -> int:
        return self.texts.count(text)


@pytest.fixture
def encoder(monkeypatch: pytest.MonkeyPatch) -> RecordingEncoder:
    recorder = RecordingEncoder(use_featurizer.load_encoder(2))
    monkeypatch.setattr(use_featurizer, "load_encoder", lambda threads: recorder)
    return recorder


def test_token_vectors_are_cached(encoder: RecordingEncoder, make_message: MakeMessage) -> None:
    featurizer = make_featurizer()
    featurizer.process([make_message("alpha beta")])
    featurizer.process([make_message("beta alpha")])
    # Each sentence is encoded; each word only the first time.
    assert encoder.count("alpha beta") == encoder.count("beta alpha") == 1
    assert encoder.count("alpha") == encoder.count("beta") == 1
    assert featurizer.token_cache_size() == 2


def test_token_cache_is_bounded_and_least_recently_used(
    encoder: RecordingEncoder, make_message: MakeMessage
) -> None:
    featurizer = make_featurizer(token_cache_size=3)
    for text in ("alpha beta gamma", "alpha delta", "alpha gamma", "beta alpha"):
        featurizer.process([make_message(text)])
        assert featurizer.token_cache_size() <= 3
    # "alpha delta" evicted beta (alpha had just been used), so only beta came back.
    assert [encoder.count(w) for w in ("alpha", "beta", "gamma", "delta")] == [1, 2, 1, 1]


def test_a_message_longer_than_the_cache(
    encoder: RecordingEncoder, make_message: MakeMessage
) -> None:
    featurizer = make_featurizer(token_cache_size=2)
    message = make_message("one two three four five")
    featurizer.process([message])
    assert dense(message)[0].shape == (5, DIMENSIONS)
    assert featurizer.token_cache_size() == 2


@pytest.mark.parametrize("value", [0, -1])
@pytest.mark.parametrize("option", NUMERIC_OPTIONS)
def test_validate_config_rejects_non_positive_options(option: str, value: int) -> None:
    config = {**UniversalSentenceEncoderFeaturizer.get_default_config(), option: value}
    with pytest.raises(ValueError, match=option):
        UniversalSentenceEncoderFeaturizer.validate_config(config)
    with pytest.raises(ValueError, match=option):
        make_featurizer(**{option: value})


def test_validate_config_accepts_the_defaults() -> None:
    UniversalSentenceEncoderFeaturizer.validate_config(
        UniversalSentenceEncoderFeaturizer.get_default_config()
    )


def tiny_config(**featurizer_options: Any) -> dict[str, Any]:
    """The small NLU pipeline of these tests, as config.yml would give it."""
    return {
        "recipe": "default.v1",
        "language": "zh",
        "assistant_id": "featurizer-test",
        "pipeline": [
            {"name": TOKENIZER, "dictionary_path": str(ROOT / "data/jieba")},
            {"name": FEATURIZER, **featurizer_options},
            {
                "name": "DIETClassifier",
                "epochs": 5,
                "learning_rate": 0.01,
                "constrain_similarities": True,
                "number_of_transformer_layers": 0,
                "entity_recognition": False,
                "random_seed": 42,
            },
        ],
        "policies": [],
    }


def test_the_default_recipe_knows_the_config_name() -> None:
    recipe = Recipe.recipe_for_name("default.v1")
    graphs = recipe.graph_config_for_recipe(tiny_config(), {}, training_type=TrainingType.NLU)
    train = [
        n
        for n in graphs.train_schema.nodes.values()
        if n.uses is UniversalSentenceEncoderFeaturizer
    ]
    predict = [
        n
        for n in graphs.predict_schema.nodes.values()
        if n.uses is UniversalSentenceEncoderFeaturizer
    ]
    # Not trainable: one node each, featurizing the training data and the incoming messages.
    assert [n.fn for n in train] == ["process_training_data"]
    assert [n.fn for n in predict] == ["process"]


# ---------------------------------------------------------------- a real model (slow)

EXAMPLES = {
    "order_status": [ZH, "我的快递什么时候到", EN, "track my package"],
    "refund": ["我要退款", "怎么退货", "i want a refund", "how do i return this"],
    "greet": ["你好", "早上好", "hello", "good morning"],
}


def write_nlu_data(path: Path) -> Path:
    lines = ['version: "3.1"', "nlu:"]
    for intent, texts in EXAMPLES.items():
        lines += [f"- intent: {intent}", "  examples: |"]
        lines += [f"    - {text}" for text in texts]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_config(path: Path) -> Path:
    import yaml

    config = tiny_config(token_cache_size=1000)
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


class TrainedModels:
    """Trains into one directory and Rasa cache; counts the featurizer's training runs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = write_config(root / "config.yml")
        self.data = write_nlu_data(root / "nlu.yml")
        self.featurized = 0

    def train(self, name: str) -> Path:
        from rasa.model_training import train_nlu

        models, original = self, UniversalSentenceEncoderFeaturizer.process_training_data

        # Rasa reads a node's inputs from the type hints: `self` must stay unannotated.
        def counting(self, training_data: TrainingData) -> TrainingData:
            models.featurized += 1
            return original(self, training_data)

        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("RASA_CACHE_DIRECTORY", str(self.root / "cache"))
            patch.setattr(UniversalSentenceEncoderFeaturizer, "process_training_data", counting)
            model = train_nlu(str(self.config), str(self.data), str(self.root / "models"), name)
        assert model is not None
        return Path(model)

    def cache_entries(self) -> int:
        with closing(sqlite3.connect(self.root / "cache" / "cache.db")) as db:
            return int(db.execute("select count(*) from cache_entry").fetchone()[0])


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> TrainedModels:
    return TrainedModels(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def first_model(models: TrainedModels) -> Path:
    model = models.train("first")
    assert models.featurized == 1
    return model


@slow
def test_a_trained_model_loads_and_classifies(first_model: Path) -> None:
    from rasa.core.agent import Agent

    agent = Agent.load(str(first_model))
    nodes = agent.processor.model_metadata.predict_schema.nodes.values()
    featurizers = [n for n in nodes if n.uses is UniversalSentenceEncoderFeaturizer]
    assert [n.config["token_cache_size"] for n in featurizers] == [1000]

    for text, intent in ((ZH, "order_status"), ("i want a refund", "refund"), ("你好", "greet")):
        assert asyncio.run(agent.parse_message(text))["intent"]["name"] == intent


@slow
def test_training_again_reuses_the_training_cache(models: TrainedModels, first_model: Path) -> None:
    entries = models.cache_entries()
    assert entries > 0
    second = models.train("second")
    assert second.is_file() and second != first_model
    # Same data, same config: Rasa restores the result from its cache instead of
    # featurizing the training data again, and adds no new cache entries.
    assert models.featurized == 1
    assert models.cache_entries() == entries


@pytest.mark.parametrize("text", [ZH, EN], ids=["zh", "en"])
def test_token_vectors_off_adds_only_the_sentence_feature(
    featurizer: UniversalSentenceEncoderFeaturizer, make_message: MakeMessage, text: str
) -> None:
    without = make_featurizer(token_vectors=False)
    message, full = make_message(text), make_message(text)
    assert token_count(message) > 1
    without.process([message])
    featurizer.process([full])
    sequence, sentence = message.get_dense_features(TEXT, [])
    assert sequence is None and sentence is not None
    assert [f.type for f in message.features] == ["sentence"]
    assert sentence.features.shape == (1, DIMENSIONS)
    np.testing.assert_allclose(sentence.features, dense(full)[1], rtol=0, atol=1e-6)
    assert without.token_cache_size() == 0  # no word was encoded
