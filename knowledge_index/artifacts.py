"""Versioned index artifacts under `var/knowledge/`, published atomically through `CURRENT`.

Layout::

    var/knowledge/
      CURRENT                         name of the version in service (replaced atomically)
      versions/<UTC time>-<hash>/     manifest.json, entries.json, vectors.npy, dense.faiss,
                                      lexical.npz, lexical.vocab.json, models.json, whitening.npy

A version folder is written under a temporary name and renamed when complete; `CURRENT` is
written to a temporary file and `os.replace`d, so readers see the old or the new version,
never a half-written one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from knowledge_index.calibration import Calibrator, Ranker
from knowledge_index.dense import DenseIndex
from knowledge_index.encoders import Encoder
from knowledge_index.errors import (
    ArtifactError,
    ModelMismatchError,
    NoIndexError,
    OutdatedIndexError,
)
from knowledge_index.fusion import MODES
from knowledge_index.index import KnowledgeIndex
from knowledge_index.lexical import LexicalIndex
from knowledge_index.sources import KnowledgeEntry
from knowledge_index.text import Tokenizer

FORMAT_VERSION = 2
"""Layout version; 2 added the context features and the shipped (transferable) calibrators.
An older version on disk is rebuilt from its own entries (`upgrade_version`), never half-read."""
CURRENT = "CURRENT"
VERSIONS = "versions"
MANIFEST = "manifest.json"


def current_pointer(var_dir: Path) -> Path:
    """The path of the `CURRENT` pointer file."""
    return var_dir / CURRENT


def current_version(var_dir: Path) -> Path:
    """The folder of the version in service.

    Raises:
        NoIndexError: Nothing has been published yet.
        ArtifactError: `CURRENT` names a missing version.
    """
    pointer = current_pointer(var_dir)
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError as error:
        raise NoIndexError(f"no knowledge index in {var_dir}: run `kefu kb build`") from error
    folder = var_dir / VERSIONS / name
    if not name or not (folder / MANIFEST).is_file():
        raise ArtifactError(f"{pointer} names a missing version {name!r}")
    return folder


def save_index(
    index: KnowledgeIndex, folder: Path, fingerprint: str, extra: dict[str, Any] | None = None
) -> None:
    """Writes every file of an index into an (empty or new) folder, the manifest last."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = [entry.to_dict() for entry in index.entries]
    (folder / "entries.json").write_text(json.dumps(entries, ensure_ascii=False), "utf-8")
    np.save(folder / "vectors.npy", index.vectors)
    np.save(folder / "whitening.npy", index.whitening)
    index.dense.save(folder / "dense.faiss")
    index.lexical.save(folder / "lexical")
    models = {
        "ranker": index.ranker.to_dict(),
        "calibrators": {mode: c.to_dict() for mode, c in index.calibrators.items()},
    }
    (folder / "models.json").write_text(json.dumps(models, indent=2), "utf-8")
    manifest = {
        "format": FORMAT_VERSION,
        "fingerprint": fingerprint,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **{k: v for k, v in index.info.items() if k not in ("ranker", "calibration")},
        **(extra or {}),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2), "utf-8")


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a version folder.

    Raises:
        ArtifactError: It is missing or unreadable.
    """
    try:
        manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise ArtifactError(f"unreadable manifest in {folder}: {error}") from error
    return manifest


def load_index(folder: Path, encoder: Encoder, tokenizer: Tokenizer) -> KnowledgeIndex:
    """Loads a version folder fully into memory.

    Args:
        folder: A version folder written by `save_index`.
        encoder: Must be the model named in the manifest.
        tokenizer: The jieba tokenizer.

    Raises:
        ModelMismatchError: The encoder is not the index's model.
        ArtifactError: A file is missing or inconsistent.
    """
    manifest = read_manifest(folder)
    if manifest.get("format") != FORMAT_VERSION:
        raise OutdatedIndexError(folder, manifest.get("format"), FORMAT_VERSION)
    if manifest.get("model") != encoder.name:
        raise ModelMismatchError(
            f"{folder.name} was built with {manifest.get('model')!r}, not {encoder.name!r}"
        )
    entries = read_entries(folder)
    try:
        models = json.loads((folder / "models.json").read_text("utf-8"))
        index = KnowledgeIndex(
            entries,
            np.load(folder / "vectors.npy"),
            DenseIndex.load(folder / "dense.faiss"),
            LexicalIndex.load(folder / "lexical"),
            Ranker.from_dict(models["ranker"]),
            {mode: Calibrator.from_dict(models["calibrators"][mode]) for mode in MODES},
            encoder,
            tokenizer,
            info=manifest,
            whitening=np.load(folder / "whitening.npy"),
        )
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise ArtifactError(f"cannot load index version {folder}: {error}") from error
    if len(index.dense) != len(index.questions) or len(index.vectors) != len(index.questions):
        raise ArtifactError(f"{folder}: vectors do not match the entries' questions")
    return index


def read_entries(folder: Path) -> list[KnowledgeEntry]:
    """The entries stored in a version folder (readable in every format).

    Raises:
        ArtifactError: The file is missing or malformed.
    """
    try:
        return [
            KnowledgeEntry.from_dict(data)
            for data in json.loads((folder / "entries.json").read_text("utf-8"))
        ]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ArtifactError(f"cannot read the entries of {folder}: {error}") from error


def upgrade_version(folder: Path, index: KnowledgeIndex) -> None:
    """Rewrites an outdated version folder in place with `index`, rebuilt from its entries.

    The folder keeps its name (so `CURRENT` and deployment records stay valid) and its
    fingerprint. Each file is replaced atomically and the manifest last, so a reader sees the
    old manifest (and rebuilds in memory itself) or a complete new version.

    Raises:
        OSError: The folder cannot be written (the caller keeps the in-memory index).
    """
    old = read_manifest(folder)
    staging = Path(tempfile.mkdtemp(prefix=".upgrade-", dir=folder.parent))
    try:
        extra = {"upgraded_from_format": old.get("format")}
        if "created_at" in old:
            extra["first_created_at"] = old["created_at"]
        save_index(index, staging, str(old.get("fingerprint", "")), extra)
        for path in sorted(staging.iterdir(), key=lambda p: p.name == MANIFEST):
            os.replace(path, folder / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def publish(
    index: KnowledgeIndex, var_dir: Path, fingerprint: str, keep: int = 3, activate: bool = True
) -> Path:
    """Writes a new version and points `CURRENT` at it, atomically; prunes old versions.

    Args:
        index: The built index.
        var_dir: The artifact root (`var/knowledge`).
        fingerprint: Hash of the sources, recorded in the manifest and the folder name.
        keep: Versions kept (the one in service always is).
        activate: False stages the version without putting it in service (see `activate`).

    Returns:
        The new version folder.
    """
    versions = var_dir / VERSIONS
    versions.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    final = versions / f"{stamp}-{fingerprint[:12]}"
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=versions))
    try:
        save_index(index, staging, fingerprint)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if activate:
        _write_atomically(current_pointer(var_dir), final.name + "\n")
    prune(var_dir, keep)
    return final


def activate(var_dir: Path, version: str) -> Path:
    """Puts an existing version in service by pointing `CURRENT` at it, atomically.

    Raises:
        ArtifactError: No complete version of that name exists.
    """
    folder = var_dir / VERSIONS / version
    if "/" in version or version.startswith(".") or not (folder / MANIFEST).is_file():
        raise ArtifactError(f"no knowledge index version {version!r} in {var_dir / VERSIONS}")
    _write_atomically(current_pointer(var_dir), folder.name + "\n")
    return folder


def prune(var_dir: Path, keep: int) -> list[Path]:
    """Deletes all but the newest `keep` versions, never the current one.

    Returns:
        The deleted folders.
    """
    versions = var_dir / VERSIONS
    if not versions.is_dir():
        return []
    try:
        in_service: Path | None = current_version(var_dir)
    except ArtifactError:
        in_service = None
    folders = sorted(p for p in versions.iterdir() if p.is_dir() and not p.name.startswith("."))
    doomed = [p for p in folders[: max(len(folders) - keep, 0)] if p != in_service]
    for folder in doomed:
        shutil.rmtree(folder, ignore_errors=True)
    return doomed


def _write_atomically(path: Path, text: str) -> None:
    """Writes a small file via a temporary sibling, fsync and `os.replace`."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
