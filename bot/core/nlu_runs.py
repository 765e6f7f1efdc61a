"""Train Kefu's NLU pipeline on one train/test split and score it, in the Rasa runtime.

Training runs there (`python -m nlu_bench`); this side checks the runtime, keeps Rasa's
messages in a log file and returns the runner's one JSON object. `kefu bench nlu-split`, the
NLU benchmark and the editor's held-out evaluation use it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from bot.core.settings import PROJECT_ROOT, Settings
from bot.core.training import rasa_process_environment

DEFAULT_CONFIG = PROJECT_ROOT / "config.yml"
LOG_TAIL_LINES = 20
"""Lines of the log shown when the runner fails without an `error:` line."""


class NluBenchError(RuntimeError):
    """The NLU bench runner failed; the message says why, `exit_code` is the runner's."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def default_log_path(settings: Settings) -> Path:
    """Where Rasa's messages of `kefu bench nlu-split` go by default."""
    return settings.var_dir / "logs" / "nlu-bench.log"


def run_nlu_bench(
    settings: Settings,
    train: Path,
    test: Path,
    config: Path,
    oos_label: str,
    log_path: Path,
    predictions: Path | None = None,
) -> dict[str, Any]:
    """Trains Kefu's pipeline on `train` and scores it on `test` in the Rasa runtime.

    Args:
        settings: Kefu's settings (`rasa_bin` names the Rasa runtime).
        train: Training file (JSONL, CLINC150 JSON or CSV).
        test: Test file (same formats; a CLINC150 file contributes its test or val split).
        config: The Rasa config to train with.
        oos_label: The out-of-scope intent's name.
        log_path: Rasa's messages are written here (replaced).
        predictions: Also write every test message's prediction here (JSON lines).

    Returns:
        The runner's JSON object: accuracy, macro_f1, timings, model size and so on.

    Raises:
        NluBenchError: The runtime is missing, a file is unusable or training failed.
    """
    python = settings.rasa_bin.parent / "python"
    if not python.exists():
        raise NluBenchError(f"{python}: the Rasa runtime is not installed (make install-rasa)")
    command = [
        str(python), "-m", "nlu_bench",
        "--train", str(train.resolve()), "--test", str(test.resolve()),
        "--config", str(config.resolve()), "--oos-label", oos_label,
    ]  # fmt: skip
    if predictions is not None:
        command += ["--predictions", str(predictions.resolve())]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w", encoding="utf-8") as log:
        result = subprocess.run(
            command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=log,
            env=rasa_process_environment(), text=True, encoding="utf-8", errors="replace",
        )  # fmt: skip
        payload, stray = _split_output(result.stdout)
        if stray:  # a library wrote on stdout after all: keep it with Rasa's messages
            log.write("\n[stdout]\n" + "\n".join(stray) + "\n")
    if result.returncode != 0:
        code = result.returncode if result.returncode > 0 else 1  # a signal: just failed
        raise NluBenchError(_failure(log_path, result.returncode), code)
    if payload is None:
        raise NluBenchError(
            f"the NLU bench printed no JSON result; see {log_path}\n{_tail(log_path)}"
        )
    return payload


def _split_output(stdout: str) -> tuple[dict[str, Any] | None, list[str]]:
    """The last line that is a JSON object, and every other non-empty line."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index].strip()
        if not line.startswith("{"):
            continue
        try:
            payload = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(payload, dict):
            return payload, lines[:index] + lines[index + 1 :]
    return None, lines


def _failure(log_path: Path, code: int) -> str:
    """The runner's `error:` lines, or the log's last lines and where the log is."""
    text = log_path.read_text(encoding="utf-8", errors="replace")
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    if errors:
        return "\n".join(errors)
    return f"the NLU bench failed (exit {code}); see {log_path}\n{_tail(log_path)}"


def _tail(log_path: Path) -> str:
    lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(lines[-LOG_TAIL_LINES:])
