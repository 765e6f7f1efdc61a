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

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from bot.editor.data_writer import DataWriteError
from bot.editor.review import (
    NEXT_STEP_KB,
    NEXT_STEP_NLU,
    AlreadyDecided,
    ItemNotFound,
    ReviewError,
)
from bot.web.deps import EDITOR_ROLES, Csrf, Editor, Limited, OptionalSession, Review
from bot.web.pages import desk_page, templates

router = APIRouter(prefix="/desk", tags=["desk review"])
T = TypeVar("T")

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
    return desk_page(
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
