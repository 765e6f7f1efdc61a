"""LinearIntentClassifier on hand-made features: training, ranking, confidences, persistence."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from sklearn.feature_extraction.text import TfidfTransformer

from rasa_addons.nlu.linear_classifier import (
    LABELS_FILE,
    WEIGHTS_FILE,
    LinearIntentClassifier,
)

INTENTS = ("greet", "order_status", "refund")
WORDS_PER_INTENT = 3
SHARED_WORDS = 3
"""Sparse columns: three words of each intent, then three words every intent uses."""
SPARSE_WIDTH = WORDS_PER_INTENT * len(INTENTS) + SHARED_WORDS
DENSE_WIDTH = 8
SENTENCE = "sentence"
EXAMPLES_PER_INTENT = 6


def sparse_vector(intent: int, rng: np.random.Generator) -> np.ndarray:
    """Counts of the intent's own words plus one random shared word."""
    row = np.zeros((1, SPARSE_WIDTH))
    start = intent * WORDS_PER_INTENT
    row[0, start : start + WORDS_PER_INTENT] = rng.integers(0, 3, WORDS_PER_INTENT)
    row[0, start + rng.integers(WORDS_PER_INTENT)] += 1  # at least one own word
    row[0, SPARSE_WIDTH - SHARED_WORDS + rng.integers(SHARED_WORDS)] += 1
    return row


def dense_vector(intent: int, rng: np.random.Generator) -> np.ndarray:
    """The intent's unit direction plus a little noise, like a sentence embedding."""
    row = rng.normal(0, 0.1, (1, DENSE_WIDTH))
    row[0, intent] += 1.0
    return row / np.linalg.norm(row)


def message(
    text: str,
    intent: str | None = None,
    *,
    sparse: np.ndarray | None = None,
    dense: np.ndarray | None = None,
) -> Message:
    """A message with sentence-level features, as the count and USE featurizers add them."""
    data: dict[str, Any] = {TEXT: text}
    if intent is not None:
        data[INTENT] = intent
    result = Message(data=data)
    if sparse is not None:
        features = Features(scipy.sparse.coo_matrix(sparse), SENTENCE, TEXT, "CountVectors")
        result.add_features(features)
    if dense is not None:
        result.add_features(Features(dense.astype(np.float32), SENTENCE, TEXT, "USE"))
    return result


def examples(
    intents: tuple[str, ...] = INTENTS,
    *,
    per_intent: int = EXAMPLES_PER_INTENT,
    seed: int = 0,
    sparse: bool = True,
    dense: bool = True,
    labelled: bool = True,
) -> list[Message]:
    """`per_intent` separable messages of each intent (labelled for training or not)."""
    rng = np.random.default_rng(seed)
    return [
        message(
            f"{name} {i}",
            name if labelled else None,
            sparse=sparse_vector(k, rng) if sparse else None,
            dense=dense_vector(k, rng) if dense else None,
        )
        for k, name in enumerate(intents)
        for i in range(per_intent)
    ]


def expected_intents(intents: tuple[str, ...] = INTENTS) -> list[str]:
    return [name for name in intents for _ in range(EXAMPLES_PER_INTENT)]


def far_messages() -> list[Message]:
    """Unlike every intent: all-zero features, and the dense vector opposite to all intents."""
    opposite = np.zeros((1, DENSE_WIDTH))
    opposite[0, : len(INTENTS)] = -1.0
    return [
        message("zeros", sparse=np.zeros((1, SPARSE_WIDTH)), dense=np.zeros((1, DENSE_WIDTH))),
        message(
            "opposite",
            sparse=np.zeros((1, SPARSE_WIDTH)),
            dense=opposite / np.linalg.norm(opposite),
        ),
    ]


RESOURCE = Resource("linear_intent_classifier")
CONTEXT = ExecutionContext(GraphSchema({}), node_name="linear_intent_classifier")


@pytest.fixture
def storage(tmp_path: Path) -> LocalModelStorage:
    return LocalModelStorage(tmp_path)


def config(**options: Any) -> dict[str, Any]:
    return {**LinearIntentClassifier.get_default_config(), **options}


def create(storage: LocalModelStorage, **options: Any) -> LinearIntentClassifier:
    return LinearIntentClassifier.create(config(**options), storage, RESOURCE, CONTEXT)


def load(storage: LocalModelStorage, **options: Any) -> LinearIntentClassifier:
    return LinearIntentClassifier.load(config(**options), storage, RESOURCE, CONTEXT)


def train(
    storage: LocalModelStorage, messages: list[Message], **options: Any
) -> LinearIntentClassifier:
    classifier = create(storage, **options)
    assert classifier.train(TrainingData(messages)) == RESOURCE
    return classifier


def predicted(messages: list[Message]) -> list[str]:
    return [m.get(INTENT)[INTENT_NAME_KEY] for m in messages]


def top_confidences(messages: list[Message]) -> list[float]:
    return [m.get(INTENT)[PREDICTED_CONFIDENCE_KEY] for m in messages]


def stored_files(storage: LocalModelStorage) -> Path:
    with storage.read_from(RESOURCE) as directory:
        return Path(directory)


@pytest.fixture
def trained(storage: LocalModelStorage) -> LinearIntentClassifier:
    return train(storage, examples())


# ---------------------------------------------------------------- training and prediction


def test_predicts_the_intents_of_separable_data(trained: LinearIntentClassifier) -> None:
    assert trained.labels == sorted(INTENTS)
    unseen = examples(seed=1, labelled=False)
    assert trained.process(unseen) is unseen
    assert predicted(unseen) == expected_intents()
    assert min(top_confidences(unseen)) > 0.5


@pytest.mark.parametrize("ranking_length", [1, 2, 10])
def test_intent_ranking_is_sorted_and_bounded(
    storage: LocalModelStorage, ranking_length: int
) -> None:
    classifier = train(storage, examples(), ranking_length=ranking_length)
    messages = examples(seed=2, labelled=False) + far_messages()
    classifier.process(messages)
    for parsed in messages:
        ranking = parsed.get(INTENT_RANKING_KEY)
        confidences = [entry[PREDICTED_CONFIDENCE_KEY] for entry in ranking]
        names = [entry[INTENT_NAME_KEY] for entry in ranking]
        assert len(ranking) == min(ranking_length, len(INTENTS))
        assert confidences == sorted(confidences, reverse=True)
        assert all(0.0 <= c <= 1.0 for c in confidences)
        assert all(isinstance(c, float) for c in confidences)
        assert len(set(names)) == len(names) and set(names) <= set(INTENTS)
        assert parsed.get(INTENT) == ranking[0]
    # The ranking and the intent reach Rasa's parse output.
    assert {INTENT, INTENT_RANKING_KEY} <= set(messages[0].as_dict_nlu())


def test_a_message_unlike_every_intent_gets_a_lower_confidence(
    storage: LocalModelStorage,
) -> None:
    # On this toy data a blank message scores about 0 and training-like ones about 1.
    trained = train(storage, examples(), out_of_scope_score=0.5)
    like_training = examples(seed=3, labelled=False)
    far = far_messages()
    trained.process(like_training + far)
    lowest_known = min(top_confidences(like_training))
    for confidence in top_confidences(far):
        assert confidence < 0.5
        assert confidence < lowest_known - 0.3


def test_the_top_confidence_is_one_half_at_the_out_of_scope_score(
    trained: LinearIntentClassifier,
) -> None:
    message = examples(seed=6, labelled=False)[0]
    best = trained.confidences([message])[0]
    columns, values = trained._row(message)
    score = float(np.max(trained._weights[:, columns] @ values + trained._bias))
    shifted = train(trained._model_storage, examples(), out_of_scope_score=score)
    assert shifted.confidences([message])[0].max() == pytest.approx(0.5, abs=1e-4)
    assert best.max() > 0.5


def test_two_intents(storage: LocalModelStorage) -> None:
    two = INTENTS[:2]
    classifier = train(storage, examples(two))
    assert classifier.labels == list(two)
    unseen = examples(two, seed=4, labelled=False)
    classifier.process(unseen)
    assert predicted(unseen) == expected_intents(two)
    assert min(top_confidences(unseen)) > 0.5
    for parsed in unseen:
        assert [e[INTENT_NAME_KEY] for e in parsed.get(INTENT_RANKING_KEY)] in (
            list(two),
            list(reversed(two)),
        )
    # Loaded back, the two mirrored rows give the same answers.
    again = examples(two, seed=4, labelled=False)
    load(storage).process(again)
    assert [m.get(INTENT_RANKING_KEY) for m in again] == [m.get(INTENT_RANKING_KEY) for m in unseen]


def assert_unclassified(message: Message) -> None:
    """What Rasa's own classifiers set when they cannot classify (FallbackClassifier needs it)."""
    assert message.get(INTENT) == {INTENT_NAME_KEY: None, PREDICTED_CONFIDENCE_KEY: 0.0}
    assert message.get(INTENT_RANKING_KEY) == []


def test_one_intent_stays_untrained(storage: LocalModelStorage) -> None:
    classifier = train(storage, examples(INTENTS[:1]))
    assert classifier.labels == []
    unseen = examples(INTENTS[:1], seed=5, labelled=False)
    assert classifier.process(unseen) is unseen
    for message in unseen:
        assert_unclassified(message)
    # Nothing was persisted, so the loaded classifier is untrained too.
    reloaded = examples(INTENTS[:1], seed=5, labelled=False)
    load(storage).process(reloaded)
    for message in reloaded:
        assert_unclassified(message)


# ---------------------------------------------------------------- persistence


@pytest.mark.parametrize("tf_idf", [True, False], ids=["tf_idf", "counts"])
def test_persist_and_load_give_identical_confidences(
    storage: LocalModelStorage, tf_idf: bool
) -> None:
    classifier = train(storage, examples(), tf_idf=tf_idf)
    loaded = load(storage, tf_idf=tf_idf)
    assert loaded.labels == classifier.labels
    messages = examples(seed=6, labelled=False) + far_messages()
    np.testing.assert_array_equal(loaded.confidences(messages), classifier.confidences(messages))
    if tf_idf:
        assert classifier._idf is not None and loaded._idf is not None
        np.testing.assert_array_equal(loaded._idf, classifier._idf)
    else:
        assert classifier._idf is None and loaded._idf is None

    first, second = examples(seed=6, labelled=False), examples(seed=6, labelled=False)
    classifier.process(first)
    loaded.process(second)
    assert [m.get(INTENT_RANKING_KEY) for m in first] == [m.get(INTENT_RANKING_KEY) for m in second]


@pytest.mark.parametrize("tf_idf", [True, False], ids=["tf_idf", "counts"])
def test_persisted_as_plain_arrays_and_json(storage: LocalModelStorage, tf_idf: bool) -> None:
    train(storage, examples(), tf_idf=tf_idf)
    directory = stored_files(storage)
    assert json.loads((directory / LABELS_FILE).read_text()) == sorted(INTENTS)
    with np.load(directory / WEIGHTS_FILE, allow_pickle=False) as arrays:
        expected = {"weights", "bias"} | ({"idf"} if tf_idf else set())
        assert set(arrays.files) == expected
        width = SPARSE_WIDTH + DENSE_WIDTH
        assert arrays["weights"].shape == (len(INTENTS), width)
        assert arrays["bias"].shape == (len(INTENTS),)
        if tf_idf:
            assert arrays["idf"].shape == (SPARSE_WIDTH,)
            # The smoothed idf of scikit-learn's TfidfTransformer.
            counts = scipy.sparse.vstack(
                [m.get_sparse_features(TEXT)[1].features for m in examples()]
            )
            expected_idf = TfidfTransformer(smooth_idf=True).fit(counts).idf_
            np.testing.assert_allclose(arrays["idf"], expected_idf, rtol=1e-6)


def test_load_with_nothing_persisted_is_untrained(storage: LocalModelStorage) -> None:
    classifier = load(storage)
    assert classifier.labels == []
    unseen = examples(seed=7, labelled=False)
    assert classifier.process(unseen) is unseen
    for message in unseen:
        assert_unclassified(message)


# ---------------------------------------------------------------- inputs


@pytest.mark.parametrize(
    "empty",
    [
        Message(data={TEXT: ""}),
        Message(data={}),
        Message(data={INTENT: "greet"}),
    ],
    ids=["empty-text", "no-text", "intent-only"],
)
def test_messages_without_text_are_unclassified(
    trained: LinearIntentClassifier, empty: Message
) -> None:
    trained.process([empty])
    assert_unclassified(empty)
    # Next to a real message too.
    real = examples(INTENTS[:1], per_intent=1, seed=8, labelled=False)[0]
    trained.process([empty, real])
    assert_unclassified(empty)
    assert real.get(INTENT)[INTENT_NAME_KEY] == INTENTS[0]


def test_training_skips_examples_without_text(storage: LocalModelStorage) -> None:
    rng = np.random.default_rng(9)
    noise = [
        message("", "noise", sparse=sparse_vector(0, rng), dense=dense_vector(0, rng))
        for _ in range(3)
    ]
    classifier = train(storage, examples() + noise + [Message(data={INTENT: "noise"})])
    assert classifier.labels == sorted(INTENTS)


@pytest.mark.parametrize(
    ("sparse", "dense"), [(False, True), (True, False)], ids=["dense-only", "sparse-only"]
)
@pytest.mark.parametrize("tf_idf", [True, False], ids=["tf_idf", "counts"])
def test_dense_only_and_sparse_only_features(
    storage: LocalModelStorage, sparse: bool, dense: bool, tf_idf: bool
) -> None:
    classifier = train(storage, examples(sparse=sparse, dense=dense), tf_idf=tf_idf)
    assert (classifier._idf is not None) == (sparse and tf_idf)
    unseen = examples(seed=10, sparse=sparse, dense=dense, labelled=False)
    classifier.process(unseen)
    assert predicted(unseen) == expected_intents()
    again = examples(seed=10, sparse=sparse, dense=dense, labelled=False)
    load(storage, tf_idf=tf_idf).process(again)
    assert [m.get(INTENT_RANKING_KEY) for m in again] == [m.get(INTENT_RANKING_KEY) for m in unseen]


def test_tf_idf_off_predicts_too(storage: LocalModelStorage) -> None:
    classifier = train(storage, examples(), tf_idf=False)
    unseen = examples(seed=11, labelled=False)
    classifier.process(unseen)
    assert predicted(unseen) == expected_intents()
    assert classifier._idf is None


def test_dense_weight_zero_ignores_the_dense_vector(storage: LocalModelStorage) -> None:
    classifier = train(storage, examples(), dense_weight=0.0)
    unseen = examples(seed=12, labelled=False)
    classifier.process(unseen)
    assert predicted(unseen) == expected_intents()
    # Same sparse features, scrambled dense vectors: same confidences.
    scrambled = examples(seed=12, labelled=False)
    for parsed in scrambled:
        parsed.features = [f for f in parsed.features if f.origin != "USE"]
        parsed.add_features(Features(-np.ones((1, DENSE_WIDTH)), SENTENCE, TEXT, "USE"))
    np.testing.assert_allclose(
        classifier.confidences(scrambled), classifier.confidences(unseen), rtol=1e-6
    )


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("C", 0),
        ("C", -1.0),
        ("temperature", 0),
        ("temperature", -2.0),
        ("dense_weight", -0.1),
    ],
)
def test_validate_config_rejects_bad_values(
    storage: LocalModelStorage, option: str, value: float
) -> None:
    with pytest.raises(ValueError, match=option):
        LinearIntentClassifier.validate_config(config(**{option: value}))
    with pytest.raises(ValueError, match=option):
        create(storage, **{option: value})


def test_validate_config_accepts_the_defaults_and_zero_dense_weight() -> None:
    LinearIntentClassifier.validate_config(LinearIntentClassifier.get_default_config())
    LinearIntentClassifier.validate_config(config(dense_weight=0))


# ---------------------------------------------------------------- known bugs (reported)


def test_the_top_intent_is_the_best_scoring_one_even_when_capped(
    storage: LocalModelStorage,
) -> None:
    # Every score is below the margin: a and b nearly tie, c is far behind.
    classifier = LinearIntentClassifier(
        config(),
        storage,
        RESOURCE,
        labels=["a", "b", "c"],
        weights=np.zeros((3, DENSE_WIDTH), dtype=np.float32),
        bias=np.array([-1.0, -1.05, -3.0], dtype=np.float32),
    )
    parsed = message("far", dense=np.zeros((1, DENSE_WIDTH)))
    classifier.process([parsed])
    assert parsed.get(INTENT)[INTENT_NAME_KEY] == "a"
    assert parsed.get(INTENT)[PREDICTED_CONFIDENCE_KEY] < 0.1


def test_a_message_with_text_but_no_features_does_not_crash(
    trained: LinearIntentClassifier,
) -> None:
    # "   " has text but no tokens (the tokenizer drops blanks), so no featurizer adds any.
    blank = Message(data={TEXT: "   "})
    trained.process([blank])
