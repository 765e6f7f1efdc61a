"""Who may see and work which ticket: the desk's rules, in one place.

Admins and supervisors see and work every ticket; agents see and work the unassigned ones
and those assigned to them (acting on an unassigned ticket does not assign it: `assign` to
oneself is how an agent takes it); editors see none. A ticket the caller may not see is
reported as not found (`CaseNotFound`), so ticket numbers, which are sequential, reveal
nothing.
"""

from __future__ import annotations

from bot.core.db import Agent, AgentRole, Ticket

OVERSEERS = frozenset({AgentRole.admin, AgentRole.supervisor})
"""Roles that see every ticket, the alerts and the follow-up tasks."""

ASSIGNABLE_ROLES = frozenset({AgentRole.agent, AgentRole.supervisor, AgentRole.admin})
"""Roles a ticket may be assigned to."""


def may_see(ticket: Ticket, agent: Agent) -> bool:
    """Whether `agent` may read `ticket`: overseers all, agents unassigned and own, editors none."""
    if not agent.active:
        return False
    if agent.role in OVERSEERS:
        return True
    if agent.role is AgentRole.agent:
        return ticket.assignee_id is None or ticket.assignee_id == agent.id
    return False


def may_act(ticket: Ticket, agent: Agent) -> bool:
    """Whether `agent` may change `ticket`: overseers any, agents their own or unassigned ones."""
    return may_see(ticket, agent)
