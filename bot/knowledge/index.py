"""Keeps the published knowledge-base index in step with `data/knowledge/`."""

from __future__ import annotations

import json
from pathlib import Path

from bot.core.settings import Settings
from knowledge_index import (
    KnowledgeIndexError,
    KnowledgeSettings,
    build,
    current_version,
    source_fingerprint,
)


def knowledge_settings(settings: Settings) -> KnowledgeSettings:
    """The knowledge-base settings of Kefu: the one way every part of the bot builds them.

    Every field comes from its `KEFU_KB_*` variable as usual; the two folders, unless their
    variables are set, follow Kefu's `settings`: the index under `KEFU_VAR_DIR`
    (`settings.knowledge_dir`), the sources under `KEFU_DATA_DIR`
    (`settings.knowledge_source_dir`).
    """
    kb_settings = KnowledgeSettings()
    folders = {
        "var_dir": settings.knowledge_dir,
        "source_dir": settings.knowledge_source_dir,
    }
    return kb_settings.model_copy(
        update={k: v for k, v in folders.items() if k not in kb_settings.model_fields_set}
    )


def ensure_index(settings: Settings, source: Path | None = None) -> tuple[Path, bool]:
    """Returns the index version in service and whether it had to be built.

    Builds when nothing is published yet or the sources changed since the version in
    service (the manifest records the sources' fingerprint).

    Raises:
        SourceError: A source file is invalid (names the file and line).
    """
    kb_settings = knowledge_settings(settings)
    source = source or kb_settings.source_dir
    try:
        current = current_version(kb_settings.var_dir)
        manifest = json.loads((current / "manifest.json").read_text())
        if manifest.get("fingerprint") == source_fingerprint(source):
            return current, False
    except (KnowledgeIndexError, OSError, ValueError):
        pass
    return build(kb_settings, source=source, progress=True), True
