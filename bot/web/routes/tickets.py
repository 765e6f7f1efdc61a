"""The desk's tickets: `/desk/tickets` (queue and ticket pages) and `/desk/api/tickets/...`.

Also the desk alerts (`/desk/api/alerts`), the supervisors' second follow-ups
(`/desk/api/followups`) and who tickets may be assigned to (`/desk/api/assignees`).

Every route needs a desk session (401 without one; pages redirect to the login form) of an
agent, supervisor or admin (`TICKET_ROLES`: editors get 403, their pages go on to the review
queue). Agents see unassigned tickets and their own; supervisors and admins all. A ticket the
viewer may not see is reported exactly like one that does not exist (404). Changes need the
session's CSRF token in `X-CSRF-Token`; bodies are bounded (`limit_body`, field lengths) and
refused with a 422 that names the field; a change the ticket's state does not allow is a 409
with `CaseWork`'s message. The work itself is `bot.casework.CaseWork` (blocking: run in
threads); a change that owes the customer a message is delivered right after the response
(`app.state.deliverer`; a failure leaves it to the scheduler) and broadcast to the consoles.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, BackgroundTasks, HTTPException, Query, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.requests import HTTPConnection

from bot.casework import CaseChange, CaseError, CaseForbidden, CaseNotFound
from bot.core.db import ComplaintGrade, FollowupOutcome, TicketStatus, UrgencyTier
from bot.web.deps import (
    LEAD_ROLES,
    TICKET_ROLES,
    AccountsDep,
    Cases,
    Csrf,
    Lead,
    Limited,
    OptionalSession,
    TicketDesk,
    get_service,
)
from bot.web.pages import desk_page, templates

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/desk", tags=["desk tickets"])
T = TypeVar("T")

TICKET_NUMBER = re.compile(r"TK\d{12}")
"""`TK` + yyyymmdd + a 4-digit daily sequence (`bot.service.tickets`)."""
UNFINISHED = "active"
"""The `status` filter for every ticket still being worked on (the queue's default)."""
MAX_NOTE = 2000
MAX_UPDATE = 1000
MAX_RESULT = 2000

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NOTE)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Username = Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AssignBody(_Body):
    """Who works on the ticket ("" = nobody), and optionally why (agents only see it)."""

    username: Username
    note: str = Field("", max_length=500)


class StatusBody(_Body):
    """A status change and the reason for it (kept in the ticket's history)."""

    status: TicketStatus
    reason: Reason


class NoteBody(_Body):
    """An internal note: agents and supervisors only, never the customer."""

    text: Text


class UpdateBody(_Body):
    """A progress update the customer is sent on their own channel."""

    text: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_UPDATE)
    ]


class ResolveBody(_Body):
    """What was done (sent to the customer), and the improvement measure taken, if any."""

    result: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_RESULT)
    ]
    improvement: Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_RESULT)] = (
        ""
    )


class ReopenBody(_Body):
    """Why the ticket is opened again."""

    reason: Reason


class OutcomeBody(_Body):
    """How a second follow-up with an unhappy customer ended."""

    outcome: FollowupOutcome
    note: str = Field("", max_length=MAX_NOTE)


class EmptyBody(_Body):
    """No fields."""


def _now() -> datetime:
    return datetime.now(UTC)


def _checked(number: str) -> str:
    """`number` if it looks like a ticket number; a 404 (like any unknown one) otherwise."""
    number = number.strip().upper()
    if not TICKET_NUMBER.fullmatch(number):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No ticket {number[:20]!r}.")
    return number


async def _run(call: Callable[[], T], refused: int = status.HTTP_409_CONFLICT) -> T:
    """Runs a blocking casework call in a thread; refusals become 404 / 403 / `refused`."""
    try:
        return await asyncio.to_thread(call)
    except CaseNotFound as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from error
    except CaseForbidden as error:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(error)) from error
    except CaseError as error:
        raise HTTPException(refused, str(error)) from error


async def deliver(connection: HTTPConnection, notice_ids: list[int]) -> None:
    """Delivers the notices a change owes now; a failure leaves them to the scheduler."""
    deliverer = getattr(connection.app.state, "deliverer", None)
    if deliverer is None or not notice_ids:
        return
    try:
        await deliverer.deliver_ids(list(notice_ids), _now())
    except Exception:  # the notices stay pending: the scheduler sends them
        logger.warning("Could not deliver notices %s now; the scheduler will.", notice_ids)


async def _changed(
    request: Request, background: BackgroundTasks, change: CaseChange
) -> dict[str, Any]:
    """Broadcasts the changed ticket, delivers its notices after the response; the row."""
    row = dict(change.ticket)
    await get_service(request).hub.broadcast({"type": "ticket", "ticket": row})
    if change.notice_ids:
        background.add_task(deliver, request, list(change.notice_ids))
    return {"ticket": row, "notices": list(change.notice_ids)}


# ---------------------------------------------------------------------- pages
def _page(
    request: Request,
    session: OptionalSession,
    template: str,
    context: dict[str, Any],
    status_code: int = status.HTTP_200_OK,
) -> Response:
    """A desk page for ticket roles; the login form without a session, editors on to review."""
    if session is None:
        return RedirectResponse("/desk/login", status.HTTP_303_SEE_OTHER)
    if session.agent.role not in TICKET_ROLES:
        return RedirectResponse("/desk/review", status.HTTP_303_SEE_OTHER)
    agent = session.agent
    context = {
        "agent": agent,
        "csrf_token": session.csrf_token,
        "lead": agent.role in LEAD_ROLES,
        **context,
    }
    return desk_page(
        templates.TemplateResponse(request, template, context, status_code=status_code)
    )


@router.get("/tickets", response_class=HTMLResponse, summary="The tickets page")
def tickets_page(request: Request, session: OptionalSession) -> Response:
    """The ticket queue, alerts and (supervisors) follow-up tasks; data from the API."""
    return _page(request, session, "desk_tickets.html", {})


@router.get("/tickets/{number}", response_class=HTMLResponse, summary="A ticket's page")
async def ticket_page(
    request: Request, number: str, session: OptionalSession, cases: Cases
) -> Response:
    """One ticket: record, history, conversations, notices and the agent's actions.

    404 (the same page) for a ticket the viewer may not see or that does not exist.
    """
    shown = number.strip().upper()[:20]
    found = True
    if session is not None and session.agent.role in TICKET_ROLES:
        viewer = session.agent
        try:
            checked = _checked(number)
            await _run(lambda: cases.detail(checked, viewer, _now()))
        except HTTPException:
            found = False
    return _page(
        request,
        session,
        "desk_ticket.html",
        {"number": shown, "found": found},
        status.HTTP_200_OK if found else status.HTTP_404_NOT_FOUND,
    )


# ---------------------------------------------------------------------- reading
@router.get("/api/tickets", summary="The ticket queue")
async def list_tickets(
    cases: Cases,
    agent: TicketDesk,
    status_: Annotated[
        TicketStatus | Literal["active", "all"] | None, Query(alias="status")
    ] = None,
    tier: UrgencyTier | None = None,
    grade: ComplaintGrade | None = None,
    assignee: Annotated[str | None, Query(max_length=40)] = None,
    at_risk: bool = False,
    overdue: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> dict[str, Any]:
    """Tickets the agent may see, earliest due first, filtered as asked.

    `status`: one status, `active` (every unfinished one) or `all`; `assignee`: `me`,
    `none` or a username; `at_risk` / `overdue`: only those.
    """
    wanted = None if status_ in (None, UNFINISHED) else str(getattr(status_, "value", status_))
    rows = await _run(
        lambda: cases.list(
            agent,
            status=wanted,
            tier=tier.value if tier else None,
            grade=grade.value if grade else None,
            assignee=(assignee or "").strip().lower() or None,
            at_risk=at_risk,
            overdue=overdue,
            now=_now(),
            limit=limit,
        ),
        status.HTTP_422_UNPROCESSABLE_CONTENT,
    )
    return {"tickets": rows}


@router.get("/api/tickets/{number}", summary="A ticket with its record and history")
async def ticket_detail(number: str, cases: Cases, agent: TicketDesk) -> dict[str, Any]:
    """The ticket row, service record (SPIN answers), history, conversations and notices."""
    checked = _checked(number)
    detail: dict[str, Any] = await _run(lambda: cases.detail(checked, agent, _now()))
    return detail


@router.get("/api/assignees", summary="Who tickets may be assigned to")
async def assignees(accounts: AccountsDep, agent: TicketDesk) -> list[dict[str, str]]:
    """Active agents, supervisors and admins (for the assign form)."""
    everyone = await asyncio.to_thread(accounts.agents.list)
    return [
        {"username": a.username, "display_name": a.display_name, "role": a.role.value}
        for a in everyone
        if a.active and a.role in TICKET_ROLES
    ]


# ---------------------------------------------------------------------- changes
@router.post(
    "/api/tickets/{number}/assign", summary="Assign a ticket", dependencies=[Csrf, Limited]
)
async def assign(
    request: Request,
    background: BackgroundTasks,
    number: str,
    body: AssignBody,
    cases: Cases,
    agent: TicketDesk,
) -> dict[str, Any]:
    """Gives the ticket to an agent ("" = nobody); agents may only take unassigned ones."""
    checked = _checked(number)
    username = body.username.lower()
    change = await _run(lambda: cases.assign(checked, username, agent, body.note.strip()))
    return await _changed(request, background, change)


@router.post(
    "/api/tickets/{number}/status", summary="Change a ticket's status", dependencies=[Csrf, Limited]
)
async def set_status(
    request: Request,
    background: BackgroundTasks,
    number: str,
    body: StatusBody,
    cases: Cases,
    agent: TicketDesk,
) -> dict[str, Any]:
    """Moves the ticket to another status, with the reason (resolving has its own call)."""
    checked = _checked(number)
    change = await _run(lambda: cases.set_status(checked, body.status, body.reason, agent))
    return await _changed(request, background, change)


@router.post(
    "/api/tickets/{number}/notes", summary="Add an internal note", dependencies=[Csrf, Limited]
)
async def add_note(
    request: Request,
    background: BackgroundTasks,
    number: str,
    body: NoteBody,
    cases: Cases,
    agent: TicketDesk,
) -> dict[str, Any]:
    """A note in the ticket's history for agents and supervisors; the customer never sees it."""
    checked = _checked(number)
    change = await _run(lambda: cases.add_note(checked, body.text, agent))
    return await _changed(request, background, change)


@router.post(
    "/api/tickets/{number}/updates",
    summary="Send the customer a progress update",
    dependencies=[Csrf, Limited],
)
async def post_update(
    request: Request,
    background: BackgroundTasks,
    number: str,
    body: UpdateBody,
    cases: Cases,
    agent: TicketDesk,
) -> dict[str, Any]:
    """A customer-visible progress update, sent on the customer's own channel."""
    checked = _checked(number)
    change = await _run(lambda: cases.post_progress(checked, body.text, agent))
    return await _changed(request, background, change)


@router.post(
    "/api/tickets/{number}/resolve", summary="Resolve a ticket", dependencies=[Csrf, Limited]
)
async def resolve(
    request: Request,
    background: BackgroundTasks,
    number: str,
    body: ResolveBody,
    cases: Cases,
    agent: TicketDesk,
) -> dict[str, Any]:
    """Resolves with the result and improvement measure; the customer gets both and a CSAT."""
    checked = _checked(number)
    change = await _run(lambda: cases.resolve(checked, body.result, body.improvement, agent))
    return await _changed(request, background, change)


@router.post(
    "/api/tickets/{number}/reopen", summary="Reopen a ticket", dependencies=[Csrf, Limited]
)
async def reopen(
    request: Request,
    background: BackgroundTasks,
    number: str,
    body: ReopenBody,
    cases: Cases,
    agent: TicketDesk,
) -> dict[str, Any]:
    """Opens a resolved ticket again (a new resolution window starts)."""
    checked = _checked(number)
    change = await _run(lambda: cases.reopen(checked, body.reason, agent))
    return await _changed(request, background, change)


# ---------------------------------------------------------------------- follow-ups and alerts
@router.get("/api/followups", summary="Second follow-up tasks")
async def followups(cases: Cases, agent: Lead, done: bool = False) -> dict[str, Any]:
    """Supervisors and admins: open follow-up tasks (`done=true`: the finished ones too)."""
    tasks = await _run(lambda: cases.followup_tasks(agent, open_only=not done))
    return {"tasks": tasks}


@router.post(
    "/api/followups/{task_id}/outcome",
    summary="Record a follow-up's outcome",
    dependencies=[Csrf, Limited],
)
async def record_outcome(
    request: Request, task_id: int, body: OutcomeBody, cases: Cases, agent: Lead
) -> dict[str, Any]:
    """Supervisors and admins: how the second follow-up ended (kept in the ticket's history)."""
    task: dict[str, Any] = await _run(
        lambda: cases.record_followup(task_id, body.outcome, body.note.strip(), agent)
    )
    await get_service(request).hub.broadcast({"type": "followup", "task": task})
    return task


@router.get("/api/alerts", summary="Desk alerts")
async def alerts(
    cases: Cases,
    agent: TicketDesk,
    after: Annotated[int, Query(ge=0)] = 0,
    acknowledged: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
) -> dict[str, Any]:
    """Alerts for the viewer (SLA at risk or breached, undeliverable notices, follow-ups...)."""
    found = await _run(
        lambda: cases.alerts(agent, after_id=after, include_acknowledged=acknowledged, limit=limit)
    )
    return {"alerts": found}


@router.post(
    "/api/alerts/{alert_id}/ack", summary="Acknowledge an alert", dependencies=[Csrf, Limited]
)
async def acknowledge(
    request: Request,
    alert_id: int,
    cases: Cases,
    agent: TicketDesk,
    body: EmptyBody | None = None,
) -> dict[str, Any]:
    """Marks the alert seen (by whom, when); 404 for one the viewer may not see."""
    alert: dict[str, Any] = await _run(lambda: cases.acknowledge_alert(alert_id, agent))
    await get_service(request).hub.broadcast({"type": "alert", "alert": alert})
    return alert
