"""The knowledge-base library (app runtime): build, load, search and evaluate a FAISS index.

Used by the action server, the desk and the `kefu kb` commands. Importing it loads no model and
no index: see `KnowledgeBase`, `build` and `evaluate_files`.

Confidences come from calibrators fitted once on public data and shipped in
`knowledge_index/calibration/<model>.json` with the decision levels (the defaults of
`KnowledgeSettings`); `python -m knowledge_index.transfer` refits them (see that module).
"""

from knowledge_index.artifacts import activate, current_version, load_index, publish
from knowledge_index.calibration import Calibrator, Ranker
from knowledge_index.dense import DenseIndex
from knowledge_index.encoders import (
    Encoder,
    HashingEncoder,
    SentenceTransformerEncoder,
    load_encoder,
)
from knowledge_index.errors import (
    ArtifactError,
    DuplicateEntryError,
    EmptyKnowledgeBaseError,
    EncoderError,
    InvalidEntryError,
    KnowledgeIndexError,
    ModelMismatchError,
    NoIndexError,
    OutdatedIndexError,
    QueryFileError,
    SourceEncodingError,
    SourceError,
    SourceSyntaxError,
)
from knowledge_index.evaluation import (
    LabelledQuery,
    ModeMetrics,
    evaluate,
    evaluate_files,
    load_queries,
)
from knowledge_index.fusion import MODES, Mode
from knowledge_index.hits import Band, Hit, Reply, decide
from knowledge_index.index import KnowledgeIndex
from knowledge_index.knowledge_base import KnowledgeBase, build
from knowledge_index.lexical import LexicalIndex
from knowledge_index.settings import KnowledgeSettings
from knowledge_index.shipped import DecisionLevels, shipped_calibrators, shipped_levels
from knowledge_index.sources import (
    KnowledgeEntry,
    load_entries,
    load_jsonl_file,
    load_yaml_file,
    source_fingerprint,
)
from knowledge_index.text import Tokenizer

__all__ = [
    "MODES",
    "ArtifactError",
    "Band",
    "Calibrator",
    "DecisionLevels",
    "DenseIndex",
    "DuplicateEntryError",
    "EmptyKnowledgeBaseError",
    "Encoder",
    "EncoderError",
    "HashingEncoder",
    "Hit",
    "InvalidEntryError",
    "KnowledgeBase",
    "KnowledgeEntry",
    "KnowledgeIndex",
    "KnowledgeIndexError",
    "KnowledgeSettings",
    "LabelledQuery",
    "LexicalIndex",
    "Mode",
    "ModeMetrics",
    "ModelMismatchError",
    "NoIndexError",
    "OutdatedIndexError",
    "QueryFileError",
    "Ranker",
    "Reply",
    "SentenceTransformerEncoder",
    "SourceEncodingError",
    "SourceError",
    "SourceSyntaxError",
    "Tokenizer",
    "activate",
    "build",
    "current_version",
    "decide",
    "evaluate",
    "evaluate_files",
    "load_encoder",
    "load_entries",
    "load_index",
    "load_jsonl_file",
    "load_queries",
    "load_yaml_file",
    "publish",
    "shipped_calibrators",
    "shipped_levels",
    "source_fingerprint",
]
