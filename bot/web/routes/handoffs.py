"""The agent console's API (`/desk/api/...`) and live updates (`/desk/ws`).

Every route needs a desk session (401 without one); changes also need the session's CSRF
token in `X-CSRF-Token` (403 without it). The WebSocket checks the session cookie and the
page's origin before it accepts. Bad input is a 4xx with a `detail` message.
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

from bot.core.db import Agent
from bot.handoff.canned import as_api, load_canned_replies
from bot.handoff.rasa_api import RasaApiError
from bot.handoff.store import MAX_TEXT, HandoffError, HandoffNotFound
from bot.web.deps import (
    SESSION_COOKIE,
    Csrf,
    CurrentAgent,
    Limited,
    Service,
    get_accounts,
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
async def agents(service: Service, agent: CurrentAgent) -> list[dict[str, Any]]:
    """Every active agent (for assign and transfer)."""
    return await service.agents()


@router.get("/api/handoffs", summary="The queue of open handoffs")
async def queue(service: Service, agent: CurrentAgent) -> list[dict[str, Any]]:
    """Queued and active handoffs, the earliest SLA due time first."""
    return await service.queue()


@router.get("/api/handoffs/{handoff_id}", summary="A handoff with its packet and messages")
async def detail(handoff_id: int, service: Service, agent: CurrentAgent) -> dict[str, Any]:
    """The handoff, the packet the bot gathered, and the conversation since the handoff."""
    return await _do(service.detail(handoff_id))


@router.post(
    "/api/handoffs/{handoff_id}/claim", summary="Claim a handoff", dependencies=[Csrf, Limited]
)
async def claim(
    handoff_id: int, service: Service, agent: CurrentAgent, body: EmptyBody | None = None
) -> dict[str, Any]:
    """Takes the conversation (409 if another agent has it); the customer hears who joined."""
    return await _do(service.claim(handoff_id, agent))


@router.post(
    "/api/handoffs/{handoff_id}/assign", summary="Assign a handoff", dependencies=[Csrf, Limited]
)
async def assign(
    handoff_id: int, body: AssignBody, service: Service, agent: CurrentAgent
) -> dict[str, Any]:
    """Gives the conversation to an agent (queued: anyone; active: its agent or an admin)."""
    return await _do(service.assign(handoff_id, body.agent, agent, body.note))


@router.post(
    "/api/handoffs/{handoff_id}/transfer",
    summary="Transfer a handoff",
    dependencies=[Csrf, Limited],
)
async def transfer(
    handoff_id: int, body: AssignBody, service: Service, agent: CurrentAgent
) -> dict[str, Any]:
    """Passes an active conversation to another agent, with an optional note."""
    return await _do(service.assign(handoff_id, body.agent, agent, body.note))


@router.post(
    "/api/handoffs/{handoff_id}/messages",
    summary="Reply to the customer",
    dependencies=[Csrf, Limited],
)
async def reply(
    handoff_id: int, body: MessageBody, service: Service, agent: CurrentAgent
) -> dict[str, Any]:
    """Sends the reply on the customer's own channel (only the conversation's agent)."""
    return await _do(service.reply(handoff_id, agent, body.text))


@router.post(
    "/api/handoffs/{handoff_id}/notes", summary="Add an internal note", dependencies=[Csrf, Limited]
)
async def note(
    handoff_id: int, body: MessageBody, service: Service, agent: CurrentAgent
) -> dict[str, Any]:
    """A note for agents; the customer never sees it."""
    return await _do(service.note(handoff_id, agent, body.text))


@router.post("/api/handoffs/{handoff_id}/resolve", summary="Resolve", dependencies=[Csrf, Limited])
async def resolve(
    handoff_id: int, service: Service, agent: CurrentAgent, body: EmptyBody | None = None
) -> dict[str, Any]:
    """Resolves the ticket; the bot resumes and asks the customer for a 1-5 score."""
    return await _do(service.resolve(handoff_id, agent))


@router.post(
    "/api/handoffs/{handoff_id}/hand-back", summary="Hand back", dependencies=[Csrf, Limited]
)
async def hand_back(
    handoff_id: int, service: Service, agent: CurrentAgent, body: EmptyBody | None = None
) -> dict[str, Any]:
    """Returns the conversation to the bot without resolving the ticket."""
    return await _do(service.hand_back(handoff_id, agent))


@router.get("/api/handoffs/{handoff_id}/assist", summary="Knowledge-base suggestions")
async def assist(handoff_id: int, service: Service, agent: CurrentAgent) -> dict[str, Any]:
    """Knowledge-base answers for the customer's latest message, with their source."""
    return await _do(service.assist(handoff_id))


@router.get("/api/canned-replies", summary="The canned-reply library")
async def canned_replies(agent: CurrentAgent) -> dict[str, Any]:
    """Basic, advanced and special-scenario phrases (data/service/canned_replies.yml)."""
    return cast(dict[str, Any], as_api(await asyncio.to_thread(load_canned_replies)))


def _same_origin(socket: WebSocket) -> bool:
    origin = socket.headers.get("origin")
    host = socket.headers.get("host")
    return origin is None or origin in (f"http://{host}", f"https://{host}")


@router.websocket("/ws")
async def live(socket: WebSocket) -> None:
    """Live queue and message updates for a signed-in console (same origin only)."""
    accounts = get_accounts(socket)
    token = socket.cookies.get(SESSION_COOKIE, "")
    session = await asyncio.to_thread(accounts.sessions.get, token) if token else None
    if session is None or not _same_origin(socket):
        await socket.close(code=4401 if session is None else 4403)
        return
    service = get_service(socket)
    await socket.accept()
    service.hub.add(socket)
    agent: Agent = session.agent
    await asyncio.to_thread(service.store.touch_agent, agent.id)
    try:
        while True:
            frame = await socket.receive()
            if frame["type"] == "websocket.disconnect":
                return
            message: Any = None
            with contextlib.suppress(ValueError, TypeError):  # binary frames, not JSON: ignored
                message = json.loads(frame.get("text") or "")
            if isinstance(message, dict) and message.get("type") == "ping":
                if await asyncio.to_thread(accounts.sessions.get, token) is None:
                    await socket.close(code=4401)  # signed out or expired meanwhile
                    return
                await asyncio.to_thread(service.store.touch_agent, agent.id)
                await socket.send_json({"type": "pong"})
    except WebSocketDisconnect:
        pass
    finally:
        service.hub.discard(socket)
