"""The policies predict the same on a long conversation's recent window as on all of it.

`rasa_addons.turn_speed` gives the policies the last customer messages of a long
conversation instead of the whole session. `window_check.py` (run in the Rasa runtime with
the trained model and this stack's action server) holds two 40-turn conversations and asks
the policies both ways at every prediction: on the window with TED skipped where a policy
above it predicted with confidence 1.0, and on the whole tracker with every policy.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from bot.core.settings import PROJECT_ROOT, Settings, get_settings
from bot.core.training import ensure_model


def test_a_window_predicts_what_the_whole_conversation_predicts(
    stack: Settings, tmp_path: Path
) -> None:
    model, _ = ensure_model(get_settings())
    out = tmp_path / "window.json"
    subprocess.run(
        [
            str(stack.rasa_bin.parent / "python"),
            str(PROJECT_ROOT / "tests" / "e2e" / "window_check.py"),
            str(model),
            stack.action_endpoint_url,
            stack.action_token,
            str(out),
            "40",
        ],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        check=True,
        capture_output=True,
        timeout=600,
    )
    found = json.loads(out.read_text())
    assert found["predictions"] >= 120
    assert found["windowed"] >= found["predictions"] // 2  # most predictions saw a cut window
    assert found["mismatches"] == []
    # TED was skipped where the rules or memoization had decided, and still nothing differed
    assert found["ted"]["skipped"] >= found["predictions"] // 2
