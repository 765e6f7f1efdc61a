"""The supervisors' dashboard: `/desk/dashboard`, its charts and `/desk/api/dashboard/...`.

Supervisors and admins only (an agent's page goes on to `/desk/quality`, an editor's to the
review queue; the API answers 403). The live tiles come from `metrics.live_overview` (the
page asks every 10 s); a day's figures, targets and tables from `metrics.day_metrics`, its
charts from `charts.render_all` (both kept a short while: `bot.web.supervision.DayFigures`).
Every figure links to its conversations (`metrics.DRILLDOWN` → `/desk/conversations?...`).
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import HTMLResponse

from bot.supervision.charts import CHARTS
from bot.supervision.metrics import DRILLDOWN, drilldown_query, live_overview
from bot.web.deps import LEAD_ROLES, Lead, OptionalSession, app_engine
from bot.web.supervision import (
    DayFigures,
    day_figures,
    now,
    page,
    parse_day,
    policy_of,
    today,
    week_start,
)

router = APIRouter(prefix="/desk", tags=["desk dashboard"])

CHART_LINKS = {
    "hourly": "conversations",
    "outcomes": "conversations",
    "first_response": "first_response_p50_seconds",
    "sla": "sla_hit_rate",
    "csat": "csat_average",
    "qa_agents": "red_card_count",
}
"""The figure (`DRILLDOWN` key) each chart drills down to."""
COMPARED = (
    "conversations",
    "self_service_rate",
    "handoff_rate",
    "first_response_p50_seconds",
    "sla_hit_rate",
    "csat_average",
    "red_card_count",
    "qa_bot_average",
)
"""Figures shown with the day before's value beside them."""
WEEKDAYS = ("周一 Mon", "周二 Tue", "周三 Wed", "周四 Thu", "周五 Fri", "周六 Sat", "周日 Sun")
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'"

Figures = Annotated[DayFigures, Depends(day_figures)]
DayQuery = Annotated[str | None, Query(alias="date", max_length=20)]


def _day(request: Request, text: str | None) -> date:
    """The asked day (default today, policy zone); 422 for a bad one, 404 for a future one."""
    policy = policy_of(request)
    day = parse_day(text, policy)
    if day > today(policy):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{day} has not happened yet.")
    return day


@router.get("/dashboard", response_class=HTMLResponse, summary="The supervisors' dashboard")
def dashboard_page(request: Request, session: OptionalSession, day: DayQuery = None) -> Response:
    """Live tiles, the day's figures against targets, charts and tables; data from the API."""
    context: dict[str, Any] = {}
    if session is not None and session.agent.role in LEAD_ROLES:
        shown = _day(request, day)
        current = today(policy_of(request))
        context = {
            "day": shown.isoformat(),
            "weekday": WEEKDAYS[shown.weekday()],
            "today": current.isoformat(),
            "is_today": shown == current,
            "previous": (shown - timedelta(days=1)).isoformat(),
            "next": (shown + timedelta(days=1)).isoformat() if shown < current else "",
            "week": week_start(shown).isoformat(),
        }
    return page(request, session, "desk_dashboard.html", context, LEAD_ROLES)


@router.get("/api/dashboard/live", summary="The desk right now")
async def live(request: Request, agent: Lead) -> dict[str, Any]:
    """The live tiles and today's headline figures (`metrics.live_overview`).

    Open tickets, unattended handoffs, at risk, overdue, agents online, pending appeals and
    open alerts.
    """
    engine, policy = app_engine(request), policy_of(request)
    overview: dict[str, Any] = await asyncio.to_thread(live_overview, engine, policy, now())
    return overview


def _drill(figure: str, day: date) -> str:
    """The conversations behind `figure` on `day` (`metrics.DRILLDOWN`, without an item key)."""
    return f"/desk/conversations?{urlencode(drilldown_query(figure, day))}"


@router.get("/api/dashboard/day", summary="A day's figures")
async def day_figures_api(
    request: Request, agent: Lead, figures: Figures, day: DayQuery = None
) -> dict[str, Any]:
    """`metrics.day_metrics` of the day (default today), with the day before's headlines.

    And the links: drill-downs (`links`: figure → its list; `drilldown`: figure → the filter,
    `{key}` standing for an item), charts, reports and the CSV export.
    """
    shown = _day(request, day)
    metrics, before = await asyncio.gather(
        asyncio.to_thread(figures.metrics, shown),
        asyncio.to_thread(figures.metrics, shown - timedelta(days=1)),
    )
    return {
        "date": shown.isoformat(),
        "today": shown == today(policy_of(request)),
        "metrics": metrics,
        "previous": {name: before.get(name) for name in COMPARED},
        "links": {figure: _drill(figure, shown) for figure in DRILLDOWN},
        "drilldown": DRILLDOWN,
        "conversations": _drill("conversations", shown),
        "csv": f"/desk/api/conversations.csv?date={shown.isoformat()}",
        "charts": {
            name: {
                "src": f"/desk/dashboard/charts/{name}.svg?date={shown.isoformat()}",
                "link": _drill(CHART_LINKS.get(name, "conversations"), shown),
            }
            for name in CHARTS
        },
        "reports": {
            "daily": f"/desk/reports/daily/{shown.isoformat()}",
            "weekly": f"/desk/reports/weekly/{week_start(shown).isoformat()}",
            "monthly": f"/desk/reports/monthly/{shown.strftime('%Y-%m')}",
            "review_list": f"/desk/review-list?week={week_start(shown).isoformat()}",
        },
    }


@router.get("/dashboard/charts/{name}.svg", summary="A dashboard chart")
async def chart(
    request: Request, name: str, agent: Lead, figures: Figures, day: DayQuery = None
) -> Response:
    """One chart of the day (SVG text; `charts.render_all`); 404 for an unknown name."""
    if name not in CHARTS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No chart {name[:40]!r}.")
    shown = _day(request, day)
    svg = await asyncio.to_thread(figures.chart, shown, name)
    if svg is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No chart {name!r} for {shown}.")
    return Response(
        svg,
        media_type="image/svg+xml",
        headers={"Content-Security-Policy": SVG_CSP, "Cache-Control": "private, max-age=30"},
    )
