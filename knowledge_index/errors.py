"""The exceptions of `knowledge_index`: one small hierarchy, each class one kind of failure."""

from __future__ import annotations

from pathlib import Path


class KnowledgeIndexError(Exception):
    """Base class of every error raised by `knowledge_index`."""


class SourceError(KnowledgeIndexError):
    """A knowledge source file cannot be used; names the file and, when known, the line.

    Attributes:
        path: The offending file.
        line: The 1-based line of the problem, or None when it concerns the whole file.
        reason: What is wrong, without the location.
    """

    def __init__(self, path: Path | str, line: int | None, reason: str) -> None:
        self.path = Path(path)
        self.line = line
        self.reason = reason
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {reason}")


class SourceEncodingError(SourceError):
    """A source file is not valid UTF-8 (or mixes encodings)."""


class SourceSyntaxError(SourceError):
    """A source file is not well-formed YAML or JSON Lines."""


class InvalidEntryError(SourceError):
    """An entry lacks a required field or has a field of the wrong type or value."""


class DuplicateEntryError(SourceError):
    """Two entries share one id."""


class EmptyKnowledgeBaseError(SourceError):
    """The sources hold no entry at all."""


class QueryFileError(SourceError):
    """An evaluation query file is malformed."""


class EncoderError(KnowledgeIndexError):
    """The embedding model cannot be loaded or gives unusable vectors."""


class ArtifactError(KnowledgeIndexError):
    """A stored index version is missing, incomplete or inconsistent."""


class NoIndexError(ArtifactError):
    """No index has been built yet (there is no `CURRENT` pointer)."""


class ModelMismatchError(ArtifactError):
    """The index was built with another embedding model than the one supplied."""


class OutdatedIndexError(ArtifactError):
    """A stored index version was written by an older format; it must be rebuilt.

    Attributes:
        folder: The version folder.
        found: Its format number.
    """

    def __init__(self, folder: Path, found: object, expected: int) -> None:
        self.folder = folder
        self.found = found
        super().__init__(
            f"{folder.name} has index format {found!r}, this version reads {expected}: "
            "it is rebuilt from its own entries when loaded (or run `kefu kb build`)"
        )
