"""Rasa's HTTP API only for allowed client addresses in production; secrets kept out of logs.

`rasa run --enable-api` serves the whole API (conversations, trackers, model, ...) on the
port the channels' webhooks use; the token is the only lock. In production this adds a
second one: a request whose path is not public (the channels' `/webhooks/...`, the web chat's
`/socket.io/...` and the health check `/`) is refused with 403 unless its client address is in
`allowed` (KEFU_RASA_API_ALLOWED, loopback by default). Local runs are not restricted.

Rasa has no setting for app-wide middleware, so this is a pseudo input channel: listed in
credentials.yml, its blueprint's `before_server_start` listener adds the middleware to the
whole app. The same listener masks secrets and personal data in every log handler Rasa and
Sanic have set up by then and keeps HTTP client libraries from logging the URLs they call
(Telegram API URLs carry the bot token).

    rasa_addons.api_guard.ApiGuardInput:
      allowed: ${KEFU_RASA_API_ALLOWED}
      env: ${KEFU_ENV}

Behind a reverse proxy the peer is the proxy: the client address is then taken from
X-Forwarded-For, but only when the peer is one of KEFU_TRUSTED_PROXIES (read from the
environment).
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, Request, Sanic
from sanic.response import HTTPResponse, json

from kefu_shared.masking import install_log_masking

__all__ = ["PUBLIC_PREFIXES", "ApiGuardInput", "client_address", "is_public"]

logger = logging.getLogger(__name__)

PUBLIC_PREFIXES = ("/webhooks/", "/socket.io/")
"""Paths anyone may reach: the channels' webhooks and the web chat's socket.io."""
PUBLIC_PATHS = frozenset({"/", "/socket.io"})
"""Exact public paths: Rasa's health check (`/`, "Hello from Rasa") and socket.io's root."""
MASKED_LOGGERS = ("sanic.root", "sanic.error", "sanic.access", "rasa", "connectors")
QUIET_LOGGERS = ("httpx", "httpcore", "telegram.request", "urllib3")


def is_public(path: str) -> bool:
    """True for the paths every client may reach."""
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def _addresses(text: str | Iterable[str]) -> frozenset[str]:
    parts = text.split(",") if isinstance(text, str) else text
    return frozenset(_normalised(part) for part in parts if part.strip())


def _normalised(address: str) -> str:
    """`address` in one canonical form (`::ffff:127.0.0.1` -> `127.0.0.1`), else stripped."""
    text = address.strip().strip("[]")
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        return text
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(parsed)


def client_address(request: Request, trusted_proxies: frozenset[str]) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy.

    Behind trusted proxies it is the right-most address of X-Forwarded-For that is not a
    trusted proxy (the one a trusted proxy saw; addresses left of it are the client's word).
    """
    peer = _normalised(request.ip or "")
    if peer not in trusted_proxies:
        return peer
    forwarded = [
        _normalised(part) for part in request.headers.get("x-forwarded-for", "").split(",")
    ]
    for address in reversed([part for part in forwarded if part]):
        if address not in trusted_proxies:
            return address
    return peer


Middleware = Callable[[Request], Awaitable[HTTPResponse | None]]


def api_guard(allowed: frozenset[str], trusted_proxies: frozenset[str]) -> Middleware:
    """A request middleware: 403 for a non-public path from a client not in `allowed`."""

    async def guard(request: Request) -> HTTPResponse | None:
        if is_public(request.path):
            return None
        if client_address(request, trusted_proxies) in allowed:
            return None
        logger.warning("rasa_api_refused path=%s", request.path.split("/")[1][:40])
        return json(
            {
                "status": "failure",
                "reason": "NotAllowed",
                "message": "Rasa's HTTP API does not answer this address.",
                "code": 403,
            },
            status=403,
        )

    return guard


def protect_logs() -> None:
    """Masks secrets and personal data in the handlers set up by now; quiets HTTP clients."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    install_log_masking(MASKED_LOGGERS)


class ApiGuardInput(InputChannel):
    """The pseudo channel that installs the API guard (see the module's docstring)."""

    @classmethod
    def name(cls) -> str:
        """The channel's name (its blueprint is under /webhooks/api_guard/)."""
        return "api_guard"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> ApiGuardInput:
        """From credentials.yml: `allowed` (comma-separated addresses) and `env`."""
        credentials = credentials or {}
        return cls(
            allowed=str(credentials.get("allowed") or "127.0.0.1,::1"),
            env=str(credentials.get("env") or "local"),
            trusted_proxies=os.environ.get("KEFU_TRUSTED_PROXIES", ""),
        )

    def __init__(
        self, allowed: str = "127.0.0.1,::1", env: str = "local", trusted_proxies: str = ""
    ) -> None:
        self.allowed = _addresses(allowed)
        self.env = env.strip().lower()
        self.trusted_proxies = _addresses(trusted_proxies)

    @property
    def enforced(self) -> bool:
        """True in production: only then are API clients checked."""
        return self.env == "production"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """A blueprint with a health route whose listener guards the whole app."""
        blueprint = Blueprint("api_guard_webhook", __name__)

        async def health(_: Request) -> HTTPResponse:
            return json({"status": "ok", "enforced": self.enforced})

        async def install(app: Sanic, _: Any) -> None:
            protect_logs()
            if self.enforced:
                guard: Any = api_guard(self.allowed, self.trusted_proxies)
                app.register_middleware(guard, "request")
                logger.info("rasa_api_guard allowed=%d", len(self.allowed))

        blueprint.add_route(health, "/", methods=["GET"])
        blueprint.listener(install, "before_server_start")
        return blueprint
