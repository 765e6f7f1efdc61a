"""QA findings and appeals (`/desk/quality`), and the weekly review list (`/desk/review-list`).

Findings: agents see their own and may appeal one (once, with a reason); supervisors and
admins see all and decide pending appeals (an overturned finding no longer counts: the
conversation is scored again). Editors have no findings (their page goes on to the review
queue, the API answers 403). The review list: every desk account may read it; supervisors and
admins change anything and add items, an item's owner its status and note (`ReviewList`
decides). Changes need the session's CSRF token; bodies are bounded and strict (422 names the
field); `bot.supervision`'s refusals are 404 / 403 / 409 / 422 with its message.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, StringConstraints

from bot.core.db import AgentRole
from bot.supervision.appeals import QualityDesk
from bot.supervision.metrics import day_bounds
from bot.supervision.review_list import ReviewList
from bot.web.deps import (
    AccountsDep,
    Csrf,
    CurrentAgent,
    Lead,
    Limited,
    OptionalSession,
    TicketDesk,
)
from bot.web.supervision import (
    QUALITY_ROLES,
    page,
    parse_day,
    policy_of,
    quality_desk,
    review_list,
    run,
    today,
    week_start,
)

router = APIRouter(prefix="/desk", tags=["desk quality"])

AppealStatus = Literal["none", "pending", "upheld", "overturned"]
ItemStatus = Literal["open", "doing", "done", "dropped"]
Username = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, max_length=40)]
Quality = Annotated[QualityDesk, Depends(quality_desk)]
Items = Annotated[ReviewList, Depends(review_list)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AppealBody(_Body):
    """Why the finding is wrong (the agent it is about)."""

    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]


class DecisionBody(_Body):
    """A supervisor's decision on a pending appeal, and why."""

    decision: Literal["upheld", "overturned"]
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] = ""


class ItemChange(_Body):
    """Changes to a review-list item; fields left out stay as they are."""

    owner: Username | None = None
    due_on: date | None = None
    status: ItemStatus | None = None
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None


class NewItem(_Body):
    """An item a supervisor adds to the week's list by hand."""

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    detail: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] = ""
    owner: Username
    due_on: date


# ---------------------------------------------------------------------- findings
@router.get("/quality", response_class=HTMLResponse, summary="QA findings and appeals")
def quality_page(request: Request, session: OptionalSession) -> Response:
    """Agents: their findings and appeals; supervisors: all, pending appeals to decide."""
    return page(request, session, "desk_quality.html", {}, QUALITY_ROLES)


@router.get("/api/quality/findings", summary="QA findings")
async def findings(
    request: Request,
    agent: TicketDesk,
    desk: Quality,
    status_: Annotated[AppealStatus | None, Query(alias="status")] = None,
    agent_name: Annotated[str | None, Query(alias="agent", max_length=40)] = None,
    since: Annotated[str | None, Query(max_length=20)] = None,
    rule: Annotated[str | None, Query(max_length=60)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> dict[str, Any]:
    """Findings the viewer may see, newest first; `since` is a day (policy zone), `rule` an id."""
    policy = policy_of(request)
    start = day_bounds(policy, parse_day(since, policy, "since"))[0] if since else None
    who = (agent_name or "").strip().lower() or None
    rows = await run(
        lambda: desk.findings(
            agent, status=status_, agent=who, since=start, rule=rule or None, limit=limit
        )
    )
    return {"findings": rows}


@router.post(
    "/api/quality/findings/{finding_id}/appeal",
    summary="Appeal a finding",
    dependencies=[Csrf, Limited],
)
async def appeal(
    finding_id: int, body: AppealBody, agent: TicketDesk, desk: Quality
) -> dict[str, Any]:
    """The agent the finding is about disputes it (only once); it waits for a decision."""
    row: dict[str, Any] = await run(lambda: desk.appeal(agent, finding_id, body.text))
    return row


@router.post(
    "/api/quality/findings/{finding_id}/decision",
    summary="Decide an appeal",
    dependencies=[Csrf, Limited],
)
async def decide(finding_id: int, body: DecisionBody, agent: Lead, desk: Quality) -> dict[str, Any]:
    """Upheld (the finding stays) or overturned (it no longer counts; scores recomputed)."""
    row: dict[str, Any] = await run(
        lambda: desk.decide(agent, finding_id, body.decision, body.note)
    )
    return row


# ---------------------------------------------------------------------- the review list
@router.get("/review-list", response_class=HTMLResponse, summary="The weekly review list")
def review_list_page(request: Request, session: OptionalSession) -> Response:
    """The week's problems, owners, due dates and progress; supervisors edit and add."""
    return page(request, session, "desk_review_list.html", {}, tuple(AgentRole))


@router.get("/api/review-list", summary="A week's review list")
async def review_items(
    request: Request,
    agent: CurrentAgent,
    items: Items,
    accounts: AccountsDep,
    week: Annotated[str | None, Query(max_length=20)] = None,
    status_: Annotated[ItemStatus | None, Query(alias="status")] = None,
) -> dict[str, Any]:
    """The items the viewer may see, and who may own items (active accounts).

    `week`: any day of the week (default: every week); `status`: one status.
    """
    policy = policy_of(request)
    start = week_start(parse_day(week, policy, "week")) if week else None
    rows, everyone = await asyncio.gather(
        run(lambda: items.items(agent, week_start=start, status=status_)),
        asyncio.to_thread(accounts.agents.list),
    )
    return {
        "week": start.isoformat() if start else None,
        "this_week": week_start(today(policy)).isoformat(),
        "items": rows,
        "owners": [
            {"username": a.username, "display_name": a.display_name, "role": a.role.value}
            for a in everyone
            if a.active
        ],
    }


@router.patch(
    "/api/review-list/{item_id}",
    summary="Change a review-list item",
    dependencies=[Csrf, Limited],
)
async def change_item(
    item_id: int, body: ItemChange, agent: CurrentAgent, items: Items
) -> dict[str, Any]:
    """Owner, due date, status, note; only what is sent changes."""
    row: dict[str, Any] = await run(
        lambda: items.update(
            agent,
            item_id,
            owner=body.owner,
            due_on=body.due_on,
            status=body.status,
            note=body.note,
        ),
    )
    return row


@router.post("/api/review-list", summary="Add a review-list item", dependencies=[Csrf, Limited])
async def add_item(body: NewItem, agent: Lead, items: Items) -> dict[str, Any]:
    """A problem a supervisor noticed, with its owner and due date (this week's list)."""
    row: dict[str, Any] = await run(
        lambda: items.add(agent, body.title, body.detail, body.owner, body.due_on)
    )
    return row
