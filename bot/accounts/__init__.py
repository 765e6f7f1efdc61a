"""The agent desk's groundwork: accounts (argon2), login sessions and the login lockout."""

from bot.accounts.agents import (
    DEMO_AGENT_USERNAME,
    DEMO_EDITOR_USERNAME,
    DEMO_SUPERVISOR_USERNAME,
    AccountError,
    AgentStore,
    LoginOutcome,
    seed_demo_agent,
    seed_demo_editor,
    seed_demo_supervisor,
    validate_email,
    validate_password,
    validate_username,
)
from bot.accounts.sessions import SessionStore, hash_token

__all__ = [
    "DEMO_AGENT_USERNAME",
    "DEMO_EDITOR_USERNAME",
    "DEMO_SUPERVISOR_USERNAME",
    "AccountError",
    "AgentStore",
    "LoginOutcome",
    "SessionStore",
    "hash_token",
    "seed_demo_agent",
    "seed_demo_editor",
    "seed_demo_supervisor",
    "validate_email",
    "validate_password",
    "validate_username",
]
