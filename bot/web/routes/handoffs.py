"""The agent console's API (`/desk/api/...`) and live updates (`/desk/ws`).

Every route needs a desk session (401 without one) of an agent or admin (403 for editors);
changes also need the session's CSRF token in `X-CSRF-Token` (403 without it). Agents see
queued handoffs and their own (another's, by id, is 404). The WebSocket (also the tickets
page's: agents, supervisors, admins) checks the session cookie, the role and the page's
origin before it accepts, re-checks the session every `SESSION_CHECK_SECONDS` and on every
message (closing with 4401 once it has ended), and forwards to each account only the events
of handoffs, tickets and alerts it may see (`bot.web.live` broadcasts the tickets and
alerts). Bad input is a 4xx with a `detail` message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable
from typing import Annotated, Any, TypeVar, cast

from fastapi import APIRouter, HTTPException, WebSocket, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.websockets import WebSocketDisconnect

from bot.casework import CaseWork
from bot.core.db import Agent, AgentRole
from bot.handoff.canned import as_api, load_canned_replies
from bot.handoff.rasa_api import RasaApiError
from bot.handoff.service import DeskService
from bot.handoff.store import MAX_TEXT, HandoffError, HandoffNotFound
from bot.web.deps import (
    CONSOLE_ROLES,
    LEAD_ROLES,
    SESSION_COOKIE,
    TICKET_ROLES,
    Accounts,
    Console,
    Csrf,
    Limited,
    Service,
    get_accounts,
    get_casework,
    get_service,
)

router = APIRouter(prefix="/desk", tags=["desk handoffs"])
T = TypeVar("T")

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT)]
Username = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MessageBody(_Body):
    """A reply to the customer or an internal note."""

    text: Text


class AssignBody(_Body):
    """Who gets the conversation, and optionally why (shown to agents only)."""

    agent: Username
    note: str = Field("", max_length=500)


class EmptyBody(_Body):
    """No fields."""


def _refused(error: HandoffError) -> HTTPException:
    """404 for an unknown handoff; 409 for every other refusal (owner, state, agent)."""
    found = not isinstance(error, HandoffNotFound)
    return HTTPException(
        status.HTTP_409_CONFLICT if found else status.HTTP_404_NOT_FOUND, str(error)
    )


async def _do(call: Awaitable[T]) -> T:
    """Awaits a desk operation, turning refusals into 4xx and Rasa failures into 502."""
    try:
        return await call
    except HandoffError as error:
        raise _refused(error) from error
    except RasaApiError as error:
        raise HTTPException(
            status.HTTP_502_BAD_GATEWAY, f"The bot server did not take it: {error}"
        ) from error


@router.get("/api/agents", summary="Agents and whether they are online")
async def agents(service: Service, agent: Console) -> list[dict[str, Any]]:
    """Every active agent (for assign and transfer)."""
    return await service.agents()


@router.get("/api/handoffs", summary="The queue of open handoffs")
async def queue(service: Service, agent: Console) -> list[dict[str, Any]]:
    """Queued handoffs and the agent's own (an admin's: all open ones), earliest due first."""
    return await service.queue(agent)


@router.get("/api/handoffs/{handoff_id}", summary="A handoff with its packet and messages")
async def detail(handoff_id: int, service: Service, agent: Console) -> dict[str, Any]:
    """The handoff, the packet the bot gathered, and the conversation since the handoff."""
    return await _do(service.detail(handoff_id, agent))


@router.post(
    "/api/handoffs/{handoff_id}/claim", summary="Claim a handoff", dependencies=[Csrf, Limited]
)
async def claim(
    handoff_id: int, service: Service, agent: Console, body: EmptyBody | None = None
) -> dict[str, Any]:
    """Takes the conversation (409 if another agent has it); the customer hears who joined."""
    return await _do(service.claim(handoff_id, agent))


@router.post(
    "/api/handoffs/{handoff_id}/assign", summary="Assign a handoff", dependencies=[Csrf, Limited]
)
async def assign(
    handoff_id: int, body: AssignBody, service: Service, agent: Console
) -> dict[str, Any]:
    """Gives the conversation to an agent (queued: anyone; active: its agent or an admin)."""
    return await _do(service.assign(handoff_id, body.agent, agent, body.note))


@router.post(
    "/api/handoffs/{handoff_id}/transfer",
    summary="Transfer a handoff",
    dependencies=[Csrf, Limited],
)
async def transfer(
    handoff_id: int, body: AssignBody, service: Service, agent: Console
) -> dict[str, Any]:
    """Passes an active conversation to another agent, with an optional note."""
    return await _do(service.assign(handoff_id, body.agent, agent, body.note))


@router.post(
    "/api/handoffs/{handoff_id}/messages",
    summary="Reply to the customer",
    dependencies=[Csrf, Limited],
)
async def reply(
    handoff_id: int, body: MessageBody, service: Service, agent: Console
) -> dict[str, Any]:
    """Sends the reply on the customer's own channel (only the conversation's agent)."""
    return await _do(service.reply(handoff_id, agent, body.text))


@router.post(
    "/api/handoffs/{handoff_id}/notes", summary="Add an internal note", dependencies=[Csrf, Limited]
)
async def note(
    handoff_id: int, body: MessageBody, service: Service, agent: Console
) -> dict[str, Any]:
    """A note for agents; the customer never sees it."""
    return await _do(service.note(handoff_id, agent, body.text))


@router.post("/api/handoffs/{handoff_id}/resolve", summary="Resolve", dependencies=[Csrf, Limited])
async def resolve(
    handoff_id: int, service: Service, agent: Console, body: EmptyBody | None = None
) -> dict[str, Any]:
    """Resolves the ticket; the bot resumes and asks the customer for a 1-5 score."""
    return await _do(service.resolve(handoff_id, agent))


@router.post(
    "/api/handoffs/{handoff_id}/hand-back", summary="Hand back", dependencies=[Csrf, Limited]
)
async def hand_back(
    handoff_id: int, service: Service, agent: Console, body: EmptyBody | None = None
) -> dict[str, Any]:
    """Returns the conversation to the bot without resolving the ticket."""
    return await _do(service.hand_back(handoff_id, agent))


@router.get("/api/handoffs/{handoff_id}/assist", summary="Knowledge-base suggestions")
async def assist(handoff_id: int, service: Service, agent: Console) -> dict[str, Any]:
    """Knowledge-base answers for the customer's latest message, with their source."""
    return await _do(service.assist(handoff_id, agent))


@router.get("/api/canned-replies", summary="The canned-reply library")
async def canned_replies(agent: Console) -> dict[str, Any]:
    """Basic, advanced and special-scenario phrases (data/service/canned_replies.yml)."""
    return cast(dict[str, Any], as_api(await asyncio.to_thread(load_canned_replies)))


def _same_origin(socket: WebSocket) -> bool:
    origin = socket.headers.get("origin")
    host = socket.headers.get("host")
    return origin is None or origin in (f"http://{host}", f"https://{host}")


TICKETS_SHOWN = 1000
"""How many of an agent's queued tickets its socket remembers at first (the page shows 200)."""
SESSION_CHECK_SECONDS = 2.0
"""How often an open WebSocket re-checks its session (logout, disable, expiry, password)."""


class _Console:
    """One desk's WebSocket as the hub sees it: forwards only what its account may see.

    Handoff events (`queue`, `message`) go to console roles only; `ticket` rows to leads
    (supervisors, admins) and to agents for unassigned tickets and their own (and once more
    when a ticket leaves them, so the page drops it); `alert`s to those `CaseWork.alerts`
    shows them to; `followup` tasks to leads.
    """

    def __init__(
        self, socket: WebSocket, agent: Agent, service: DeskService, cases: CaseWork
    ) -> None:
        self.socket = socket
        self.agent = agent
        self.service = service
        self.cases = cases
        self.shown: set[int] = set()
        """Handoffs this console was told about (their later changes still reach it)."""
        self.tickets: set[str] = set()
        """Tickets this agent was told about (their leaving still reaches it)."""

    async def send_json(self, payload: dict[str, Any]) -> None:
        if await self._may_see(payload):
            await self.socket.send_json(payload)

    async def close(self, code: int = 1000) -> None:
        await self.socket.close(code=code)

    async def _may_see(self, payload: dict[str, Any]) -> bool:
        kind = payload.get("type")
        if kind == "ticket":
            return self._may_see_ticket(payload.get("ticket") or {})
        if kind == "alert":
            return await self._may_see_alert(payload.get("alert") or {})
        if kind == "followup":
            return self.agent.role in LEAD_ROLES
        if self.agent.role not in CONSOLE_ROLES:
            return False
        if self.agent.role is AgentRole.admin:
            return True
        if kind == "queue":
            view = payload.get("handoff") or {}
            handoff_id = view.get("id")
            if not isinstance(handoff_id, int):
                return False
            owner = (view.get("agent") or {}).get("username")
            if view.get("status") == "queued" or owner == self.agent.username:
                self.shown.add(handoff_id)
                return True
            if handoff_id in self.shown:  # it just left this agent: the console drops it
                self.shown.discard(handoff_id)
                return True
            return False
        handoff_id = payload.get("handoff_id")
        if not isinstance(handoff_id, int):
            return False
        if await asyncio.to_thread(self.service.visible, handoff_id, self.agent):
            self.shown.add(handoff_id)
            return True
        return False

    def _may_see_ticket(self, row: dict[str, Any]) -> bool:
        number = row.get("number")
        if not isinstance(number, str):
            return False
        if self.agent.role in LEAD_ROLES:
            return True
        if self.agent.role is not AgentRole.agent:
            return False
        if row.get("assignee") in (None, self.agent.username):
            self.tickets.add(number)
            return True
        if number in self.tickets:  # it just went to another agent: the page drops it
            self.tickets.discard(number)
            return True
        return False

    async def _may_see_alert(self, alert: dict[str, Any]) -> bool:
        alert_id = alert.get("id")
        if not isinstance(alert_id, int):
            return False
        if self.agent.role is AgentRole.admin:
            return True
        found = await asyncio.to_thread(
            self.cases.alerts,
            self.agent,
            after_id=alert_id - 1,
            include_acknowledged=True,
            limit=1,
        )
        return any(item.get("id") == alert_id for item in found)


async def _watch_session(socket: WebSocket, accounts: Accounts, token: str) -> None:
    """Closes `socket` with 4401 once its session has ended (checked every few seconds)."""
    while True:
        await asyncio.sleep(SESSION_CHECK_SECONDS)
        if not await asyncio.to_thread(accounts.sessions.is_live, token):
            with contextlib.suppress(Exception):
                await socket.close(code=4401)
            return


@router.websocket("/ws")
async def live(socket: WebSocket) -> None:
    """Live queue, message, ticket and alert updates for a signed-in desk (same origin only)."""
    accounts = get_accounts(socket)
    token = socket.cookies.get(SESSION_COOKIE, "")
    session = await asyncio.to_thread(accounts.sessions.get, token) if token else None
    if session is None:
        await socket.close(code=4401)
        return
    if not _same_origin(socket) or session.agent.role not in TICKET_ROLES:
        await socket.close(code=4403)
        return
    service = get_service(socket)
    await socket.accept()
    agent: Agent = session.agent
    console = _Console(socket, agent, service, get_casework(socket))
    service.hub.add(cast(WebSocket, console))  # first: nothing broadcast from now on is missed
    watcher = asyncio.create_task(_watch_session(socket, accounts, token))
    try:
        if agent.role in CONSOLE_ROLES:  # what its page loads
            console.shown |= {view["id"] for view in await service.queue(agent)}
        if agent.role is AgentRole.agent:  # the tickets page's queue: told when one leaves it
            rows = await asyncio.to_thread(console.cases.list, agent, limit=TICKETS_SHOWN)
            console.tickets |= {row["number"] for row in rows}
        await asyncio.to_thread(service.store.touch_agent, agent.id)
        while True:
            frame = await socket.receive()
            if frame["type"] == "websocket.disconnect":
                return
            if not await asyncio.to_thread(accounts.sessions.is_live, token):
                await socket.close(code=4401)  # signed out, disabled or expired meanwhile
                return
            message: Any = None
            with contextlib.suppress(ValueError, TypeError):  # binary frames, not JSON: ignored
                message = json.loads(frame.get("text") or "")
            if isinstance(message, dict) and message.get("type") == "ping":
                await asyncio.to_thread(service.store.touch_agent, agent.id)
                await socket.send_json({"type": "pong"})
    except (WebSocketDisconnect, RuntimeError):
        pass  # closed by the client, or by the session watcher meanwhile
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        service.hub.discard(cast(WebSocket, console))
