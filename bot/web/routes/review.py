"""The knowledge editors' review queue in the desk: `/desk/review` and `/desk/api/review/...`.

Editors and admins only (agents get 403). Changes need the session's CSRF token in
`X-CSRF-Token`. Decisions write the data files (`bot.editor.data_writer`); bad input is a 4xx
with a `detail` message: 404 unknown group or item, 409 already decided, 422 bad edits or a
file that would not load. Database, file and encoder work runs in threads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.requests import HTTPConnection

from bot.core.db import Agent, AgentRole, make_engine
from bot.core.settings import Settings
from bot.editor.data_writer import DataWriteError
from bot.editor.review import (
    NEXT_STEP_KB,
    NEXT_STEP_NLU,
    AlreadyDecided,
    ItemNotFound,
    ReviewError,
    ReviewQueue,
    default_encoder,
)
from bot.web.routes.desk import (
    DESK_CSP,
    OptionalSession,
    require_agent,
    require_csrf,
    templates,
)
from bot.web.routes.handoffs import limit_body
from knowledge_index import Encoder, KnowledgeIndexError

router = APIRouter(prefix="/desk", tags=["desk review"])
EDITOR_ROLES = (AgentRole.editor, AgentRole.admin)
T = TypeVar("T")

Editor = Annotated[Agent, Depends(require_agent(*EDITOR_ROLES))]
Csrf = Depends(require_csrf)
Limited = Depends(limit_body)
Line = Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)]
ItemIds = Annotated[list[int], Field(default_factory=list, max_length=500)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EntryBody(_Body):
    """A new knowledge entry, as the editor edited the group's proposal."""

    item_ids: ItemIds
    question: Line
    alt_questions: list[Line] = Field(default_factory=list, max_length=30)
    answer: str = Field(max_length=4000)
    topic: str = Field(max_length=64)
    language: str | None = Field(None, pattern="^(zh|en)$")


class MergeBody(_Body):
    """Merge the group's questions (or `questions`) into an existing entry."""

    item_ids: ItemIds
    entry_id: str = Field(min_length=1, max_length=120)
    questions: list[Line] | None = Field(None, max_length=30)


class ExamplesBody(_Body):
    """Add the group's questions (or `texts`) as NLU examples of an intent."""

    item_ids: ItemIds
    intent: str = Field(min_length=1, max_length=80)
    texts: list[Line] | None = Field(None, max_length=50)


class RejectBody(_Body):
    """Reject the group, optionally saying why."""

    item_ids: ItemIds
    reason: str = Field("", max_length=500)


def _page(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = DESK_CSP
    response.headers["Cache-Control"] = "no-store"
    return response


def _shared_encoder(app: Any) -> Encoder:
    """The encoder of the desk's knowledge base if it has one loaded, else our own."""
    service = getattr(app.state, "desk_service", None)
    if service is not None:
        try:
            encoder: Encoder = service.knowledge_base.index.encoder
            return encoder
        except (KnowledgeIndexError, AttributeError):
            pass
    return default_encoder()


def get_review(request: HTTPConnection) -> ReviewQueue:
    """The app's review queue (made on first use; `app.state.review_encoder` overrides)."""
    queue: ReviewQueue | None = getattr(request.app.state, "review_queue", None)
    if queue is None:
        settings: Settings = request.app.state.settings
        app = request.app
        encoder: Encoder | Callable[[], Encoder] = getattr(app.state, "review_encoder", None) or (
            lambda: _shared_encoder(app)
        )
        queue = ReviewQueue(make_engine(settings.database_url), settings, encoder)
        request.app.state.review_queue = queue
    return queue


Review = Annotated[ReviewQueue, Depends(get_review)]


async def _run(call: Callable[[], T]) -> T:
    """Runs a blocking review call in a thread, turning refusals into 4xx."""
    try:
        return await asyncio.to_thread(call)
    except ItemNotFound as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from error
    except AlreadyDecided as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    except (ReviewError, DataWriteError) as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from error


@router.get("/review", response_class=HTMLResponse, summary="The review queue page")
def review_page(request: Request, session: OptionalSession) -> Response:
    """The review queue for editors; 403 for agents, the login form without a session."""
    if session is None:
        return RedirectResponse("/desk/login", status.HTTP_303_SEE_OTHER)
    allowed = session.agent.role in EDITOR_ROLES
    return _page(
        templates.TemplateResponse(
            request,
            "desk_review.html",
            {"agent": session.agent, "csrf_token": session.csrf_token, "allowed": allowed},
            status_code=status.HTTP_200_OK if allowed else status.HTTP_403_FORBIDDEN,
        )
    )


@router.get("/api/review", summary="Pending review groups")
async def groups(review: Review, editor: Editor) -> dict[str, Any]:
    """Pending items grouped by similar questions (most frequent first), topics and intents."""

    def read() -> dict[str, Any]:
        found = review.groups()
        return {
            "groups": [group.as_dict() for group in found],
            "pending": sum(len(group.items) for group in found),
            "topics": review.topics(),
            "intents": review.intents(),
            "next_step": {"knowledge": NEXT_STEP_KB, "nlu": NEXT_STEP_NLU},
        }

    return await _run(read)


@router.post("/api/review/collect", summary="Collect new items", dependencies=[Csrf, Limited])
async def collect(review: Review, editor: Editor) -> dict[str, int]:
    """Copies new misses, "did not solve it" answers and agents' replies into the queue."""
    return {"collected": await _run(review.collect)}


@router.post(
    "/api/review/groups/{group_id}/approve",
    summary="Approve as a knowledge entry",
    dependencies=[Csrf, Limited],
)
async def approve(group_id: int, body: EntryBody, review: Review, editor: Editor) -> dict[str, Any]:
    """Appends a new entry to the topic file; the group's items become approved."""
    decision = await _run(
        lambda: review.approve_entry(
            group_id,
            by=editor.username,
            question=body.question,
            answer=body.answer,
            topic=body.topic,
            alt_questions=body.alt_questions,
            language=body.language,
            item_ids=body.item_ids,
        )
    )
    return decision.as_dict()


@router.post(
    "/api/review/groups/{group_id}/merge",
    summary="Merge into an existing entry",
    dependencies=[Csrf, Limited],
)
async def merge(group_id: int, body: MergeBody, review: Review, editor: Editor) -> dict[str, Any]:
    """Adds the group's questions as alternative questions of an existing entry."""
    decision = await _run(
        lambda: review.merge(
            group_id,
            by=editor.username,
            entry_id=body.entry_id.strip(),
            questions=body.questions,
            item_ids=body.item_ids,
        )
    )
    return decision.as_dict()


@router.post(
    "/api/review/groups/{group_id}/examples",
    summary="Approve as NLU examples",
    dependencies=[Csrf, Limited],
)
async def examples(
    group_id: int, body: ExamplesBody, review: Review, editor: Editor
) -> dict[str, Any]:
    """Adds the group's questions as training examples of an intent."""
    decision = await _run(
        lambda: review.approve_examples(
            group_id,
            by=editor.username,
            intent=body.intent.strip(),
            texts=body.texts,
            item_ids=body.item_ids,
        )
    )
    return decision.as_dict()


@router.post("/api/review/groups/{group_id}/reject", summary="Reject", dependencies=[Csrf, Limited])
async def reject(group_id: int, body: RejectBody, review: Review, editor: Editor) -> dict[str, Any]:
    """Marks the group's items rejected; nothing is written."""
    decision = await _run(
        lambda: review.reject(
            group_id, by=editor.username, reason=body.reason, item_ids=body.item_ids
        )
    )
    return decision.as_dict()
