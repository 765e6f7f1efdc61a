"""Live ticket and alert updates for the desk: the database is the channel.

The scheduler runs in another process (it raises SLA alerts, changes tickets' SLA state,
marks notices undeliverable), and so may other web workers; so a watcher in each web process
polls the app database about once a second for new desk alerts (`id` above the last seen)
and changed tickets (`updated_at` since the last look, with a few seconds' overlap for
clocks and late commits) and broadcasts `{"type": "alert", "alert": ...}` and
`{"type": "ticket", "ticket": row}` on the desk's hub. Each console's socket forwards only
what its agent may see (`bot.web.routes.handoffs`). Changes made through this process's API
are broadcast at once too; a console may so hear of a change twice, which is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from bot.casework import CaseWork
from bot.casework.views import ticket_row
from bot.core.db import Agent, AgentRole, DeskAlert, Ticket
from bot.handoff.hub import DeskHub

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
LAG = timedelta(seconds=5)
"""How far back each look reaches again (other processes' clocks and late commits)."""
BATCH = 200


def watcher_viewer() -> Agent:
    """The watcher's own viewer: sees every ticket and alert, never stored."""
    return Agent(
        id=0,
        username="system:desk-live",
        display_name="desk live updates",
        role=AgentRole.admin,
        active=True,
    )


class TicketWatcher:
    """Polls the app database for new alerts and changed tickets and broadcasts them."""

    def __init__(
        self, engine: Engine, casework: CaseWork, hub: DeskHub, interval: float = POLL_SECONDS
    ) -> None:
        self.engine = engine
        self.casework = casework
        self.hub = hub
        self.interval = interval
        self.viewer = watcher_viewer()
        self._alert_id = 0
        self._mark: datetime | None = None
        self._seen: dict[str, datetime] = {}

    def start(self, now: datetime) -> None:
        """Starts from what exists now: only later alerts and changes are broadcast."""
        with Session(self.engine) as session:
            self._alert_id = session.scalar(select(func.max(DeskAlert.id))) or 0
        self._mark = now
        self._seen = {}
        self._changed(now)  # what changed just before: seen, not news

    def poll(self, now: datetime) -> list[dict[str, Any]]:
        """The broadcasts due since the last poll (blocking: run it in a thread)."""
        if self._mark is None:
            self.start(now)
        payloads = [{"type": "alert", "alert": alert} for alert in self._new_alerts()]
        changed = self._changed(now)
        payloads += [{"type": "ticket", "ticket": row} for row in self._rows(changed, now)]
        return payloads

    def _new_alerts(self) -> list[dict[str, Any]]:
        found = self.casework.alerts(
            self.viewer, after_id=self._alert_id, include_acknowledged=True, limit=BATCH
        )
        for alert in found:
            self._alert_id = max(self._alert_id, int(alert["id"]))
        return list(found)

    def _changed(self, now: datetime) -> list[str]:
        """Numbers of tickets changed since the last look (each change once).

        The mark never passes `now`: `kefu followups run --at <a later time>` writes
        `updated_at` values in the future, which must not hide the real changes after them.
        """
        assert self._mark is not None
        since = self._mark - LAG
        with Session(self.engine) as session:
            rows = session.execute(
                select(Ticket.number, Ticket.updated_at)
                .where(Ticket.updated_at >= since)
                .order_by(Ticket.updated_at, Ticket.id)
                .limit(BATCH * 5)
            ).all()
        changed = []
        for number, updated_at in rows:
            if self._seen.get(number) != updated_at:
                self._seen[number] = updated_at
                changed.append(number)
            self._mark = max(self._mark, min(updated_at, now))
        floor = self._mark - LAG
        self._seen = {n: at for n, at in self._seen.items() if at >= floor}
        return changed[:BATCH]

    def _rows(self, numbers: list[str], now: datetime) -> list[dict[str, Any]]:
        """The queue rows of these tickets (`bot.casework.views.ticket_row`), in this order."""
        if not numbers:
            return []
        with Session(self.engine) as session:
            found = session.scalars(select(Ticket).where(Ticket.number.in_(numbers)))
            tickets = {ticket.number: ticket for ticket in found}
            ids = {i for t in tickets.values() for i in (t.assignee_id, t.supervisor_id) if i}
            agents = (
                {a.id: a for a in session.scalars(select(Agent).where(Agent.id.in_(ids)))}
                if ids
                else {}
            )
            return [ticket_row(tickets[n], agents, now) for n in numbers if n in tickets]

    async def run(self, stop: asyncio.Event) -> None:
        """Polls every `interval` seconds until `stop` is set; errors are logged, not fatal."""
        while not stop.is_set():
            now = datetime.now(UTC)
            try:
                if self.hub.connections:
                    payloads = await asyncio.to_thread(self.poll, now)
                else:  # nobody listens: start afresh when somebody does
                    self._mark = None
                    payloads = []
                for payload in payloads:
                    await self.hub.broadcast(payload)
            except Exception:  # a database hiccup must not end live updates
                logger.warning("The desk's live watcher failed once; retrying.", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
