"""The knowledge base in service: build and publish a version, search with hot reload."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from knowledge_index.artifacts import (
    FORMAT_VERSION,
    current_pointer,
    current_version,
    load_index,
    publish,
    read_entries,
    read_manifest,
    upgrade_version,
)
from knowledge_index.encoders import Encoder, load_encoder
from knowledge_index.errors import ArtifactError, NoIndexError, OutdatedIndexError
from knowledge_index.fusion import Mode
from knowledge_index.hits import Hit, Reply, decide
from knowledge_index.index import KnowledgeIndex
from knowledge_index.settings import KnowledgeSettings
from knowledge_index.sources import KnowledgeEntry, load_entries, source_fingerprint
from knowledge_index.text import Tokenizer

logger = logging.getLogger(__name__)


def build(
    settings: KnowledgeSettings | None = None,
    *,
    source: Path | None = None,
    encoder: Encoder | None = None,
    extra_queries: Sequence[tuple[str, str | None]] = (),
    progress: bool = False,
    activate: bool = True,
) -> Path:
    """Validates the sources, builds an index and publishes it as the current version.

    The sources are validated before anything is written: on any error the version in
    service stays as it was.

    Args:
        settings: Paths, model and limits (default: from the environment).
        source: YAML folder or file, or JSONL file (default: `settings.source_dir`).
        encoder: An encoder to use instead of loading `settings.model`.
        extra_queries: Labelled `(query, expected_id or None)` calibration queries.
        progress: Show tqdm progress bars on stderr.
        activate: False stages the new version without putting it in service.

    Returns:
        The new version folder.

    Raises:
        SourceError: A source file is invalid (names the file and line).
        EncoderError: The model cannot be loaded.
    """
    settings = settings or KnowledgeSettings()
    source = source or settings.source_dir
    entries = load_entries(source)
    fingerprint = source_fingerprint(source)
    index = build_index(entries, settings, encoder, extra_queries, progress)
    return publish(
        index, settings.var_dir, fingerprint, keep=settings.keep_versions, activate=activate
    )


def build_index(
    entries: Sequence[KnowledgeEntry],
    settings: KnowledgeSettings,
    encoder: Encoder | None = None,
    extra_queries: Sequence[tuple[str, str | None]] = (),
    progress: bool = False,
) -> KnowledgeIndex:
    """An in-memory index of `entries` with the model, tokenizer and limits of `settings`."""
    encoder = encoder or load_encoder(
        settings.model, threads=settings.encoder_threads, batch_size=settings.batch_size
    )
    return KnowledgeIndex.build(
        entries,
        encoder,
        Tokenizer(settings.jieba_dictionary),
        exact_limit=settings.exact_search_limit,
        calibration_queries=settings.calibration_queries,
        extra_queries=extra_queries,
        progress=progress,
    )


class KnowledgeBase:
    """The published index, searched by the bot, reloaded when a new version appears.

    Nothing loads in the constructor. The first search (or `load()`) loads the current
    version. Later searches look at `CURRENT` at most every `reload_interval_s` seconds; when
    it names a new version, a background thread loads it while the old one keeps serving,
    then swaps it in with one assignment. A version that fails to load is logged and skipped.

    Args:
        settings: Paths, thresholds and reload interval (default: from the environment).
        encoder: An encoder to use instead of loading the model named by the index.
        tokenizer: A tokenizer to share (default: jieba with `settings.jieba_dictionary`).
    """

    def __init__(
        self,
        settings: KnowledgeSettings | None = None,
        *,
        encoder: Encoder | None = None,
        tokenizer: Tokenizer | None = None,
    ) -> None:
        self.settings = settings or KnowledgeSettings()
        self._encoders: dict[str, Encoder] = {encoder.name: encoder} if encoder else {}
        self._tokenizer = tokenizer or Tokenizer(self.settings.jieba_dictionary)
        self._current: tuple[KnowledgeIndex, str] | None = None
        self._seen_pointer: tuple[int, int] | None = None
        self._last_check = 0.0
        self._lock = threading.Lock()
        self._reloading = threading.Lock()
        self.last_error: Exception | None = None

    @property
    def version(self) -> str | None:
        """The name of the version in service, None before the first load."""
        current = self._current
        return current[1] if current else None

    @property
    def index(self) -> KnowledgeIndex:
        """The index in service, loading the current version on first use.

        Raises:
            NoIndexError: Nothing has been published.
            ArtifactError: The current version cannot be loaded.
        """
        current = self._current
        if current is None:
            with self._lock:
                if self._current is None:
                    self._load_current()
                current = self._current
        if current is None:
            raise NoIndexError(f"no knowledge index in {self.settings.var_dir}")
        return current[0]

    def load(self) -> str:
        """Loads the current version now (e.g. at server start); returns its name."""
        self.index  # noqa: B018 (loads)
        return self.version or ""

    def search(
        self, query: str, k: int = 5, mode: Mode = "hybrid", *, language: str | None = None
    ) -> list[Hit]:
        """The k best entries for a query, with calibrated confidences.

        Args:
            query: Customer text.
            k: Most hits.
            mode: `hybrid` (default), `dense` or `lexical`.
            language: Only entries in this language compete (the customer's language);
                None searches every entry.
        """
        index = self.index
        self._maybe_reload_in_background()
        return index.search(query, k, mode, language=language)

    def reply(self, query: str, *, language: str | None = None) -> Reply:
        """Searches and sorts the result into the answer / suggest / no-answer bands.

        Args:
            query: Customer text.
            language: The customer's language: only entries in it are considered.
        """
        settings = self.settings
        return decide(
            self.search(query, max(settings.max_suggestions, 1), language=language),
            settings.answer_threshold,
            settings.suggest_threshold,
            settings.max_suggestions,
            suggest_mass=settings.suggest_mass,
        )

    def reload(self) -> bool:
        """Loads the current version now if it differs from the one in service.

        Returns:
            True when a new version was swapped in.

        Raises:
            ArtifactError: The current version cannot be loaded (the old one stays).
        """
        with self._reloading:
            folder = current_version(self.settings.var_dir)
            if folder.name == self.version:
                return False
            self._swap_in(folder)
            return True

    def _maybe_reload_in_background(self) -> None:
        now = time.monotonic()
        if now - self._last_check < self.settings.reload_interval_s:
            return
        self._last_check = now
        try:
            stat = current_pointer(self.settings.var_dir).stat()
        except OSError:
            return
        pointer = (stat.st_mtime_ns, stat.st_size)
        if pointer == self._seen_pointer or self._reloading.locked():
            return
        self._seen_pointer = pointer
        threading.Thread(target=self._reload_quietly, name="kb-reload", daemon=True).start()

    def _reload_quietly(self) -> None:
        try:
            if self.reload():
                logger.info("knowledge index %s is now in service", self.version)
        except ArtifactError as error:
            self.last_error = error
            logger.warning("kept knowledge index %s: %s", self.version, error)

    def _load_current(self) -> None:
        stat = current_pointer(self.settings.var_dir).stat() if self._pointer_exists() else None
        self._swap_in(current_version(self.settings.var_dir))
        if stat is not None:
            self._seen_pointer = (stat.st_mtime_ns, stat.st_size)
        self._last_check = time.monotonic()

    def _pointer_exists(self) -> bool:
        return current_pointer(self.settings.var_dir).is_file()

    def _swap_in(self, folder: Path) -> None:
        model = str(read_manifest(folder).get("model", self.settings.model))
        encoder = self._encoders.get(model)
        if encoder is None:
            encoder = load_encoder(
                model, threads=self.settings.encoder_threads, batch_size=self.settings.batch_size
            )
            self._encoders[model] = encoder
        try:
            index = load_index(folder, encoder, self._tokenizer)
        except OutdatedIndexError as outdated:
            index = self._rebuild(folder, encoder, outdated)
        self._current = (index, folder.name)

    def _rebuild(
        self, folder: Path, encoder: Encoder, outdated: OutdatedIndexError
    ) -> KnowledgeIndex:
        """Rebuilds an outdated version from its own entries and rewrites it in place."""
        logger.warning("%s", outdated)
        index = build_index(read_entries(folder), self.settings, encoder)
        try:
            upgrade_version(folder, index)
        except OSError as error:
            logger.warning("serving %s rebuilt in memory; cannot rewrite it: %s", folder, error)
        else:
            logger.info("rebuilt knowledge index %s in format %s", folder.name, FORMAT_VERSION)
        return index
