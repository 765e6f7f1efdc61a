"""`python -m rasa_addons.launch`: the API token comes from the environment, never from argv."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rasa_addons import launch
from rasa_addons.launch import LaunchError, rasa_arguments, token_from_environment

TOKEN = "rasa-token-for-tests-0123456789"
RUN = ["run", "--model", "m.tar.gz", "--enable-api", "--port", "5005"]


def test_the_token_is_added_from_the_environment() -> None:
    arguments = rasa_arguments(RUN, {"KEFU_RASA_TOKEN": TOKEN})
    assert arguments == [*RUN, "--auth-token", TOKEN]


def test_the_token_can_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "rasa-token"
    secret.write_text(f"{TOKEN}\n", encoding="utf-8")
    assert token_from_environment({"KEFU_RASA_TOKEN_FILE": str(secret)}) == TOKEN
    assert rasa_arguments(RUN, {"KEFU_RASA_TOKEN_FILE": str(secret)})[-1] == TOKEN
    with pytest.raises(LaunchError, match="cannot be read"):
        token_from_environment({"KEFU_RASA_TOKEN_FILE": str(tmp_path / "missing")})


def test_the_variable_wins_over_the_file(tmp_path: Path) -> None:
    secret = tmp_path / "rasa-token"
    secret.write_text("from-the-file", encoding="utf-8")
    environ = {"KEFU_RASA_TOKEN": TOKEN, "KEFU_RASA_TOKEN_FILE": str(secret)}
    assert token_from_environment(environ) == TOKEN


@pytest.mark.parametrize("given", [["--auth-token", TOKEN], [f"--auth-token={TOKEN}"]])
def test_a_token_on_the_command_line_is_refused(given: list[str]) -> None:
    with pytest.raises(LaunchError, match="environment"):
        rasa_arguments([*RUN, *given], {"KEFU_RASA_TOKEN": TOKEN})


def test_the_api_is_never_served_without_a_token() -> None:
    with pytest.raises(LaunchError, match="needs a token"):
        rasa_arguments(RUN, {})


def test_commands_without_the_api_run_as_given() -> None:
    assert rasa_arguments(["train", "--fixed-model-name", "x"], {}) == [
        "train",
        "--fixed-model-name",
        "x",
    ]


def test_main_calls_rasa_with_the_token_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_rasa_main() -> None:
        seen["argv"] = list(sys.argv)

    import rasa.__main__

    monkeypatch.setattr(rasa.__main__, "main", fake_rasa_main)
    monkeypatch.setattr(sys, "argv", ["launch"])
    logging.getLogger("httpx").setLevel(logging.INFO)
    launch.main(RUN, {"KEFU_RASA_TOKEN": TOKEN})
    assert seen["argv"] == ["rasa", *RUN, "--auth-token", TOKEN]
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("httpcore").getEffectiveLevel() == logging.WARNING


def test_a_refused_start_exits_with_a_message() -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "rasa_addons.launch", "run", "--enable-api", "--auth-token", "x"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
        cwd=Path(__file__).resolve().parents[3],
        check=False,
    )
    assert finished.returncode == 2
    assert "KEFU_RASA_TOKEN" in finished.stderr
