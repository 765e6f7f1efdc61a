"""The agent console page (`/desk`): the handoff queue and conversations, for signed-in agents.

Its data comes from the handoffs API (`routes/handoffs.py`); without a session the page
redirects to the login form, a supervisor (no console) to the tickets and an editor to the
review queue.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse

from bot.web.deps import CONSOLE_ROLES, TICKET_ROLES, OptionalSession
from bot.web.pages import desk_page, templates

router = APIRouter(prefix="/desk", tags=["desk console"])


@router.get("", response_class=HTMLResponse, summary="The desk page")
def console_page(request: Request, session: OptionalSession) -> Response:
    """The desk (the queue arrives with the handoff console); the login form without a session."""
    if session is None:
        return RedirectResponse("/desk/login", status.HTTP_303_SEE_OTHER)
    if session.agent.role not in CONSOLE_ROLES:
        # supervisors start on their dashboard; editors on the review queue
        elsewhere = "/desk/dashboard" if session.agent.role in TICKET_ROLES else "/desk/review"
        return RedirectResponse(elsewhere, status.HTTP_303_SEE_OTHER)
    return desk_page(
        templates.TemplateResponse(
            request, "desk.html", {"agent": session.agent, "csrf_token": session.csrf_token}
        )
    )
