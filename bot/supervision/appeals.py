"""QA at the desk: findings lists, appeals and decisions, a conversation's drill-down page.

Who sees what: agents see their own findings, and the conversations they wrote in (with the
bot's and their own scores and findings only); supervisors and admins see everything and
decide appeals; editors see nothing (`QaForbidden`). A finding or conversation the viewer
may not see is `QaNotFound` (a 404 that gives nothing away).

An agent appeals each of their findings once (`none` -> `pending`); a supervisor or admin
upholds or overturns it (`pending` -> `upheld` / `overturned`). An overturned finding no
longer counts: the conversation is rescored (`bot.supervision.scoring.rescore`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bot.casework.access import OVERSEERS
from bot.core.db import (
    Agent,
    AgentRole,
    Conversation,
    ConversationMessage,
    QaFinding,
    session_factory,
)
from bot.supervision.errors import QaConflict, QaError, QaForbidden, QaNotFound
from bot.supervision.rules import QaRules, agent_subject
from bot.supervision.scoring import rescore
from bot.supervision.views import conversation_page, finding_view

APPEAL_STATUSES = ("none", "pending", "upheld", "overturned")
DECISIONS = ("upheld", "overturned")
MAX_TEXT = 1000
"""Longest appeal text or decision note, in characters."""
MAX_LIMIT = 1000


def _now() -> datetime:
    return datetime.now(UTC)


def is_overseer(agent: Agent) -> bool:
    """Supervisors and admins (active): they see every finding and decide appeals."""
    return bool(agent.active) and agent.role in OVERSEERS


def _require_viewer(viewer: Agent) -> None:
    """Agents and overseers only (active accounts)."""
    if not viewer.active or viewer.role not in (OVERSEERS | {AgentRole.agent}):
        raise QaForbidden("Quality findings are for agents, supervisors and admins.")


def _text(value: str | None, what: str, *, required: bool) -> str | None:
    text = (value or "").strip()
    if not text:
        if required:
            raise QaError(f"The {what} must not be empty.")
        return None
    if len(text) > MAX_TEXT:
        raise QaError(f"The {what} is too long ({len(text)} characters, at most {MAX_TEXT}).")
    return text


class QualityDesk:
    """The desk's QA operations; `clock` is injectable for tests."""

    def __init__(
        self,
        engine: Engine,
        rules: QaRules,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.rules = rules
        self._sessions = session_factory(engine)
        self._clock = clock

    # ------------------------------------------------------------------ lists
    def findings(
        self,
        viewer: Agent,
        *,
        status: str | None = None,
        agent: str | None = None,
        since: datetime | None = None,
        rule: str | None = None,
        conversation_pk: int | None = None,
        limit: int = 200,
    ) -> list[dict[str, Any]]:
        """Findings the viewer may see, newest first.

        Filters: appeal `status` (none, pending, upheld, overturned), `agent` (username; an
        agent sees only their own whatever this says), `since` (created at or after),
        `rule` (rule id), `conversation_pk`. At most `limit` (1-1000).

        Raises:
            QaForbidden: The viewer is an editor or disabled.
            QaError: An unknown status or a naive `since`.
        """
        _require_viewer(viewer)
        if status is not None and status not in APPEAL_STATUSES:
            raise QaError(
                f"Unknown appeal status {status!r}: use one of {', '.join(APPEAL_STATUSES)}."
            )
        if since is not None and since.tzinfo is None:
            raise QaError("since must carry a time zone (e.g. 2026-12-01T00:00:00+08:00).")
        query = select(QaFinding, ConversationMessage.text).outerjoin(
            ConversationMessage, ConversationMessage.id == QaFinding.message_id
        )
        if not is_overseer(viewer):
            if agent is not None and agent != viewer.username:
                return []
            query = query.where(QaFinding.subject_key == agent_subject(viewer.username))
        elif agent is not None:
            query = query.where(QaFinding.subject_key == agent_subject(agent))
        if status is not None:
            query = query.where(QaFinding.appeal_status == status)
        if since is not None:
            query = query.where(QaFinding.created_at >= since)
        if rule is not None:
            query = query.where(QaFinding.rule_id == rule)
        if conversation_pk is not None:
            query = query.where(QaFinding.conversation_pk == conversation_pk)
        size = min(max(int(limit), 1), MAX_LIMIT)
        with self._sessions() as session:
            rows = session.execute(
                query.order_by(QaFinding.created_at.desc(), QaFinding.id.desc()).limit(size)
            ).all()
            return [finding_view(finding, text) for finding, text in rows]

    # ------------------------------------------------------------------ appeals
    def appeal(self, viewer: Agent, finding_id: int, text: str) -> dict[str, Any]:
        """The agent a finding is about contests it (once): `none` -> `pending`.

        Raises:
            QaNotFound: No such finding, or the viewer may not see it.
            QaForbidden: The finding is not about the viewer (the bot's, a colleague's).
            QaError: An empty or too long text.
            QaConflict: It was already appealed.
        """
        _require_viewer(viewer)
        reason = _text(text, "appeal text", required=True)
        now = self._clock()
        with self._sessions.begin() as session:
            finding = self._visible(session, viewer, finding_id)
            if finding.subject_key != agent_subject(viewer.username):
                raise QaForbidden("Only the agent a finding is about may appeal it.")
            if finding.appeal_status != "none":
                raise QaConflict(
                    f"Finding {finding_id} was already appealed ({finding.appeal_status})."
                )
            finding.appeal_status = "pending"
            finding.appeal_text = reason
            finding.appealed_by = viewer.username
            finding.appealed_at = now
            session.flush()
            return self._view(session, finding)

    def decide(
        self, viewer: Agent, finding_id: int, decision: str, note: str | None = None
    ) -> dict[str, Any]:
        """A supervisor or admin decides a pending appeal; `overturned` rescores the conversation.

        Raises:
            QaNotFound: No such finding, or the viewer may not see it.
            QaForbidden: The viewer is not a supervisor or admin, or decides their own appeal.
            QaError: An unknown decision or a too long note.
            QaConflict: The finding has no pending appeal.
        """
        _require_viewer(viewer)
        if decision not in DECISIONS:
            raise QaError(f"Unknown decision {decision!r}: use upheld or overturned.")
        remark = _text(note, "decision note", required=False)
        now = self._clock()
        with self._sessions.begin() as session:
            finding = self._visible(session, viewer, finding_id)
            if not is_overseer(viewer):
                raise QaForbidden("Only supervisors and admins decide appeals.")
            if finding.subject_key == agent_subject(viewer.username):
                raise QaForbidden("Nobody decides their own appeal: ask another supervisor.")
            if finding.appeal_status != "pending":
                raise QaConflict(
                    f"Finding {finding_id} has no pending appeal ({finding.appeal_status})."
                )
            finding.appeal_status = decision
            finding.decided_by = viewer.username
            finding.decided_at = now
            finding.decision_note = remark
            session.flush()
            if decision == "overturned":
                rescore(
                    session,
                    finding.conversation_pk,
                    now,
                    red_card_below=self.rules.red_card_below,
                )
            return self._view(session, finding)

    # ------------------------------------------------------------------ drill-down
    def conversation(self, viewer: Agent, pk: int) -> dict[str, Any]:
        """A conversation's page: fields, transcript, scores, findings, ticket, handoff.

        Agents see the conversations they wrote in, with the bot's and their own scores and
        findings; overseers see all.

        Raises:
            QaForbidden: The viewer is an editor or disabled.
            QaNotFound: No such conversation, or the viewer may not see it.
        """
        _require_viewer(viewer)
        with self._sessions() as session:
            conversation = session.get(Conversation, pk)
            if conversation is None:
                raise QaNotFound(f"No conversation {pk}.")
            subjects: set[str] | None = None
            if not is_overseer(viewer):
                if viewer.username not in (conversation.agents or []):
                    raise QaNotFound(f"No conversation {pk}.")
                subjects = {"bot", agent_subject(viewer.username)}
            return conversation_page(session, conversation, subjects)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _visible(session: Session, viewer: Agent, finding_id: int) -> QaFinding:
        finding = session.get(QaFinding, finding_id)
        if finding is None or (
            not is_overseer(viewer) and finding.subject_key != agent_subject(viewer.username)
        ):
            raise QaNotFound(f"No finding {finding_id}.")
        return finding

    @staticmethod
    def _view(session: Session, finding: QaFinding) -> dict[str, Any]:
        text = (
            session.scalar(
                select(ConversationMessage.text).where(ConversationMessage.id == finding.message_id)
            )
            if finding.message_id is not None
            else None
        )
        return finding_view(finding, text)
