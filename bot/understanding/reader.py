"""The readers: one linear classifier per block of examples, over sentence vectors and n-grams.

Each message is read whole and clause by clause. The binary readers (hazard, urgent,
complaint) take the highest probability of the message and its clauses, so that one clause
is enough ("耳机还能用，就是充电盒冒烟了"). Every clause gets a role (situation, problem,
impact, outcome, other); impact and outcome clauses also get their kind. When the bot has
just asked for one role, `expecting` tilts an unclear clause towards that role (a prior,
not a rule: a clause that clearly says something else keeps its own role).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bot.understanding.clauses import split_clauses
from bot.understanding.examples import IMPACTS, OUTCOMES, ROLES, UnderstandingExamples
from knowledge_index import Encoder

DENSE_WEIGHT = 1.0
"""Weight of the sentence vector next to the L2-normalised n-gram block."""
REGULARISATION = 16.0
"""Inverse regularisation strength (C) of the logistic regressions."""
EXPECTED_ROLE_BOOST = 0.8
"""Added to the expected role's log-odds: the question just asked is evidence, not proof."""

HAZARD_THRESHOLD = 0.7
"""Probability at which a message is read as a real safety hazard (precision first)."""
URGENT_THRESHOLD = 0.9
"""Urgency is decided on the policy's tiers: the reader must be sure (hazards always are)."""
COMPLAINT_THRESHOLD = 0.5
SAFETY_HAZARD = 0.5
"""Hazard probability below which an impact clause's "safety" reading is not trusted."""
ROLE_THRESHOLD = 0.45
"""Lowest role probability at which a clause counts as that role (else `other`)."""
KIND_THRESHOLD = 0.4
"""Lowest probability of an impact or outcome kind."""


_CODES = re.compile(r"[A-Za-z]{0,3}\s*\d[\d\s-]{6,}\d|[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
"""Order, tracking and phone numbers, email addresses: what they say is read elsewhere,
never by the readers."""


def _normal(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold().strip()


def without_codes(text: str) -> str:
    """The text without order, tracking and phone numbers (the readers learn words)."""
    return re.sub(r"\s+", " ", _CODES.sub(" ", text)).strip() or text


@dataclass(frozen=True)
class Clause:
    """One clause of a message and what it tells."""

    text: str
    role: str
    role_probability: float
    kind: str | None = None
    """The impact kind of an impact clause, the outcome of an outcome clause."""
    kind_probability: float = 0.0


@dataclass(frozen=True)
class Reading:
    """What a message says, as the readers understand it."""

    text: str
    hazard: float
    urgent: float
    complaint: float
    clauses: tuple[Clause, ...] = field(default_factory=tuple)

    @property
    def is_hazard(self) -> bool:
        """A real danger to people or property."""
        return self.hazard >= HAZARD_THRESHOLD

    @property
    def is_urgent(self) -> bool:
        """Needs action within the hour (every hazard is urgent)."""
        return self.is_hazard or self.urgent >= URGENT_THRESHOLD

    @property
    def is_complaint(self) -> bool:
        """The customer complains."""
        return self.complaint >= COMPLAINT_THRESHOLD

    def parts(self, role: str) -> list[Clause]:
        """The clauses of one role, in order."""
        return [clause for clause in self.clauses if clause.role == role]

    def text_of(self, role: str) -> str:
        """The clauses of one role joined as the customer wrote them (empty when none)."""
        return "，".join(clause.text for clause in self.parts(role))

    @property
    def impacts(self) -> frozenset[str]:
        """The kinds of impact the message names (`none` excluded).

        A safety impact counts only when the hazard reader sees some danger too: "家里有老人"
        is not a safety problem.
        """
        kinds = {c.kind for c in self.parts("impact") if c.kind is not None and c.kind != "none"}
        if self.hazard < SAFETY_HAZARD:
            kinds.discard("safety")
        return frozenset(kinds)

    @property
    def says_no_impact(self) -> bool:
        """The customer says there is no particular impact."""
        kinds = [c.kind for c in self.parts("impact")]
        return bool(kinds) and all(kind == "none" for kind in kinds)

    @property
    def outcome(self) -> str | None:
        """The outcome wanted, from the most certain outcome clause."""
        clauses = [c for c in self.parts("outcome") if c.kind is not None]
        if not clauses:
            return None
        return max(clauses, key=lambda clause: clause.kind_probability).kind

    @property
    def has_content(self) -> bool:
        """Some clause says something about a need (not only greetings or fillers)."""
        return any(clause.role != "other" for clause in self.clauses)


class BlockModel:
    """One block's classifier: a logistic regression over [sentence vector, n-gram tf-idf].

    Built with `fit`; `probabilities` gives one column per label, in the block's order.
    """

    def __init__(self, labels: Sequence[str], ngrams: Any, estimator: Any) -> None:
        self.labels = tuple(str(label) for label in labels)
        self._ngrams = ngrams
        self._estimator = estimator
        self._order = [list(estimator.classes_).index(label) for label in self.labels]

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        vectors: NDArray[np.float32],
        targets: Sequence[str],
        labels: Sequence[str],
    ) -> BlockModel:
        """A balanced logistic regression; one-vs-rest for several labels (fast, as accurate)."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier

        ngrams = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(1, 2), sublinear_tf=True, preprocessor=_normal
        )
        ngrams.fit([without_codes(text) for text in texts])
        binary = LogisticRegression(
            C=REGULARISATION, class_weight="balanced", solver="liblinear", random_state=0
        )
        estimator = binary if len(labels) == 2 else OneVsRestClassifier(binary)
        estimator.fit(cls._features_of(ngrams, texts, vectors), list(targets))
        return cls(labels, ngrams, estimator)

    @staticmethod
    def _features_of(ngrams: Any, texts: Sequence[str], vectors: NDArray[np.float32]) -> Any:
        from scipy.sparse import csr_matrix, hstack

        grams = ngrams.transform([without_codes(text) for text in texts])
        return hstack([csr_matrix(vectors * DENSE_WEIGHT), grams]).tocsr()

    def probabilities(
        self, texts: Sequence[str], vectors: NDArray[np.float32]
    ) -> NDArray[np.float64]:
        """(len(texts), labels) probabilities."""
        scores: NDArray[np.float64] = self._estimator.predict_proba(
            self._features_of(self._ngrams, texts, vectors)
        )
        return scores[:, self._order]

    def predict(self, texts: Sequence[str], vectors: NDArray[np.float32]) -> list[str]:
        """The most likely label of each text."""
        best = np.argmax(self.probabilities(texts, vectors), axis=1)
        return [self.labels[i] for i in best]


class Reader:
    """Reads messages with classifiers trained on the examples file.

    Training happens in the constructor (about two seconds for two thousand examples with
    the multilingual USE, most of it encoding); build one per process and share it.
    Thread-safe for reading.

    Args:
        encoder: Sentence encoder returning unit vectors (the knowledge base's).
        examples: The loaded examples file.
    """

    def __init__(self, encoder: Encoder, examples: UnderstandingExamples) -> None:
        self.encoder = encoder
        self._lock = threading.Lock()
        blocks = examples.blocks()
        texts = sorted({text for labels in blocks.values() for e in labels.values() for text in e})
        vectors = self._encode(texts)
        row_of = {text: row for row, text in enumerate(texts)}
        self.models: dict[str, BlockModel] = {}
        for block, labels in blocks.items():
            chosen = [text for examples_ in labels.values() for text in examples_]
            targets = [label for label, examples_ in labels.items() for _ in examples_]
            rows = [row_of[text] for text in chosen]
            self.models[block] = self.fit_block(chosen, vectors[rows], targets, list(labels))

    fit_block = staticmethod(BlockModel.fit)

    def _encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        plain = [without_codes(text) for text in texts]
        vectors: NDArray[np.float32] = np.asarray(self.encoder.encode(plain), np.float32)
        return vectors

    def read(self, text: str, expecting: str | None = None) -> Reading:
        """Reads one message; `expecting` is the role the bot just asked about, if any."""
        clauses = split_clauses(text) or [text.strip() or text]
        units = [text, *clauses] if len(clauses) > 1 else [text]
        with self._lock:  # the encoder and scikit-learn models are shared
            vectors = self._encode(units)
            binary = {
                name: self.models[name].probabilities(units, vectors)[:, 0]
                for name in ("hazard", "urgent", "complaint")
            }
            parts = units[1:] if len(units) > 1 else units
            part_vectors = vectors[1:] if len(units) > 1 else vectors
            roles = self.models["role"].probabilities(parts, part_vectors)
            impacts = self.models["impact"].probabilities(parts, part_vectors)
            outcomes = self.models["outcome"].probabilities(parts, part_vectors)
        if expecting in ROLES:
            roles = _tilt(roles, ROLES.index(expecting))
        read_clauses = []
        for number, clause in enumerate(clauses):
            role_index = int(np.argmax(roles[number]))
            probability = float(roles[number][role_index])
            role = ROLES[role_index] if probability >= ROLE_THRESHOLD else "other"
            kind, kind_probability = None, 0.0
            if role in ("impact", "outcome"):
                table, names = (impacts, IMPACTS) if role == "impact" else (outcomes, OUTCOMES)
                best = int(np.argmax(table[number]))
                if table[number][best] >= KIND_THRESHOLD:
                    kind, kind_probability = names[best], float(table[number][best])
            read_clauses.append(Clause(clause, role, probability, kind, kind_probability))
        return Reading(
            text=text,
            hazard=float(binary["hazard"].max()),
            urgent=float(binary["urgent"].max()),
            complaint=float(binary["complaint"].max()),
            clauses=tuple(read_clauses),
        )


def _tilt(probabilities: NDArray[np.float64], column: int) -> NDArray[np.float64]:
    """Adds `EXPECTED_ROLE_BOOST` to one column's log-odds and renormalises each row."""
    logits = np.log(np.clip(probabilities, 1e-9, 1.0))
    logits[:, column] += EXPECTED_ROLE_BOOST
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    tilted: NDArray[np.float64] = exp / exp.sum(axis=1, keepdims=True)
    return tilted
