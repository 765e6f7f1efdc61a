"""Built reports in the desk: `/desk/reports/{daily|weekly|monthly}/{period}[/{file}]`.

Supervisors and admins only. `/desk/reports/daily/2026-12-06` builds the day's report when it
is missing or was built before the day ended (today's: on every visit), then redirects to its
page, `.../report.html`, whose charts and `metrics.json` are served from the same folder
(`settings.reports_dir/<kind>/<period>/`). Weekly: any day of the week (`weekly.html`, the
review list); monthly: `YYYY-MM` (`audit.html`). A file outside the folder is never served;
a bad or future period is a 404 with a message. Reports allow inline styles, never scripts.
"""

from __future__ import annotations

import asyncio
import mimetypes
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import FileResponse, RedirectResponse
from sqlalchemy import Engine

from bot.core.settings import Settings
from bot.service.policy import ServicePolicy
from bot.supervision.metrics import day_bounds
from bot.web.deps import LEAD_ROLES, Lead, OptionalSession, app_engine, app_settings
from bot.web.supervision import HOME, now, policy_of, today, week_start

router = APIRouter(prefix="/desk", tags=["desk reports"])

REPORT_CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)
"""Reports are static pages: their own styles and images, no scripts."""
_building = threading.Lock()


@dataclass(frozen=True)
class Period:
    """A report's kind and period: its folder, main page and time span."""

    kind: str
    start: date
    end: date
    """The day after the period."""
    label: str
    page: str

    def folder(self, settings: Settings) -> Path:
        """Where it is built: `reports_dir/<kind>/<label>`."""
        assert settings.reports_dir is not None  # filled in by Settings
        return settings.reports_dir / self.kind / self.label


def _month_after(first: date) -> date:
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1)


def period_of(kind: str, text: str, policy: ServicePolicy) -> Period:
    """The period `text` of report `kind`; 404 with a message for a bad or future one."""
    try:
        if kind == "daily":
            day = date.fromisoformat(text)
            found = Period(kind, day, day + timedelta(days=1), day.isoformat(), "report.html")
        elif kind == "weekly":
            monday = week_start(date.fromisoformat(text))
            found = Period(
                kind, monday, monday + timedelta(days=7), monday.isoformat(), "weekly.html"
            )
        elif kind == "monthly":
            first = date.fromisoformat(f"{text}-01") if len(text) == 7 else None
            if first is None:
                raise ValueError(text)
            found = Period(kind, first, _month_after(first), text, "audit.html")
        else:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"No {kind[:20]!r} reports: daily, weekly or monthly."
            )
    except ValueError:
        shape = {"daily": "YYYY-MM-DD", "weekly": "YYYY-MM-DD", "monthly": "YYYY-MM"}[kind]
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"{text[:20]!r} is not a {kind} period ({shape})."
        ) from None
    if found.start > today(policy):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{found.label} has not started yet.")
    return found


def _builder(period: Period) -> Callable[..., Path]:
    """The function that builds `period`'s report (imported on first use: matplotlib)."""
    if period.kind == "daily":
        from bot.supervision.report import build_daily

        return build_daily
    if period.kind == "weekly":
        from bot.supervision.review_list import build_weekly

        return build_weekly
    from bot.supervision.audit import build_monthly

    return build_monthly


def ensure_built(
    settings: Settings, desk_url: str, engine: Engine, policy: ServicePolicy, period: Period
) -> Path:
    """The report's main page, built first when missing or built before its period ended.

    Links in a daily report point to the desk at `desk_url` (the one the viewer uses).
    """
    folder = period.folder(settings)
    main = folder / period.page
    ended = day_bounds(policy, period.end)[0]
    with _building:
        if main.is_file() and datetime.fromtimestamp(main.stat().st_mtime, ended.tzinfo) >= ended:
            return main
        build = _builder(period)
        if period.kind == "daily":
            built = build(settings, engine, policy, period.start, folder, desk_url=desk_url)
        else:
            built = build(settings, engine, policy, period.start, folder, now())
        return Path(built)


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get("/reports/{kind}/{period}", summary="A report (built when needed)")
async def report(request: Request, kind: str, period: str, session: OptionalSession) -> Response:
    """Builds the report if needed, then redirects to its page in its folder."""
    if session is None:
        return RedirectResponse("/desk/login", status.HTTP_303_SEE_OTHER)
    if session.agent.role not in LEAD_ROLES:
        return RedirectResponse(HOME.get(session.agent.role, "/desk/tickets"), 303)
    policy = policy_of(request)
    found = period_of(kind, period.strip(), policy)
    settings, engine = app_settings(request), app_engine(request)
    main = await asyncio.to_thread(
        ensure_built, settings, _base_url(request), engine, policy, found
    )
    return RedirectResponse(
        f"/desk/reports/{found.kind}/{found.label}/{main.name}", status.HTTP_303_SEE_OTHER
    )


@router.get("/reports/{kind}/{period}/{path:path}", summary="A report's file")
async def report_file(request: Request, kind: str, period: str, path: str, agent: Lead) -> Response:
    """A file of a built report (its page, charts, JSON); never one outside its folder."""
    found = period_of(kind, period.strip(), policy_of(request))
    folder = found.folder(app_settings(request)).resolve()
    missing = HTTPException(status.HTTP_404_NOT_FOUND, f"No file {path[:80]!r} in this report.")
    if not path or "\x00" in path or "\\" in path:
        raise missing
    wanted = (folder / path).resolve()
    if not wanted.is_relative_to(folder) or not wanted.is_file():
        if wanted == folder / found.page:  # never built yet: build it
            return RedirectResponse(f"/desk/reports/{found.kind}/{found.label}", 303)
        raise missing
    media_type = mimetypes.guess_type(wanted.name)[0] or "application/octet-stream"
    if wanted.suffix == ".svg":
        media_type = "image/svg+xml"
    return FileResponse(
        wanted,
        media_type=media_type,
        headers={"Content-Security-Policy": REPORT_CSP, "Cache-Control": "no-store"},
    )
