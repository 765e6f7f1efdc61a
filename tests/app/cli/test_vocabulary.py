"""The `kefu` command tree: one vocabulary (`eval` vs `bench`), and the old names still work."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

import bot.editor.cross_validation as cross_validation
from bot.cli.main import main
from bot.core.settings import PROJECT_ROOT, get_settings
from bot.editor.cross_validation import EvaluationSummary

TOP_LEVEL = {
    "agents", "bench", "channels", "customers", "db", "demo", "demo-day", "deploy", "deployments",
    "eval", "followups",
    "gate", "handoffs", "kb", "qa", "report", "review", "rollback", "service", "sheet", "telegram",
    "tickets", "train", "validate",
}  # fmt: skip
OLD_NAMES = {
    ("evaluate",): ("eval", "model"),
    ("kb", "eval"): ("eval", "kb"),
    ("nlu", "bench"): ("bench", "nlu-split"),
}
"""Renamed commands: the old invocation (hidden, one release) and the new one."""


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def command_at(path: tuple[str, ...]) -> click.Command:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        found = command.commands.get(name)
        assert found is not None, f"kefu {' '.join(path)}: no such command"
        command = found
    return command


def listed(*group: str) -> set[str]:
    """The commands `kefu GROUP --help` shows."""
    result = invoke(*group, "--help")
    assert result.exit_code == 0, result.output
    commands = result.output.split("Commands:\n")[1]
    return {line.split()[0] for line in commands.splitlines() if line.startswith("  ")}


def test_the_help_shows_one_vocabulary_and_hides_the_old_names() -> None:
    assert listed() == TOP_LEVEL
    assert listed("eval") == {"nlu", "model", "kb", "readers", "conversations"}
    assert listed("bench") == {
        "chat", "handoff", "channels", "followups", "kb", "nlu", "nlu-split", "supervision",
    }  # fmt: skip
    assert listed("kb") == {"build", "search", "report"}
    assert listed("db") == {"upgrade", "seed"}
    assert listed("service") == {"check"}
    assert listed("qa") == {"check", "run", "serve", "findings"}
    assert listed("report") == {"daily", "weekly", "monthly"}


@pytest.mark.parametrize("old", list(OLD_NAMES), ids=" ".join)
def test_an_old_name_is_hidden_and_runs_the_renamed_command(old: tuple[str, ...]) -> None:
    alias, command = command_at(old), command_at(OLD_NAMES[old])
    assert alias is not command
    assert alias.callback is command.callback
    assert [p.name for p in alias.params] == [p.name for p in command.params]
    assert any(command_at(old[: n + 1]).hidden for n in range(len(old)))
    assert not command.hidden
    result = invoke(*old, "--help")
    assert result.exit_code == 0
    assert f"Old name of `kefu {' '.join(OLD_NAMES[old])}`" in result.output


@pytest.fixture
def broken_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    data = tmp_path / "data"
    shutil.copytree(PROJECT_ROOT / "data", data)
    (data / "nlu" / "zz.yml").write_text("nlu:\n- intent: x\n  examples: [unclosed\n")
    monkeypatch.setenv("KEFU_DATA_DIR", str(data))
    monkeypatch.setenv("KEFU_VAR_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


@pytest.mark.parametrize("command", [("eval", "model"), ("evaluate",)], ids=" ".join)
def test_eval_model_and_its_old_name_refuse_broken_data(
    broken_data: Path, command: tuple[str, ...]
) -> None:
    result = invoke(*command)
    assert result.exit_code == 1
    assert "data/nlu/zz.yml:4: error: YAML syntax error" in result.output
    assert not (broken_data / "var" / "eval").exists()


@pytest.fixture
def cross_validations(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Calls of a fake cross-validation; its macro-F1 is that of the last call's `folds`."""
    calls: list[dict[str, Any]] = []

    def fake(settings: object, folds: int, out: Path | None = None) -> EvaluationSummary:
        calls.append({"folds": folds, "out": out})
        return EvaluationSummary(0.95 if folds != 7 else 0.5, 0.9, [], Path("report.json"))

    monkeypatch.setattr(cross_validation, "cross_validate", fake)
    return calls


@pytest.mark.parametrize("command", [("eval",), ("eval", "nlu")], ids=" ".join)
def test_eval_alone_or_eval_nlu_cross_validates(
    cross_validations: list[dict[str, Any]], command: tuple[str, ...]
) -> None:
    assert invoke(*command).exit_code == 0
    result = invoke(*command, "--folds", "3", "--out", "var/x")
    assert result.exit_code == 0, result.output
    assert "macro-F1 0.950" in result.output
    assert cross_validations == [{"folds": 5, "out": None}, {"folds": 3, "out": Path("var/x")}]
    refused = invoke(*command, "--folds", "7")
    assert refused.exit_code == 1 and "macro-F1 0.500 is below 0.90" in refused.output


def test_a_subcommand_of_eval_does_not_also_cross_validate(
    cross_validations: list[dict[str, Any]],
) -> None:
    assert invoke("eval", "readers", "--help").exit_code == 0
    assert cross_validations == []
