"""The reference bot of `kefu bench chat`: Rasa's own `rasa init` sample, untouched.

Built once under `VAR_DIR/bench/bare` with the project's Rasa (same version, same runtime) and
reused while its trained model is there. It runs with plain `rasa run` (none of Kefu's
channels, stores or patches): the in-memory tracker and lock store, the REST channel of the
sample's credentials.yml, no action server (the sample's actions are commented out).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from bot.core.processes import Service
from bot.core.settings import Settings
from bot.core.training import rasa_process_environment

__all__ = ["BARE_MESSAGES", "BareBotError", "bare_dir", "bare_service", "ensure_bare_bot"]

BARE_MESSAGES = [
    "hello",
    "I am feeling sad",
    "yes",
    "are you a bot?",
    "good morning",
    "I am very happy today",
    "hi there",
    "I am sad",
    "no",
    "bye",
]
"""What a customer of the sample (a mood bot) says: every intent, along its stories."""


class BareBotError(RuntimeError):
    """`rasa init` failed; its log names the cause."""


def bare_dir(settings: Settings) -> Path:
    """Where the sample project and its model live."""
    return settings.var_dir / "bench" / "bare"


def trained_model(directory: Path) -> Path | None:
    """The newest model `rasa init` trained in `directory`, if any."""
    models = sorted((directory / "models").glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    return models[-1] if models else None


def ensure_bare_bot(settings: Settings) -> Path:
    """The sample's trained model: `rasa init --no-prompt` once (about 75 s), then reused.

    A folder left without a model (an interrupted run) is built again from scratch.
    """
    directory = bare_dir(settings)
    model = trained_model(directory)
    if model is not None:
        return model
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    log_path = directory.parent / "bare-init.log"
    with log_path.open("w") as log:
        result = subprocess.run(
            [str(settings.rasa_bin), "init", "--no-prompt", "--init-dir", str(directory)],
            cwd=directory,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=rasa_process_environment(),
            check=False,
        )
    model = trained_model(directory)
    if result.returncode != 0 or model is None:
        raise BareBotError(f"rasa init failed (exit {result.returncode}); see {log_path}")
    return model


def bare_service(settings: Settings, model: Path, port: int) -> Service:
    """Plain `rasa run` of the sample on `port` (REST channel; no HTTP API, no token)."""
    directory = model.parent.parent
    return Service(
        "bare-rasa",
        [
            str(settings.rasa_bin),
            "run",
            "--model",
            str(model),
            "--interface",
            settings.host,
            "--port",
            str(port),
            "--credentials",
            str(directory / "credentials.yml"),
            "--endpoints",
            str(directory / "endpoints.yml"),
        ],
        f"http://{settings.host}:{port}/",
        {"RASA_TELEMETRY_ENABLED": "false"},
    )
