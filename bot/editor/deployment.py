"""`kefu deploy` and `kefu rollback`: swap the running bot's model and knowledge index.

The model goes into the running Rasa without a silent moment (bot/editor/rolling_deploy.py):
one Rasa gets a successor process with the new model on the same port (SO_REUSEPORT), which
takes over once loaded while the old one drains; several instances behind HAProxy are drained
and loaded one at a time. A model that does not load is refused and the old one stays. The
knowledge index is swapped by pointing `CURRENT` at a staged version (the action server reloads
it in the background).
Every deployment is recorded in `var/deployments.json`; `rollback` re-deploys the one before.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx

from bot.core.files import replace_text
from bot.core.settings import Settings
from bot.core.training import DEPLOYMENTS_FILE
from bot.editor.evaluation import EVALUATION_FILE, Evaluation, load_evaluation
from bot.editor.rolling_deploy import SwapError, put_in_service
from bot.knowledge.index import knowledge_settings

Status = Literal["active", "replaced", "rolled_back"]


class DeploymentError(RuntimeError):
    """A deployment or rollback was refused; the running bot is unchanged."""


@dataclass(frozen=True)
class Deployment:
    """One model + index pair put in service (or found in service before the first deploy)."""

    model: str
    index_version: str | None
    evaluation: str | None
    """The folder of the model's evaluation (the gate's baseline), if it was evaluated."""
    deployed_at: str
    status: Status = "active"


class DeploymentLog:
    """The deployments, oldest first, in a JSON file replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def of(cls, settings: Settings) -> DeploymentLog:
        """The log under the settings' var directory."""
        return cls(settings.var_dir / DEPLOYMENTS_FILE)

    def read(self) -> list[Deployment]:
        """Every recorded deployment (none when the file does not exist)."""
        try:
            items = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return []
        except ValueError as error:
            raise DeploymentError(f"{self.path}: unreadable ({error})") from error
        return [Deployment(**item) for item in items]

    def write(self, deployments: list[Deployment]) -> None:
        """Replaces the file atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps([asdict(d) for d in deployments], ensure_ascii=False, indent=2)
        replace_text(self.path, text + "\n")

    def current(self) -> Deployment | None:
        """The deployment in service, if any was recorded."""
        return next((d for d in reversed(self.read()) if d.status == "active"), None)


def deployed_evaluation(settings: Settings) -> Evaluation | None:
    """The evaluation of the model in service (the gate's baseline), if recorded."""
    current = DeploymentLog.of(settings).current()
    if current is None or current.evaluation is None:
        return None
    path = Path(current.evaluation) / EVALUATION_FILE
    return load_evaluation(path) if path.is_file() else None


def check_model(model: Path) -> None:
    """Refuses a file that is not a Rasa model archive (before Rasa is asked to load it)."""
    if not model.is_file():
        raise DeploymentError(f"{model}: no such model file (run `make train` first)")
    try:
        with tarfile.open(model, "r:gz") as archive:
            names = {name.lstrip("/") for name in archive.getnames()}
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DeploymentError(f"{model}: not a Rasa model archive ({error})") from error
    if "metadata.json" not in names:
        raise DeploymentError(f"{model}: not a Rasa model archive (no metadata.json inside)")


def check_index_version(settings: Settings, version: str) -> None:
    """Refuses an index version that is not on disk."""
    folder = knowledge_settings(settings).var_dir / "versions" / version
    if "/" in version or not (folder / "manifest.json").is_file():
        raise DeploymentError(f"knowledge index version {version!r} is not in {folder.parent}")


def rasa_status(settings: Settings) -> dict[str, Any]:
    """Rasa's `/status` (which model file is loaded)."""
    try:
        response = httpx.get(
            f"{settings.rasa_url}/status", params={"token": settings.rasa_token}, timeout=10
        )
    except httpx.HTTPError as error:
        raise DeploymentError(
            f"Rasa is not reachable at {settings.rasa_url} ({error}): start it with `make demo`"
        ) from error
    if response.status_code != 200:
        raise DeploymentError(f"Rasa's /status answered {response.status_code}: {response.text}")
    status: dict[str, Any] = response.json()
    return status


def load_into_rasa(settings: Settings, model: Path) -> None:
    """Puts `model` into the running Rasa processes (`rolling_deploy.put_in_service`).

    One instance started by `make demo` gets a successor process on the same port; several
    behind HAProxy are drained and loaded one at a time; otherwise Rasa loads it in place
    (`PUT /model`). On failure the previous model keeps serving.
    """
    try:
        put_in_service(settings, model)
    except SwapError as error:
        raise DeploymentError(str(error)) from error
    loaded = rasa_status(settings).get("model_file")
    if loaded != model.name:
        raise DeploymentError(f"Rasa reports {loaded!r} in service, not {model.name}")


def _in_service(settings: Settings) -> Deployment | None:
    """What Rasa and the index serve now, for a log that has no record yet."""
    from knowledge_index import KnowledgeIndexError, current_version

    name = rasa_status(settings).get("model_file")
    model = settings.models_dir / str(name) if name else None
    if model is None or not model.is_file():
        return None
    try:
        version: str | None = current_version(knowledge_settings(settings).var_dir).name
    except KnowledgeIndexError:
        version = None
    return Deployment(str(model.resolve()), version, None, _now(), "active")


def deploy(
    settings: Settings,
    model: Path,
    index_version: str | None = None,
    evaluation: Evaluation | None = None,
) -> Deployment:
    """Puts `model` (and the staged index `index_version`) in service and records it.

    Raises:
        DeploymentError: The model or index is unusable, or Rasa refused it; nothing changed.
    """
    from knowledge_index import activate

    check_model(model)
    if index_version is not None:
        check_index_version(settings, index_version)
    log = DeploymentLog.of(settings)
    history = log.read()
    if not any(d.status == "active" for d in history) and (found := _in_service(settings)):
        history.append(found)  # what ran before the first deploy: the first rollback target
    load_into_rasa(settings, model)
    if index_version is not None:
        activate(knowledge_settings(settings).var_dir, index_version)
    current = next((d for d in reversed(history) if d.status == "active"), None)
    deployment = Deployment(
        str(model.resolve()),
        index_version or (current.index_version if current else None),
        evaluation.folder if evaluation else None,
        _now(),
    )
    history = [replace(d, status="replaced") if d.status == "active" else d for d in history]
    log.write([*history, deployment])
    return deployment


def rollback(settings: Settings) -> Deployment:
    """Re-deploys the deployment before the one in service.

    Raises:
        DeploymentError: Nothing to roll back to, its files are gone, or Rasa refused it.
    """
    from knowledge_index import activate

    log = DeploymentLog.of(settings)
    history = log.read()
    active = [i for i, d in enumerate(history) if d.status == "active"]
    if not active:
        raise DeploymentError("nothing deployed yet: there is nothing to roll back")
    position = active[-1]
    earlier = [i for i in range(position) if history[i].status == "replaced"]
    if not earlier:
        raise DeploymentError("no earlier deployment is recorded: there is nothing to roll back to")
    target = history[earlier[-1]]
    check_model(Path(target.model))
    if target.index_version is not None:
        check_index_version(settings, target.index_version)
    load_into_rasa(settings, Path(target.model))
    if target.index_version is not None:
        activate(knowledge_settings(settings).var_dir, target.index_version)
    history[position] = replace(history[position], status="rolled_back")
    history[earlier[-1]] = replace(target, status="active")
    log.write(history)
    return history[earlier[-1]]


def stage_index(settings: Settings) -> str:
    """The index version for the current knowledge sources, built (not activated) if needed."""
    from knowledge_index import (
        KnowledgeIndexError,
        build,
        current_version,
        source_fingerprint,
    )
    from knowledge_index.artifacts import read_manifest

    kb_settings = knowledge_settings(settings)
    fingerprint = source_fingerprint(kb_settings.source_dir)
    versions = kb_settings.var_dir / "versions"
    try:
        current = current_version(kb_settings.var_dir)
        if read_manifest(current).get("fingerprint") == fingerprint:
            return current.name
    except KnowledgeIndexError:
        pass
    if versions.is_dir():  # a version staged earlier for the same sources
        for folder in sorted(versions.iterdir(), reverse=True):
            manifest = folder / "manifest.json"
            if manifest.is_file() and read_manifest(folder).get("fingerprint") == fingerprint:
                return folder.name
    return build(kb_settings, progress=True, activate=False).name


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
