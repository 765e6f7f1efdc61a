"""`kefu report daily|weekly|monthly` on a real SQLite app database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from bot.cli.main import main
from bot.core.settings import Settings, get_settings
from tests.app.supervision.figures_data import build_day


@pytest.fixture
def configured(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """Settings on the test database (reports under tmp_path/var/reports), SMTP off."""
    monkeypatch.setenv("KEFU_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("KEFU_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("KEFU_SMTP_HOST", "")
    monkeypatch.delenv("KEFU_REPORTS_DIR", raising=False)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def run(*args: str) -> Any:
    return CliRunner().invoke(main, ["report", *args])


def test_daily_builds_the_report_and_prints_the_headline(
    engine: Engine, configured: Settings
) -> None:
    build_day(engine)
    result = run("daily", "--date", "2026-12-06", "--email")
    assert result.exit_code == 0, result.output
    folder = configured.var_dir / "reports" / "daily" / "2026-12-06"
    assert f"report   {folder / 'report.html'}" in result.output
    assert (folder / "metrics.json").is_file() and (folder / "charts" / "sla.svg").is_file()
    assert "2026-12-06: 9 conversations, self-service 25.0%" in result.output
    assert "red cards 2" in result.output
    assert "not emailed: KEFU_SMTP_HOST is not set" in result.output


def test_daily_defaults_to_yesterday_and_takes_an_out_folder(
    configured: Settings, tmp_path: Path
) -> None:
    result = run("daily", "--out", str(tmp_path / "here"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "here" / "report.html").is_file()
    assert "0 conversations" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("daily", "--date", "2026-13-01"), "is not a date like 2026-12-06"),
        (("daily", "--date", "yesterday"), "is not a date like 2026-12-06"),
        (("daily", "--date", "2999-01-01"), "has not happened yet"),
        (("weekly", "--week", "2026-12-32"), "is not a date"),
        (("monthly", "--month", "2026/12"), "is not a month like 2026-12"),
        (("monthly", "--month", "2999-01"), "has not begun yet"),
    ],
)
def test_bad_dates_are_usage_errors(
    configured: Settings, args: tuple[str, ...], message: str
) -> None:
    result = run(*args)
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output


def test_weekly_builds_the_week_of_any_day(engine: Engine, configured: Settings) -> None:
    build_day(engine)
    result = run("weekly", "--week", "2026-12-03")
    assert result.exit_code == 0, result.output
    folder = configured.var_dir / "reports" / "weekly" / "2026-11-30"
    assert (folder / "weekly.html").is_file() and (folder / "weekly.json").is_file()
    assert "week 2026-11-30 - 2026-12-06: 8 items" in result.output
    assert "未解答问题 Unanswered questions" in result.output


def test_monthly_builds_the_audit(engine: Engine, configured: Settings) -> None:
    build_day(engine)
    result = run("monthly", "--month", "2026-12")
    assert result.exit_code == 0, result.output
    folder = configured.var_dir / "reports" / "monthly" / "2026-12"
    assert (folder / "audit.html").is_file() and (folder / "audit.json").is_file()
    assert "2026-12: 11 conversations" in result.output
    assert "0 frequent problems queued for review" in result.output
