"""The one test with the real multilingual USE model (about 8 s: imports torch)."""

from __future__ import annotations

import numpy as np

from knowledge_index import SentenceTransformerEncoder, load_encoder


def test_usem3_through_sentence_transformers() -> None:
    encoder = load_encoder("usem3")
    assert isinstance(encoder, SentenceTransformerEncoder)
    assert encoder.dimension == 512
    vectors = encoder.encode(["怎么退货", "我想退换商品", "今天天气怎么样", "how do I return it"])
    assert vectors.shape == (4, 512) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    related, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert related > 0.5 > unrelated
