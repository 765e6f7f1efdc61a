"""The daily report: one offline HTML page with its charts and `metrics.json`, and its email.

`build_daily` writes `report.html` (inline CSS, print-ready, no outside URLs), `metrics.json`
(`metrics.day_metrics`) and `charts/*.svg` into a folder and records the build as a
`ReportRun` (`daily:<date>`). `email_daily` sends it to every supervisor and admin with an
email address when SMTP is configured: the page as the HTML body with the charts as inline
PNG images, `metrics.json` attached. The weekly review list and the monthly audit share the
page style and helpers (`render_page`, `record_run`, `write_file`). All blocking.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from bot.core.db import Agent, AgentRole, ReportRun, session_factory
from bot.core.settings import Settings
from bot.service.mailer import MailError, MailPart, is_valid_email, send_mail
from bot.service.policy import ServicePolicy
from bot.supervision.metrics import day_metrics, drilldown_query

log = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
"""The report templates (shipped with the package: pyproject package-data)."""
RECIPIENT_ROLES = (AgentRole.supervisor, AgentRole.admin)
TARGET_LABELS = {
    "need_accuracy": ("需求记录准确率", "Need accuracy"),
    "record_completeness": ("记录完整率", "Record completeness"),
    "self_service_rate": ("自助解决率", "Self-service rate"),
    "answer_accuracy": ("知识库答复准确率", "Answer accuracy"),
    "sla_hit_rate": ("SLA 达成率", "SLA hit rate"),
    "csat_response_rate": ("满意度参评率", "CSAT response rate"),
    "satisfaction": ("平均满意度", "Satisfaction (1-5)"),
    "qa_pass_rate": ("质检通过率", "QA pass rate"),
    "complaint_rate": ("投诉率", "Complaint rate"),
}
TIER_LABELS = {"urgent": ("紧急", "Urgent"), "normal": ("普通", "Normal"),
               "consultation": ("咨询", "Consultation")}  # fmt: skip
GRADE_LABELS = {
    "general": ("一般投诉", "General complaint"),
    "major": ("重大投诉", "Major complaint"),
}
OUTCOME_LABELS = {
    "self_service": ("机器人解决", "Self-service"),
    "ticket": ("转工单", "Ticket"),
    "handoff": ("转人工", "Handoff"),
    "unresolved": ("未解决", "Unresolved"),
    "abandoned": ("无回复", "Abandoned"),
    "open": ("进行中", "Open"),
}
CHANNEL_LABELS = {"wechat": "微信 WeChat", "socketio": "网页 Web", "web": "网页 Web",
                  "telegram": "Telegram", "rest": "API"}  # fmt: skip
WEEKDAYS_ZH = "一二三四五六日"


# --------------------------------------------------------------------------- formatting
def pct(value: float | None, places: int = 1) -> str:
    """A 0..1 rate as a percentage ("—" without data)."""
    return "—" if value is None else f"{value * 100:.{places}f}%"


def duration(seconds: float | None) -> str:
    """A duration in the unit that reads best: 45 s, 3.5 min, 2.1 h ("—" without data)."""
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def hours(value: float | None) -> str:
    """Hours with one decimal ("—" without data)."""
    return "—" if value is None else f"{value:.1f} h"


def number(value: float | None, places: int = 0) -> str:
    """A number with thousands separators ("—" without data)."""
    return "—" if value is None else f"{value:,.{places}f}"


def target_value(name: str, value: float | None) -> str:
    """A target or actual value as the service plan writes it."""
    if name == "satisfaction":
        return "—" if value is None else f"{value:.2f}"
    return pct(value)


def day_label(day: date) -> tuple[str, str]:
    """`2026年12月6日 星期日` and `Sunday, 6 December 2026`."""
    zh = f"{day.year}年{day.month}月{day.day}日 星期{WEEKDAYS_ZH[day.weekday()]}"
    return zh, f"{day:%A}, {day.day} {day:%B %Y}"


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pct=pct, duration=duration, hours=hours, number=number)
    env.globals.update(
        TARGET_LABELS=TARGET_LABELS,
        TIER_LABELS=TIER_LABELS,
        GRADE_LABELS=GRADE_LABELS,
        OUTCOME_LABELS=OUTCOME_LABELS,
        CHANNEL_LABELS=CHANNEL_LABELS,
        target_value=target_value,
    )
    return env


def render_page(template: str, **context: Any) -> str:
    """Renders one of the report templates (`bot/supervision/templates`)."""
    return _environment().get_template(template).render(**context)


def write_file(path: Path, content: str | bytes) -> None:
    """Writes a file atomically (a reader never sees half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode("utf-8") if isinstance(content, str) else content
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    """Writes `data` as indented UTF-8 JSON (atomically)."""
    write_file(path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def record_run(engine: Engine, kind: str, period: str, path: Path, now: datetime) -> None:
    """Records that the report `<kind>:<period>` was built at `path` (insert or update)."""
    key = f"{kind}:{period}"
    sessions = session_factory(engine)
    for _ in range(2):  # a concurrent build may insert the row first: then update it
        try:
            with sessions.begin() as session:
                run = session.scalars(select(ReportRun).where(ReportRun.key == key)).first()
                if run is None:
                    session.add(ReportRun(key=key, kind=kind, period=period, path=str(path),
                                          built_at=now, recipients=[]))  # fmt: skip
                else:
                    run.path, run.built_at = str(path), now
            return
        except IntegrityError:
            continue


def desk_base(settings: Settings, desk_url: str | None) -> str:
    """The desk's base URL for links in reports (default: the web service's own URL)."""
    return (desk_url or settings.web_url).rstrip("/")


# --------------------------------------------------------------------------- daily report
def _drill_links(metrics: dict[str, Any], desk: str, day: date) -> dict[str, Any]:
    """Desk links of the report's tables (each figure's conversations, `DRILLDOWN`)."""

    def url(figure: str, key: str | int | None = None) -> str:
        query = drilldown_query(figure, day, key)
        return f"{desk}/desk/conversations?" + "&".join(f"{k}={v}" for k, v in query.items())

    return {
        "all": url("conversations"),
        "channel": {key: url("conversations_by_channel", key)
                    for key in metrics["conversations_by_channel"]},
        "outcome": {key: url("outcomes", key) for key in metrics["outcomes"]},
        "agent": {row["agent"]: url("qa_agents", row["agent"]) for row in metrics["qa_agents"]},
        "sla_missed": url("sla_hit_rate"),
        "red_cards": url("red_card_count"),
        "unresolved": url("outcomes", "unresolved"),
        "dashboard": f"{desk}/desk/dashboard?date={day.isoformat()}",
    }  # fmt: skip


def render_daily(
    metrics: dict[str, Any],
    chart_src: dict[str, str],
    desk: str,
    built_at: datetime,
    policy: ServicePolicy,
) -> str:
    """The daily report page of `metrics` (chart images at `chart_src`: file names or cids)."""
    day = date.fromisoformat(metrics["date"])
    return render_page(
        "daily_report.html",
        m=metrics,
        day=day,
        day_zh=day_label(day)[0],
        day_en=day_label(day)[1],
        built=built_at.astimezone(policy.zone).strftime("%Y-%m-%d %H:%M"),
        as_of=datetime.fromisoformat(metrics["as_of"]).astimezone(policy.zone),
        charts=chart_src,
        desk=desk,
        links=_drill_links(metrics, desk, day),
        generated=metrics["conversations_by_source"].get("generated", 0),
    )


def build_daily(
    settings: Settings,
    engine: Engine,
    policy: ServicePolicy,
    day: date,
    out_dir: Path,
    *,
    desk_url: str | None = None,
    now: datetime | None = None,
) -> Path:
    """Builds `day`'s report into `out_dir` and records it; returns `out_dir/report.html`.

    Writes `report.html`, `metrics.json` and `charts/<name>.svg`; building again replaces
    them. Links point to the desk at `desk_url` (default: `settings.web_url`).
    """
    from bot.supervision.charts import render_all

    moment = now or datetime.now(UTC)
    metrics = day_metrics(engine, policy, day, now=moment)
    charts = render_all(metrics)
    for name, svg in charts.items():
        write_file(out_dir / "charts" / f"{name}.svg", svg)
    write_json(out_dir / "metrics.json", metrics)
    page = render_daily(
        metrics,
        {name: f"charts/{name}.svg" for name in charts},
        desk_base(settings, desk_url),
        moment,
        policy,
    )
    path = out_dir / "report.html"
    write_file(path, page)
    record_run(engine, "daily", day.isoformat(), path, moment)
    return path


def recipients(engine: Engine) -> list[str]:
    """Email addresses of the active supervisors and admins (valid ones, once each)."""
    with session_factory(engine)() as session:
        emails = session.scalars(
            select(Agent.email)
            .where(
                Agent.active.is_(True), Agent.role.in_(RECIPIENT_ROLES), Agent.email.is_not(None)
            )
            .order_by(Agent.username)
        ).all()
    return list(dict.fromkeys(email for email in emails if email and is_valid_email(email)))


def _summary(metrics: dict[str, Any]) -> str:
    """The plain-text body: the headline figures (for mail programs without HTML)."""
    lines = [
        f"客服日报 Daily service report {metrics['date']}",
        "",
        f"会话 Conversations: {metrics['conversations']}",
        f"自助解决率 Self-service rate: {pct(metrics['self_service_rate'])}",
        f"转人工率 Handoff rate: {pct(metrics['handoff_rate'])}",
        f"人工首响 P50 First response P50: {duration(metrics['first_response_p50_seconds'])}",
        f"SLA 达成率 SLA hit rate: {pct(metrics['sla_hit_rate'])}",
        f"平均满意度 CSAT: {number(metrics['csat_average'], 2)}",
        f"质检通过率 QA pass rate: {pct(metrics['qa_pass_rate'])}",
        f"红牌 Red cards: {metrics['red_card_count']}",
        "",
        "完整报告见 HTML 正文，数据见附件 metrics.json。",
        "The full report is the HTML body; the figures are attached as metrics.json.",
    ]
    return "\n".join(lines) + "\n"


def email_daily(
    settings: Settings,
    engine: Engine,
    policy: ServicePolicy,
    day: date,
    report_path: Path,
    *,
    desk_url: str | None = None,
    now: datetime | None = None,
) -> list[str]:
    """Emails the built report of `day` to the supervisors and admins; returns who got it.

    Nothing is sent (and nothing recorded) without `settings.smtp_host` or recipients. A
    failure for one address is logged and skips only that address. Records `emailed_at`
    and the recipients on the day's `ReportRun`. Blocking: from async code use a thread.
    """
    if not settings.smtp_host:
        return []
    addresses = recipients(engine)
    if not addresses:
        return []
    from bot.supervision.charts import render_png

    moment = now or datetime.now(UTC)
    metrics_path = report_path.parent / "metrics.json"
    if not metrics_path.is_file():  # the folder was cleaned up: the figures again
        write_json(metrics_path, day_metrics(engine, policy, day, now=moment))
    metrics = json.loads(metrics_path.read_text("utf-8"))
    images = render_png(metrics)
    html = render_daily(
        metrics,
        {name: f"cid:chart-{name}" for name in images},
        desk_base(settings, desk_url),
        moment,
        policy,
    )
    parts = [
        MailPart(f"{name}.png", content, "image/png", cid=f"chart-{name}")
        for name, content in images.items()
    ]
    parts.append(MailPart("metrics.json", metrics_path.read_bytes(), "application/json"))
    subject = (
        f"客服日报 Daily report {day.isoformat()} · 会话 {metrics['conversations']} · "
        f"SLA {pct(metrics['sla_hit_rate'], 0)} · 红牌 {metrics['red_card_count']}"
    )

    async def send_all() -> list[str]:
        sent = []
        for address in addresses:
            try:
                if await send_mail(settings, address, subject, _summary(metrics), html, parts):
                    sent.append(address)
            except MailError as error:
                log.warning("daily report %s not emailed to %s: %s", day, address, error)
        return sent

    sent = asyncio.run(send_all())
    if sent:
        key = f"daily:{day.isoformat()}"
        with session_factory(engine).begin() as session:
            run = session.scalars(select(ReportRun).where(ReportRun.key == key)).first()
            if run is None:
                run = ReportRun(key=key, kind="daily", period=day.isoformat(),
                                path=str(report_path), built_at=moment)  # fmt: skip
                session.add(run)
            run.emailed_at, run.recipients = moment, sent
    return sent
