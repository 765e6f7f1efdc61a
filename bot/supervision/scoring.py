"""Scoring ended conversations: one QA score per subject, its findings, and red cards.

`Inspector.score_due` takes the ended, unscored conversations oldest first, claims each batch
by compare-and-set (`UPDATE conversations SET scored_at = now WHERE id IN (...) AND scored_at
IS NULL RETURNING id`: two workers never score one conversation twice), runs the rules
(`bot.supervision.checks`), and writes the `qa_scores`, `qa_findings` and the conversations'
`bot_score` / `agent_score` / `red_cards` in bulk, in the claim's transaction.

A red card (a red-card rule broken, or a score under the file's `red_card_below`) raises a
critical desk alert for the supervisor of the agent (the policy's `default_supervisor` when
the agent has none, and for the bot) and queues a staff notice the follow-up worker emails to
them, in the same transaction. Generated conversations (`source == "generated"`, the demo day
and the benchmark) are scored like live ones but raise no alert and email nobody.

`rescore` recomputes a conversation's scores from the findings that still count (after an
appeal was decided).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.orm import Session

from bot.core.db import (
    Agent,
    Conversation,
    DeskAlert,
    QaFinding,
    QaScore,
    session_factory,
)
from bot.service.outbox import STAFF, NewNotice, enqueue, raise_alert
from bot.service.policy import ServicePolicy
from bot.service.sla import next_open_moment
from bot.supervision.checks import Finding, run_checks
from bot.supervision.facts import ConversationFacts, load_facts
from bot.supervision.rules import (
    DEFAULT_RED_CARD_BELOW,
    SUBJECT_BOT,
    QaRules,
    subject_agent,
)

BATCH = 250
"""Conversations claimed and scored per transaction."""

FULL_SCORE = 100
RED_CARD_KIND = "qa_red_card"
GENERATED = "generated"


@dataclass(frozen=True)
class ScoreReport:
    """What one `score_due` call did."""

    scored: int = 0
    subjects: int = 0
    findings: int = 0
    red_cards: int = 0

    def __add__(self, other: ScoreReport) -> ScoreReport:
        return ScoreReport(
            self.scored + other.scored,
            self.subjects + other.subjects,
            self.findings + other.findings,
            self.red_cards + other.red_cards,
        )

    def as_dict(self) -> dict[str, int]:
        """JSON-able: scored, subjects, findings, red_cards."""
        return asdict(self)


@dataclass(frozen=True)
class _Subject:
    """One subject's verdict before it is stored."""

    key: str
    findings: tuple[Finding, ...]
    score: float
    points: int
    red_card: bool


def conversation_link(pk: int, desk_url: str = "") -> str:
    """The desk page of a conversation: `/desk/conversations/<pk>` (absolute with `desk_url`)."""
    return f"{desk_url.rstrip('/')}/desk/conversations/{pk}"


def judge(facts: ConversationFacts, rules: QaRules) -> list[_Subject]:
    """Every subject's findings, score and red card (bot first, then agents in order)."""
    findings = run_checks(rules.enabled, facts)
    keys = facts.subjects()
    keys += [f.subject_key for f in findings if f.subject_key not in keys]
    verdicts = []
    for key in dict.fromkeys(keys):
        mine = tuple(f for f in findings if f.subject_key == key)
        points = sum(f.rule.points for f in mine)
        score = float(max(0, FULL_SCORE - points))
        red = any(f.rule.red_card for f in mine) or score < rules.red_card_below
        verdicts.append(_Subject(key, mine, score, points, red))
    return verdicts


class Inspector:
    """Scores ended conversations (see the module docstring).

    `desk_url` makes the conversation links in alerts and emails absolute (the web desk's
    public address); without it they are desk paths.
    """

    def __init__(
        self,
        engine: Engine,
        rules: QaRules,
        policy: ServicePolicy,
        *,
        desk_url: str = "",
        batch_size: int = BATCH,
    ) -> None:
        self.rules = rules
        self.policy = policy
        self.desk_url = desk_url
        self.batch_size = max(1, batch_size)
        self._sessions = session_factory(engine)

    def score_due(self, now: datetime, limit: int = 500) -> ScoreReport:
        """Scores up to `limit` ended, unscored conversations, oldest end first."""
        report = ScoreReport()
        while report.scored < limit:
            size = min(self.batch_size, limit - report.scored)
            with self._sessions() as session:
                candidates = list(
                    session.scalars(
                        select(Conversation.id)
                        .where(Conversation.ended_at.is_not(None), Conversation.scored_at.is_(None))
                        .order_by(Conversation.ended_at, Conversation.id)
                        .limit(size)
                    )
                )
            if not candidates:
                break
            with self._sessions.begin() as session:
                claimed = list(
                    session.scalars(
                        update(Conversation)
                        .where(Conversation.id.in_(candidates), Conversation.scored_at.is_(None))
                        .values(scored_at=now)
                        .returning(Conversation.id)
                        .execution_options(synchronize_session=False)
                    )
                )
                if claimed:
                    report += self._score(session, sorted(claimed), now)
        return report

    # ------------------------------------------------------------------ one batch
    def _on_duty(self, facts: ConversationFacts) -> ConversationFacts:
        """`facts` with the moment agents were at work after the handoff (business hours)."""
        if facts.handoff_requested_at is None:
            return facts
        return replace(
            facts, agents_on_duty_at=next_open_moment(self.policy, facts.handoff_requested_at)
        )

    def _score(self, session: Session, pks: Sequence[int], now: datetime) -> ScoreReport:
        facts = [self._on_duty(f) for f in load_facts(session, pks, now)]
        verdicts = {f.pk: judge(f, self.rules) for f in facts}
        names = {
            name
            for found in verdicts.values()
            for verdict in found
            if (name := subject_agent(verdict.key))
        }
        agents = _agents(session, names)
        score_rows = [
            {
                "conversation_pk": pk,
                "subject_key": v.key,
                "agent_id": _agent_id(agents, v.key),
                "score": v.score,
                "points": v.points,
                "findings": len(v.findings),
                "red_card": v.red_card,
                "scored_at": now,
            }
            for pk, found in verdicts.items()
            for v in found
        ]
        score_ids: dict[tuple[int, str], int] = {}
        if score_rows:
            for row in session.execute(
                insert(QaScore).returning(
                    QaScore.id,
                    QaScore.conversation_pk,
                    QaScore.subject_key,
                    sort_by_parameter_order=True,
                ),
                score_rows,
            ):
                score_ids[(row.conversation_pk, row.subject_key)] = row.id
        finding_rows = [
            {
                "conversation_pk": pk,
                "score_id": score_ids[(pk, v.key)],
                "subject_key": v.key,
                "agent_id": _agent_id(agents, v.key),
                "rule_id": f.rule.id,
                "title": f.rule.title_text[:200],
                "points": f.rule.points,
                "severity": f.rule.severity,
                "red_card": f.rule.red_card,
                "message_id": f.message_id,
                "detail": f.detail,
                "created_at": now,
                "appeal_status": "none",
            }
            for pk, found in verdicts.items()
            for v in found
            for f in v.findings
        ]
        if finding_rows:
            session.execute(insert(QaFinding), finding_rows)
        if verdicts:
            session.execute(
                update(Conversation),
                [{"id": pk, **_conversation_scores(found)} for pk, found in verdicts.items()],
            )
        red_cards = 0
        for fact in facts:
            for verdict in verdicts[fact.pk]:
                if not verdict.red_card:
                    continue
                red_cards += 1
                if fact.source != GENERATED:
                    self._red_card(
                        session, fact, verdict, score_ids[(fact.pk, verdict.key)], agents, now
                    )
        return ScoreReport(len(facts), len(score_rows), len(finding_rows), red_cards)

    # ------------------------------------------------------------------ red cards
    def _red_card(
        self,
        session: Session,
        facts: ConversationFacts,
        verdict: _Subject,
        score_id: int,
        agents: dict[str, tuple[int, int | None]],
        now: datetime,
    ) -> None:
        """The supervisor's critical desk alert and email notice for one red card."""
        supervisor = self._supervisor_of(session, verdict.key, agents)
        text = red_card_text(facts, verdict, self.rules.red_card_below, self.desk_url)
        key = f"{RED_CARD_KIND}:{score_id}"
        raise_alert(
            session,
            key=key,
            kind=RED_CARD_KIND,
            severity="critical",
            text=text,
            now=now,
            ticket_id=facts.ticket_id,
            agent_id=supervisor,
        )
        if supervisor is not None:
            enqueue(
                session,
                NewNotice(
                    key=key,
                    kind=RED_CARD_KIND,
                    audience=STAFF,
                    text=text,
                    due_at=now,
                    ticket_id=facts.ticket_id,
                    recipient_agent_id=supervisor,
                    urgent=True,
                ),
                now,
            )

    def _supervisor_of(
        self, session: Session, subject_key: str, agents: dict[str, tuple[int, int | None]]
    ) -> int | None:
        """The agent's supervisor, else the policy's default supervisor (also for the bot)."""
        name = subject_agent(subject_key)
        if name is not None and name in agents and agents[name][1] is not None:
            return agents[name][1]
        default = self.policy.service_loop.default_supervisor
        if not default:
            return None
        return session.scalar(
            select(Agent.id).where(Agent.username == default, Agent.active.is_(True))
        )


def red_card_text(
    facts: ConversationFacts, verdict: _Subject, below: int, desk_url: str = ""
) -> str:
    """The alert and email text of a red card: Chinese line, English line, the link."""
    name = subject_agent(verdict.key)
    who_zh, who_en = (f"客服 {name}", f"agent {name}") if name else ("机器人", "the bot")
    fatal = [f for f in verdict.findings if f.rule.red_card]
    if fatal:
        reason_zh = "；".join(f"{f.rule.title.zh}（{f.detail}）" for f in fatal)
        reason_en = "; ".join(f.rule.title.en for f in fatal)
    else:
        reason_zh = f"得分低于 {below} 分"
        reason_en = f"score below {below}"
    link = conversation_link(facts.pk, desk_url)
    score = f"{verdict.score:g}"
    return (
        f"质检红牌：会话 #{facts.pk}（{who_zh}）得分 {score}：{reason_zh}\n"
        f"QA red card: conversation #{facts.pk} ({who_en}) scored {score}: {reason_en}\n"
        f"{link}"
    )


def _agents(session: Session, names: set[str]) -> dict[str, tuple[int, int | None]]:
    """Each of these agents' (id, supervisor id), by username."""
    if not names:
        return {}
    rows = session.execute(
        select(Agent.username, Agent.id, Agent.supervisor_id).where(Agent.username.in_(names))
    )
    return {username: (agent_id, boss) for username, agent_id, boss in rows}


def _agent_id(agents: dict[str, tuple[int, int | None]], subject_key: str) -> int | None:
    name = subject_agent(subject_key)
    return agents[name][0] if name is not None and name in agents else None


def _conversation_scores(verdicts: Sequence[Any]) -> dict[str, Any]:
    """`bot_score`, `agent_score` (the lowest agent's) and `red_cards` of a conversation.

    `verdicts` are `_Subject`s or `QaScore` rows (both have a subject key, score, red card).
    """
    bot = [v.score for v in verdicts if _key(v) == SUBJECT_BOT]
    agents = [v.score for v in verdicts if _key(v) != SUBJECT_BOT]
    return {
        "bot_score": bot[0] if bot else None,
        "agent_score": min(agents) if agents else None,
        "red_cards": sum(1 for v in verdicts if v.red_card),
    }


def _key(verdict: Any) -> str:
    return str(verdict.key if isinstance(verdict, _Subject) else verdict.subject_key)


def rescore(
    session: Session,
    conversation_pk: int,
    now: datetime,
    *,
    red_card_below: int = DEFAULT_RED_CARD_BELOW,
) -> dict[str, float]:
    """Recomputes a conversation's scores from its findings that still count (not overturned).

    A subject keeps its red card only if a counted red-card finding or its score says so; the
    red-card alert of a subject that lost it is acknowledged (`now`, by `qa-appeal`). Returns
    subject key -> new score. Runs in the caller's transaction.
    """
    scores = list(
        session.scalars(select(QaScore).where(QaScore.conversation_pk == conversation_pk))
    )
    findings = list(
        session.scalars(
            select(QaFinding).where(
                QaFinding.conversation_pk == conversation_pk,
                QaFinding.appeal_status != "overturned",
            )
        )
    )
    for score in scores:
        counted = [f for f in findings if f.score_id == score.id]
        had_red_card = score.red_card
        score.points = sum(f.points for f in counted)
        score.findings = len(counted)
        score.score = float(max(0, FULL_SCORE - score.points))
        score.red_card = any(f.red_card for f in counted) or score.score < red_card_below
        if had_red_card and not score.red_card:
            for alert in session.scalars(
                select(DeskAlert).where(
                    DeskAlert.key == f"{RED_CARD_KIND}:{score.id}",
                    DeskAlert.acknowledged_at.is_(None),
                )
            ):
                alert.acknowledged_at, alert.acknowledged_by = now, "qa-appeal"
    conversation = session.get(Conversation, conversation_pk)
    if conversation is not None and scores:
        for name, value in _conversation_scores(scores).items():
            setattr(conversation, name, value)
    session.flush()
    return {score.subject_key: score.score for score in scores}
