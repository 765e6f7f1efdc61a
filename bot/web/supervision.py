"""What the desk's supervision routes share: their services, pages, errors, days and figures.

The supervision pages (`routes/dashboard.py`, `routes/conversations.py`, `routes/quality.py`,
`routes/reports.py`) take these from here, never from each other.

Roles: the dashboard, the reports and every decision are for supervisors and admins
(`LEAD_ROLES`); conversations and QA findings for agents too (their own only: decided by
`bot.supervision`'s `QualityDesk`); the weekly review list for every desk account (its
`ReviewList` decides who may change what). Editors have no QA pages: theirs go on to the
review queue, an agent's dashboard to the quality page.

Services live on `app.state` (`quality_desk`, `review_list`, `day_figures`), made on first use;
tests may set them beforehand. Blocking work runs in threads; `bot.supervision`'s refusals
become 404 / 403 / 409 / 422 with its message.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from fastapi import HTTPException, Request, Response, status
from fastapi.responses import RedirectResponse
from sqlalchemy import Engine
from starlette.requests import HTTPConnection

from bot.core.db import AgentRole
from bot.service.policy import ServicePolicy
from bot.supervision.appeals import QualityDesk
from bot.supervision.errors import QaConflict, QaError, QaForbidden, QaNotFound
from bot.supervision.metrics import day_metrics
from bot.supervision.review_list import ReviewList
from bot.supervision.rules import load_qa_rules
from bot.web.deps import LEAD_ROLES, TICKET_ROLES, OptionalSession, app_engine, casework_of
from bot.web.pages import desk_page, templates

T = TypeVar("T")

QUALITY_ROLES = TICKET_ROLES
"""Who sees conversations and QA findings (agents only their own)."""
HOME = {AgentRole.agent: "/desk/quality", AgentRole.editor: "/desk/review"}
"""Where a role without access to a supervision page is sent instead."""


def now() -> datetime:
    """The current time (UTC)."""
    return datetime.now(UTC)


# ---------------------------------------------------------------------- services
def policy_of(connection: HTTPConnection) -> ServicePolicy:
    """The service policy the app's casework uses (zone, targets)."""
    policy: ServicePolicy = casework_of(connection.app).policy
    return policy


def quality_desk(connection: HTTPConnection) -> QualityDesk:
    """The app's QA findings, appeals and conversation views (made on first use)."""
    desk: QualityDesk | None = getattr(connection.app.state, "quality_desk", None)
    if desk is None:
        desk = QualityDesk(app_engine(connection), load_qa_rules())
        connection.app.state.quality_desk = desk
    return desk


def review_list(connection: HTTPConnection) -> ReviewList:
    """The app's weekly review lists (made on first use)."""
    items: ReviewList | None = getattr(connection.app.state, "review_list", None)
    if items is None:
        items = ReviewList(app_engine(connection), policy_of(connection))
        connection.app.state.review_list = items
    return items


async def run(call: Callable[[], T], refused: int = status.HTTP_409_CONFLICT) -> T:
    """Runs a blocking supervision call in a thread; its refusals become 4xx.

    Not found → 404, forbidden → 403, a conflict → `refused` (409), other bad input → 422.
    """
    try:
        return await asyncio.to_thread(call)
    except QaNotFound as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from error
    except QaForbidden as error:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(error)) from error
    except QaConflict as error:
        raise HTTPException(refused, str(error)) from error
    except QaError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from error


# ---------------------------------------------------------------------- pages
def page(
    request: Request,
    session: OptionalSession,
    template: str,
    context: dict[str, Any],
    roles: Iterable[AgentRole] = QUALITY_ROLES,
    status_code: int = status.HTTP_200_OK,
) -> Response:
    """A supervision page for `roles`: login without a session, other roles to their home."""
    if session is None:
        return RedirectResponse("/desk/login", status.HTTP_303_SEE_OTHER)
    agent = session.agent
    if agent.role not in tuple(roles):
        return RedirectResponse(HOME.get(agent.role, "/desk/tickets"), status.HTTP_303_SEE_OTHER)
    context = {
        "agent": agent,
        "csrf_token": session.csrf_token,
        "lead": agent.role in LEAD_ROLES,
        **context,
    }
    return desk_page(
        templates.TemplateResponse(request, template, context, status_code=status_code)
    )


# ---------------------------------------------------------------------- days
def today(policy: ServicePolicy, at: datetime | None = None) -> date:
    """The calendar day of `at` (default now) in the policy's time zone."""
    return (at or now()).astimezone(policy.zone).date()


def parse_day(text: str | None, policy: ServicePolicy, what: str = "date") -> date:
    """`text` (YYYY-MM-DD) as a day; today (policy zone) when empty; 422 when it is not one."""
    if not text:
        return today(policy)
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"{what}: {text[:20]!r} is not a date; use YYYY-MM-DD.",
        ) from None


def week_start(day: date) -> date:
    """The Monday of `day`'s week."""
    return day - timedelta(days=day.weekday())


# ---------------------------------------------------------------------- a day's figures
@dataclass
class _Figures:
    made: float
    metrics: dict[str, Any]
    charts: dict[str, str] = field(default_factory=dict)


@dataclass
class DayFigures:
    """A day's `day_metrics` and charts, computed once and kept a short while.

    The dashboard's figures and its six charts share one `day_metrics`; each chart is drawn
    on its first request. Today's are kept `today_seconds`, other days' `past_seconds`
    (appeals and late scores change them), at most `keep` days. Blocking: call from a thread.
    """

    engine: Engine
    policy: ServicePolicy
    today_seconds: float = 30.0
    past_seconds: float = 300.0
    keep: int = 14
    clock: Callable[[], float] = time.monotonic
    _days: dict[date, _Figures] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _fresh(self, day: date) -> _Figures:
        ttl = self.today_seconds if day >= today(self.policy) else self.past_seconds
        with self._lock:
            kept = self._days.get(day)
            if kept is None or self.clock() - kept.made > ttl:
                kept = _Figures(self.clock(), day_metrics(self.engine, self.policy, day))
                self._days[day] = kept
                for old in sorted(self._days, key=lambda d: self._days[d].made)[: -self.keep]:
                    del self._days[old]
            return kept

    def metrics(self, day: date) -> dict[str, Any]:
        """`day_metrics` of `day`."""
        return self._fresh(day).metrics

    def chart(self, day: date, name: str) -> str | None:
        """The SVG text of chart `name` of `day` (None: no such chart); each drawn once."""
        from bot.supervision.charts import CHARTS, render_all  # matplotlib: only when asked

        if name not in CHARTS:
            return None
        figures = self._fresh(day)
        svg = figures.charts.get(name)
        if svg is None:  # two requests may both draw it: harmless, and no lock held meanwhile
            svg = figures.charts[name] = render_all(figures.metrics, (name,))[name]
        return svg


def day_figures(connection: HTTPConnection) -> DayFigures:
    """The app's cache of days' figures (made on first use)."""
    figures: DayFigures | None = getattr(connection.app.state, "day_figures", None)
    if figures is None:
        figures = DayFigures(app_engine(connection), policy_of(connection))
        connection.app.state.day_figures = figures
    return figures
