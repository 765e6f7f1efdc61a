"""Recorded conversations: the drill-down list, one conversation, and the CSV export.

Routes: `/desk/conversations` (the list page), `/desk/conversations/{pk}` (transcript, QA
scores, findings with their appeals), `/desk/api/conversations` (JSON: total and a page of
rows), `/desk/api/conversations.csv` (every row, same filters) and
`/desk/api/conversations/{pk}`.

Agents, supervisors and admins (`QUALITY_ROLES`; editors' pages go on to the review queue).
An agent sees only the conversations they wrote in: the list is filtered to them whatever the
URL asks, and any other conversation is a 404 exactly like one that does not exist. Filters
are in the URL (`metrics.ConversationFilter.from_query`: `date`, or `start` and `end`, are
days in the policy's time zone; the dashboard's links come from `metrics.DRILLDOWN`); a bad
or unknown one is a 422 that names it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import HTMLResponse, StreamingResponse

from bot.supervision.errors import QaError
from bot.supervision.metrics import ConversationFilter, conversation_rows, csv_chunks
from bot.web.deps import LEAD_ROLES, OptionalSession, TicketDesk, app_engine
from bot.web.supervision import QUALITY_ROLES, page, policy_of, quality_desk, run

router = APIRouter(prefix="/desk", tags=["desk conversations"])


def _checked(pk: str) -> int:
    """`pk` as a conversation id; a 404 (like any unknown one) when it is not a number."""
    if not pk.isdigit() or len(pk) > 12:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No conversation {pk[:20]!r}.")
    return int(pk)


def conversation_filter(request: Request, agent: TicketDesk) -> ConversationFilter:
    """The list's filters from the URL; an agent always gets only their own conversations.

    `ConversationFilter.from_query`: `date` (or `start` and `end`), `outcome`, `channel`...
    """
    try:
        flt = ConversationFilter.from_query(request.query_params)
    except QaError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from error
    if agent.role not in LEAD_ROLES:
        flt = replace(flt, agent=agent.username)
    return flt


Filter = Annotated[ConversationFilter, Depends(conversation_filter)]


# ---------------------------------------------------------------------- pages
@router.get("/conversations", response_class=HTMLResponse, summary="The conversations list")
def conversations_page(request: Request, session: OptionalSession) -> Response:
    """The drill-down list: filters in the URL, rows from the API, pages of 50."""
    return page(request, session, "desk_conversations.html", {}, QUALITY_ROLES)


@router.get("/conversations/{pk}", response_class=HTMLResponse, summary="A conversation's page")
async def conversation_page(request: Request, pk: str, session: OptionalSession) -> Response:
    """Transcript, QA scores and findings (appeal, decide); 404 for one the viewer may not see."""
    found = True
    if session is not None and session.agent.role in QUALITY_ROLES:
        viewer, desk = session.agent, quality_desk(request)
        try:
            number = _checked(pk)
            await run(lambda: desk.conversation(viewer, number))
        except HTTPException:
            found = False
    return page(
        request,
        session,
        "desk_conversation.html",
        {"pk": pk[:20], "found": found},
        QUALITY_ROLES,
        status.HTTP_200_OK if found else status.HTTP_404_NOT_FOUND,
    )


# ---------------------------------------------------------------------- API
@router.get("/api/conversations", summary="Conversations, filtered")
async def list_conversations(
    request: Request,
    flt: Filter,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    """`total` conversations match; `rows`: `limit` of them from `offset`, newest first."""
    engine, policy = app_engine(request), policy_of(request)
    total, rows = await run(lambda: conversation_rows(engine, policy, flt, limit, offset))
    return {"total": total, "limit": limit, "offset": offset, "rows": rows}


def _csv_name(request: Request) -> str:
    """`conversations-<date>.csv` (or `<from>_<to>`, or `all`): only digits and dashes."""
    asked = request.query_params
    period = asked.get("date") or "_".join(v for v in (asked.get("start"), asked.get("end")) if v)
    return f"conversations-{re.sub(r'[^0-9_-]', '', period)[:40] or 'all'}.csv"


@router.get("/api/conversations.csv", summary="Conversations as CSV")
def conversations_csv(request: Request, flt: Filter) -> StreamingResponse:
    """Every matching conversation, one row each (UTF-8 with BOM, opens in Excel), streamed."""
    pieces = csv_chunks(app_engine(request), policy_of(request), flt)
    return StreamingResponse(
        (piece.encode("utf-8") for piece in pieces),  # iterated in a thread by Starlette
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_csv_name(request)}"'},
    )


@router.get("/api/conversations/{pk}", summary="A conversation with its QA")
async def conversation_detail(request: Request, pk: str, agent: TicketDesk) -> dict[str, Any]:
    """Fields, transcript, scores, findings (with appeal state), ticket and handoff."""
    number = _checked(pk)
    desk = quality_desk(request)
    detail: dict[str, Any] = await run(lambda: desk.conversation(agent, number))
    return detail
