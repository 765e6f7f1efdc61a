from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from knowledge_index import (
    MODES,
    Calibrator,
    DenseIndex,
    HashingEncoder,
    KnowledgeIndex,
    LexicalIndex,
    Ranker,
    Tokenizer,
    decide,
    load_entries,
)
from knowledge_index.fusion import (
    COLUMN,
    CONTEXT,
    EVIDENCE,
    FEATURES,
    MODE_FEATURES,
    candidate_features,
    with_fused,
)


@pytest.fixture
def index(kb_dir: Path, encoder: HashingEncoder, tokenizer: Tokenizer) -> KnowledgeIndex:
    return KnowledgeIndex.build(load_entries(kb_dir), encoder, tokenizer, calibration_queries=200)


def test_tokenizer_uses_domain_dictionary_and_drops_punctuation(tokenizer: Tokenizer) -> None:
    tokens = tokenizer.tokenize("我的快递单号是多少？？ How MANY Cards!")
    assert "快递单号" in tokens  # from data/jieba/kefu.txt
    assert "？" not in tokens and "!" not in tokens and " " not in tokens
    assert "how" in tokens and "card" in tokens


def test_bm25_matches_hand_computation() -> None:
    docs = [["a", "b"], ["a", "c", "c"], ["d"]]
    lexical = LexicalIndex.build(docs, k1=1.2, b=0.75)
    avg = (2 + 3 + 1) / 3
    idf_c = math.log(1 + (3 - 1 + 0.5) / (1 + 0.5))
    expected = idf_c * 2 * 2.2 / (2 + 1.2 * (1 - 0.75 + 0.75 * 3 / avg))
    scores = lexical.scores(["c", "unknown"])
    assert scores[1] == pytest.approx(expected, rel=1e-5)
    assert scores[0] == 0 and scores[2] == 0
    assert lexical.terms(["c", "unknown"])[1] == 0.5


def _clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, dim))
    points = centres[rng.integers(0, 50, n)] + 0.6 * rng.normal(size=(n, dim))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def test_approximate_index_recall_against_exact() -> None:
    vectors = _clustered(4000, 64, 0)
    queries = _clustered(200, 64, 1)
    exact = DenseIndex.build(vectors, exact_limit=10_000)
    approximate = DenseIndex.build(vectors, exact_limit=1_000)
    assert (exact.kind, approximate.kind) == ("flat", "hnsw")
    k = 10
    _, truth = exact.search(queries, k)
    _, found = approximate.search(queries, k)
    recall = np.mean([len(set(t) & set(f)) / k for t, f in zip(truth, found, strict=True)])
    assert recall >= 0.95


def test_every_alt_question_maps_back_to_its_entry(index: KnowledgeIndex) -> None:
    for entry in index.entries:
        for question in entry.alt_questions:
            hits = index.search(question, 3)
            assert hits[0]["entry_id"] == entry.id
            assert hits[0]["question"] == question
            assert hits[0]["dense_score"] == pytest.approx(1.0, abs=1e-5)


def test_hits_are_per_entry_and_well_formed(index: KnowledgeIndex) -> None:
    for mode in MODES:
        hits = index.search("退款多久能到账", 5, mode)
        ids = [hit["entry_id"] for hit in hits]
        assert len(ids) == len(set(ids))
        assert all(0.0 <= hit["confidence"] <= 1.0 for hit in hits)
        assert set(hits[0]) >= {"entry_id", "score", "confidence", "question", "answer", "link"}
    assert index.search("退款多久能到账", 1)[0]["entry_id"] == "returns-refund-time"


def test_confidence_is_monotone_in_evidence() -> None:
    rng = np.random.default_rng(0)
    evidence = rng.uniform(0, 1, size=(300, len(EVIDENCE) + len(CONTEXT)))
    labels = evidence[:, COLUMN["cosine"]] + 0.3 * rng.normal(size=300) > 0.6
    ranker = Ranker.fit([(evidence[i : i + 10], 0) for i in range(0, 300, 10)])
    assert all(w >= 0 for w in ranker.weights)
    features = with_fused(evidence, ranker.scores(evidence))
    assert features.shape[1] == len(FEATURES)
    for mode in MODES:
        calibrator = Calibrator.fit(mode, features, labels)
        assert all(w >= 0 for w in calibrator.weights)
        base = np.full((1, len(FEATURES)), 0.5)
        for column in MODE_FEATURES[mode]:
            higher = base.copy()
            higher[0, column] = 0.9
            assert calibrator.confidence(higher)[0] >= calibrator.confidence(base)[0]


def test_stronger_match_gets_higher_fused_confidence() -> None:
    cos = np.array([0.9, 0.5])
    zero = np.zeros(2)
    evidence = candidate_features(cos, cos, cos, np.array([0.8, 0.2]), zero, 1.0, 0.0)
    ranker = Ranker.default()
    calibrator = Calibrator.default("hybrid")
    scores = ranker.scores(evidence)
    confidence = calibrator.confidence(with_fused(evidence, scores))
    assert scores[0] > scores[1] and confidence[0] > confidence[1]


def test_decision_bands(index: KnowledgeIndex) -> None:
    hits = index.search("运费怎么算", 5)
    assert decide(hits, 0.0, 0.0).band == "answer"
    suggest = decide(hits, 1.01, 0.0, max_suggestions=3, suggest_mass=0.0)
    assert suggest.band == "suggest" and len(suggest.hits) == 3
    assert decide(hits, 1.01, 1.01).band == "none"


def test_search_in_one_language_ranks_only_its_entries(index: KnowledgeIndex) -> None:
    everything = index.search("How do I return an item?", 6)
    assert {hit["language"] for hit in everything} == {"zh", "en"}
    english = index.search("How do I return an item?", 6, language="en")
    assert english[0]["entry_id"] == "returns-how-en"
    assert {hit["language"] for hit in english} == {"en"}
    chinese = index.search("退款多久能到账", 6, "lexical", language="zh")
    assert chinese and all(hit["language"] == "zh" for hit in chinese)


def test_training_rows_label_the_right_candidate(index: KnowledgeIndex) -> None:
    rows = index.training_rows(
        [("退款要几天才能到", "returns-refund-time"), ("火星天气", None)], top=3
    )
    assert set(rows) == set(MODES)
    features, labels = rows["hybrid"][0]
    assert features.shape == (len(labels), len(FEATURES)) and len(labels) <= 3
    assert labels[0] and labels.sum() == 1
    assert not any(labels.any() for _, labels in rows["hybrid"][1:])
    with pytest.raises(ValueError, match="unknown entry"):
        index.training_rows([("x", "no-such-entry")])
