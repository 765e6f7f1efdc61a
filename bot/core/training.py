"""Trains the Rasa model only when its inputs changed (content fingerprint)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

from bot.core.settings import PROJECT_ROOT, Settings

TRAINING_DATA = ("data/nlu", "data/stories", "data/rules")
MODEL_INPUTS = ("config.yml", "domain.yml", *TRAINING_DATA, "data/jieba", "rasa_addons/nlu")
"""Everything that changes the trained model: config, domain, data and custom components."""


KEEP_MODELS = 3
"""How many trained models stay in var/models (newest first); older ones are deleted."""

DEPLOYMENTS_FILE = "deployments.json"
"""The deployment log under var/ that `kefu deploy` and `kefu rollback` keep."""


class TrainingError(RuntimeError):
    """`rasa train` failed; its log names the cause."""


def rasa_process_environment() -> dict[str, str]:
    """The environment of Rasa CLI runs: project importable, no telemetry or error reports."""
    return {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "RASA_TELEMETRY_ENABLED": "false"}


def fingerprint(root: Path = PROJECT_ROOT) -> str:
    """SHA-256 over the paths and contents of every model input under `root`."""
    digest = hashlib.sha256()
    for name in MODEL_INPUTS:
        path = root / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if file.suffix == ".pyc" or "__pycache__" in file.parts:
                continue
            digest.update(str(file.relative_to(root)).encode())
            digest.update(b"\0")
            digest.update(file.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()


def model_path(settings: Settings, root: Path = PROJECT_ROOT) -> Path:
    """Where the model for the current inputs is (or will be) stored."""
    return settings.models_dir / f"kefu-{fingerprint(root)[:16]}.tar.gz"


def ensure_model(
    settings: Settings, root: Path = PROJECT_ROOT, cache_dir: Path | None = None
) -> tuple[Path, bool]:
    """Returns the model for the current inputs and whether it had to be trained.

    `cache_dir` gives Rasa's training cache another folder (an empty one times a cold training).
    """
    target = model_path(settings, root)
    if target.exists():
        return target, False
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.var_dir / "logs" / "train.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        str(settings.rasa_bin), "train",
        "--config", "config.yml", "--domain", "domain.yml",
        "--data", *TRAINING_DATA,
        "--out", str(settings.models_dir),
        "--fixed-model-name", target.name.removesuffix(".tar.gz"),
    ]  # fmt: skip
    with log_path.open("w") as log:
        environment = rasa_process_environment()
        if cache_dir is not None:
            environment["RASA_CACHE_DIRECTORY"] = str(cache_dir)
        result = subprocess.run(
            command, cwd=root, stdout=log, stderr=subprocess.STDOUT, env=environment
        )
    if result.returncode != 0 or not target.exists():
        raise TrainingError(f"rasa train failed (exit {result.returncode}); see {log_path}")
    prune_models(settings.models_dir, keep=KEEP_MODELS, protect=protected_models(settings))
    return target, True


def protected_models(settings: Settings) -> set[Path]:
    """Model files a rollback may still need: every deployed one that was not rolled back.

    Reads the deployment log (`bot.editor.deployment.DeploymentLog` writes it); a missing or
    unreadable log protects nothing.
    """
    try:
        items = json.loads((settings.var_dir / DEPLOYMENTS_FILE).read_text("utf-8"))
    except (FileNotFoundError, ValueError):
        return set()
    if not isinstance(items, list):
        return set()
    return {
        Path(item["model"]).resolve()
        for item in items
        if isinstance(item, dict) and "model" in item and item.get("status") != "rolled_back"
    }


def prune_models(models_dir: Path, keep: int, protect: set[Path] | None = None) -> list[Path]:
    """Deletes all but the `keep` newest `kefu-*.tar.gz` models; returns the deleted ones.

    Models in `protect` (the deployed ones a rollback may need) are never deleted.
    """
    models = sorted(models_dir.glob("kefu-*.tar.gz"), key=lambda p: p.stat().st_mtime)
    stale = models[:-keep] if keep > 0 else models
    stale = [model for model in stale if model.resolve() not in (protect or set())]
    for model in stale:
        model.unlink()
    return stale
