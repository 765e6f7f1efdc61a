"""The daily report: an offline page with its charts and metrics.json, recorded and emailed."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, select

from bot.core.db import AgentRole, ReportRun, session_factory
from bot.core.settings import Settings
from bot.service.mailer import MailPart, send_mail
from bot.service.policy import ServicePolicy, load_policy
from bot.supervision.charts import CHARTS, render_all, render_png
from bot.supervision.report import build_daily, duration, email_daily, pct, recipients
from tests.app.supervision.figures_data import DAY, agent, build_day, z

BUILT = z("2026-12-07T00:00")
DESK = "https://desk.shop.example"
METRICS_KEYS = {
    "date", "conversations", "conversations_by_channel", "conversations_by_language",
    "outcomes", "self_service_rate", "handoff_rate", "ticket_rate",
    "first_response_p50_seconds", "first_response_p90_seconds", "first_response_by_tier",
    "ticket_first_response_p50_seconds", "ticket_first_response_p90_seconds",
    "resolution_p50_hours", "resolution_p90_hours", "resolution_by_tier", "sla_hit_rate",
    "sla_by_tier", "sla_by_complaint_grade", "csat_response_rate", "csat_average",
    "csat_distribution", "qa_bot_average", "qa_agents", "red_cards", "red_card_count",
    "top_unanswered", "hourly", "targets",
}  # fmt: skip
"""The keys the design promises in metrics.json (there are a few more)."""


class Collector:
    """An aiosmtpd handler keeping (recipients, message)."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=email_policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Collector, int]]:
    collector = Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield collector, controller.port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def policy() -> ServicePolicy:
    return load_policy()


@pytest.fixture
def day(engine: Engine) -> dict[str, Any]:
    return build_day(engine)


@pytest.fixture
def built(engine: Engine, policy: ServicePolicy, tmp_path: Path, day: dict[str, Any]) -> Path:
    settings = Settings(var_dir=tmp_path / "var")
    return build_daily(settings, engine, policy, DAY, tmp_path / "out", desk_url=DESK, now=BUILT)


class Resources(HTMLParser):
    """Every URL a page would load (img/src, link/href, script/src...) and its links."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []
        self.links: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.links.append(values["href"] or "")
        for name in ("src", "srcset", "data", "poster") + (("href",) if tag != "a" else ()):
            if values.get(name):
                self.loaded.append(values[name] or "")


def test_build_daily_writes_the_page_metrics_and_charts(
    engine: Engine, built: Path, day: dict[str, Any]
) -> None:
    folder = built.parent
    assert built.name == "report.html"
    assert sorted(path.name for path in (folder / "charts").iterdir()) == sorted(
        f"{name}.svg" for name in CHARTS
    )
    metrics = json.loads((folder / "metrics.json").read_text("utf-8"))
    assert set(metrics) >= METRICS_KEYS
    assert metrics["date"] == "2026-12-06" and metrics["conversations"] == 9
    page = built.read_text("utf-8")
    assert "客服日报" in page and "Daily service report".upper() in page
    assert "2026年12月6日 星期日" in page and "Sunday, 6 December 2026" in page
    assert f"{DESK}/desk/conversations/{day['c5']}" in page  # the red card's link
    assert "禁用语 Forbidden words" in page and "能开发票吗" in page
    assert "@media print" in page


def test_the_page_loads_only_its_own_files(built: Path) -> None:
    parser = Resources()
    parser.feed(built.read_text("utf-8"))
    assert "script" not in parser.tags and "link" not in parser.tags
    assert sorted(parser.loaded) == sorted(f"charts/{name}.svg" for name in CHARTS)
    for source in parser.loaded:
        assert (built.parent / source).is_file()
    assert all(link.startswith(f"{DESK}/desk/") for link in parser.links)
    assert "url(" not in built.read_text("utf-8")  # no fonts or images from the CSS


def test_building_again_replaces_the_files_and_updates_the_run(
    engine: Engine, policy: ServicePolicy, built: Path, tmp_path: Path
) -> None:
    settings = Settings(var_dir=tmp_path / "var")
    later = z("2026-12-07T06:00")
    build_daily(settings, engine, policy, DAY, built.parent, desk_url=DESK, now=later)
    with session_factory(engine)() as session:
        runs = session.scalars(select(ReportRun)).all()
    assert len(runs) == 1
    assert (runs[0].key, runs[0].kind, runs[0].period) == (
        "daily:2026-12-06",
        "daily",
        "2026-12-06",
    )
    assert runs[0].path == str(built) and runs[0].built_at == later and runs[0].emailed_at is None


def test_charts_are_svg_text_and_say_no_data_when_empty() -> None:
    empty = render_all({})
    assert set(empty) == set(CHARTS)
    for svg in empty.values():
        assert svg.lstrip().startswith("<?xml") and "No data" in svg
    with pytest.raises(KeyError):
        render_all({}, ["pie"])
    assert render_png({}, ["csat"])["csat"].startswith(b"\x89PNG")


def test_chart_words_stay_text(built: Path) -> None:
    svg = (built.parent / "charts" / "hourly.svg").read_text("utf-8")
    assert "每小时会话 Conversations per hour" in svg
    assert "Noto Sans CJK SC" in svg


def test_formatting() -> None:
    assert pct(None) == "—" and pct(0.25) == "25.0%"
    assert duration(45) == "45 s" and duration(150) == "2.5 min" and duration(7200) == "2.0 h"


def test_no_smtp_emails_nobody(engine: Engine, policy: ServicePolicy, built: Path) -> None:
    assert email_daily(Settings(smtp_host=""), engine, policy, DAY, built) == []


def test_email_daily_sends_the_report_to_supervisors_and_admins(
    engine: Engine,
    policy: ServicePolicy,
    built: Path,
    smtp: tuple[Collector, int],
    tmp_path: Path,
) -> None:
    with session_factory(engine).begin() as session:
        agent(session, "root", "Admin", role=AgentRole.admin, email="root@shop.example")
        agent(session, "nomail", "No mail", role=AgentRole.supervisor)
        agent(session, "gone", "Gone", role=AgentRole.supervisor, email="g@shop.example",
              active=False)  # fmt: skip
        agent(session, "plain", "Agent", email="agent@shop.example")
    assert recipients(engine) == ["boss@shop.example", "root@shop.example"]
    collector, port = smtp
    settings = Settings(var_dir=tmp_path / "var", smtp_host="127.0.0.1", smtp_port=port,
                        smtp_sender="kefu@shop.example")  # fmt: skip
    sent = email_daily(settings, engine, policy, DAY, built, desk_url=DESK, now=BUILT)
    assert sent == ["boss@shop.example", "root@shop.example"]
    assert [to for to, _ in collector.messages] == [["boss@shop.example"], ["root@shop.example"]]
    message = collector.messages[0][1]
    assert "2026-12-06" in message["Subject"] and "客服日报" in message["Subject"]
    html = message.get_body(preferencelist=("html",))
    assert html is not None and 'src="cid:chart-hourly"' in html.get_content()
    text = message.get_body(preferencelist=("plain",))
    assert text is not None and "SLA" in text.get_content()
    images = {
        part.get("Content-ID"): part
        for part in message.walk()
        if part.get_content_type() == "image/png"
    }
    assert set(images) == {f"<chart-{name}>" for name in CHARTS}
    [attached] = [
        part for part in message.iter_attachments() if part.get_filename() == "metrics.json"
    ]
    assert json.loads(attached.get_content())["date"] == "2026-12-06"
    with session_factory(engine)() as session:
        run = session.scalars(select(ReportRun)).one()
    assert run.emailed_at == BUILT and run.recipients == sent


def test_send_mail_attaches_files_without_html(smtp: tuple[Collector, int], tmp_path: Path) -> None:
    collector, port = smtp
    settings = Settings(var_dir=tmp_path, smtp_host="127.0.0.1", smtp_port=port)
    part = MailPart("a.json", b"{}", "application/json")
    assert asyncio.run(send_mail(settings, "x@shop.example", "主题", "正文", attachments=[part]))
    message = collector.messages[0][1]
    assert message["Subject"] == "主题"
    assert [p.get_filename() for p in message.iter_attachments()] == ["a.json"]
    assert not asyncio.run(send_mail(Settings(var_dir=tmp_path), "x@shop.example", "s", "t"))
