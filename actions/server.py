"""The action server Kefu runs: rasa-sdk's app, a selective-domain executor, a warm KB.

Differences from `python -m rasa_sdk --actions actions`:
- the executor works with Rasa 3.6's selective domain (`enable_selective_domain` in
  endpoints.yml): Rasa 3.6 sends the domain only to actions that ask for it and never sends
  the domain digest rasa-sdk 3.21 expects, so rasa-sdk would refuse every other call (449);
- each worker makes the one engine on the app database every action uses
  (`actions.service_plan.app_engine`) as it starts;
- each worker loads the knowledge base (model and index, a few seconds) in a thread as it
  starts, so the first customer question is fast;
- only Rasa may call it: every route but `/health` needs `Authorization: Bearer
  <KEFU_ACTION_TOKEN>` (endpoints.yml sends it), bodies are plain JSON of at most 1 MB
  (`Content-Encoding` other than identity: 415, other content types: 415, larger: 413), all
  refused before the body is parsed; it binds to loopback unless SANIC_HOST says otherwise.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import threading
from functools import partial
from typing import Any

from rasa_sdk.endpoint import create_app_for_serve, create_argument_parser
from rasa_sdk.executor import ActionExecutor
from sanic import Request, Sanic
from sanic.response import HTTPResponse
from sanic.response import json as json_response
from sanic.worker.loader import AppLoader

from bot.core.settings import get_settings
from kefu_shared.masking import install_log_masking

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
"""Largest action call read (Rasa's calls carry one tracker: tens of KB)."""
OPEN_PATHS = frozenset({"/health"})
"""Routes served without the action token."""


class SelectiveDomainExecutor(ActionExecutor):
    """Keeps the last domain Rasa sent and uses it (or `{}`) when a call carries none.

    Only `validate_order_status_form` reads the domain (`send_domain: true` in domain.yml);
    the other actions ignore it, so saving the ~11 ms of domain serialisation per call is safe.
    """

    def update_and_return_domain(
        self, payload: dict[str, Any], action_name: str
    ) -> dict[str, Any] | None:
        """The payload's domain if any (remembered), else the last one seen, else `{}`."""
        if payload.get("domain"):
            self.domain = payload["domain"]
        return self.domain if self.domain is not None else {}


def warm_knowledge_base(warm: threading.Event | None = None) -> None:
    """Loads the service plan files, the knowledge base and the message readers.

    Problems are logged instead of failing: the server keeps serving what it can. Sets
    `warm` when done, whatever happened, so `/health` turns 200.
    """
    try:
        _warm_up()
    finally:
        if warm is not None:
            warm.set()


def _warm_up() -> None:
    from actions.knowledge import knowledge_base
    from actions.needs import message_reader
    from actions.service_plan import flow_book, service_policy
    from bot.flows.schema import FlowError
    from bot.service.policy import PolicyError
    from bot.understanding import UnderstandingError
    from knowledge_index import KnowledgeIndexError

    try:
        service_policy()
        flow_book()
    except (PolicyError, FlowError) as error:
        logger.error("Service plan files are invalid (run `kefu service check`): %s", error)

    try:
        version = knowledge_base().load()
        knowledge_base().search("warm up", 1)
        logger.info("Knowledge base %s loaded.", version)
    except KnowledgeIndexError as error:
        logger.warning("No knowledge base yet (%s); KB questions get no answer.", error)

    try:
        message_reader().read("warm up")
        logger.info("Message readers trained.")
    except UnderstandingError as error:
        logger.error("Reader examples are invalid (run `kefu service check`): %s", error)


def refusal(status: int, message: str, **headers: str) -> HTTPResponse:
    """A JSON error answer (rasa-sdk's shape: `{"error": ...}`)."""
    return json_response({"error": message}, status=status, headers=headers or None)


def request_guard(token: str) -> Any:
    """A request middleware: the action token, then plain bounded JSON, before any parsing.

    Sanic itself refuses bodies above `REQUEST_MAX_SIZE` (413) while reading them; this
    answers the rest from the headers, so no handler ever inflates or parses a refused body.
    """
    expected = f"Bearer {token}".encode()

    async def guard(request: Request) -> HTTPResponse | None:
        if request.path in OPEN_PATHS:
            return None
        sent = request.headers.get("authorization", "").encode()
        if not token or not hmac.compare_digest(sent, expected):
            return refusal(401, "Missing or wrong action token.", **{"WWW-Authenticate": "Bearer"})
        if request.method != "POST":
            return None
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            return refusal(415, f"Content-Encoding {encoding!r} is not accepted; send plain JSON.")
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            return refusal(415, "The body must be JSON (Content-Type: application/json).")
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
            return refusal(413, f"The body is larger than {MAX_BODY_BYTES} bytes.")
        if len(request.body) > MAX_BODY_BYTES:
            return refusal(413, f"The body is larger than {MAX_BODY_BYTES} bytes.")
        try:
            call = json.loads(request.body)
        except ValueError:  # also bad UTF-8
            return refusal(400, "The body is not valid JSON.")
        if not isinstance(call, dict):
            return refusal(400, "The body must be a JSON object (an action call).")
        # the handler reads it from here instead of parsing it again (Sanic types it None)
        request.parsed_json = call  # type: ignore[assignment]
        return None

    return guard


def health_guard(warm: threading.Event) -> Any:
    """A request middleware: `/health` answers 503 until the knowledge base is warm.

    A process manager or load balancer then sends no action call to a worker whose first
    knowledge-base answer would still take seconds.
    """

    async def guard(request: Request) -> HTTPResponse | None:
        if request.path == "/health" and not warm.is_set():
            return json_response({"status": "warming up"}, status=503)
        return None

    return guard


def protect(app: Sanic[Any, Any], token: str) -> None:
    """Puts `app` behind `request_guard(token)` and Sanic's own 1 MB body limit."""
    app.config.REQUEST_MAX_SIZE = MAX_BODY_BYTES
    app.register_middleware(request_guard(token), "request")


def create_app(executor: ActionExecutor, token: str, **options: Any) -> Sanic[Any, Any]:
    """rasa-sdk's app, protected (`protect`).

    Each worker makes its database engine, then warms the knowledge base.
    """
    app: Sanic[Any, Any] = create_app_for_serve(executor, **options)
    protect(app, token)
    warm = threading.Event()
    app.register_middleware(health_guard(warm), "request")

    async def open_app_database(*_: Any) -> None:
        from actions.service_plan import app_engine

        app_engine()  # the worker's one engine, made before any action can race to make it

    async def start_warm_up(*_: Any) -> None:
        threading.Thread(
            target=warm_knowledge_base, args=(warm,), name="kb-warm-up", daemon=True
        ).start()

    app.register_listener(open_app_database, "before_server_start")
    app.register_listener(start_warm_up, "after_server_start")
    return app


def main() -> None:
    """Parses rasa-sdk's options and serves the `actions` package (one worker)."""
    args = create_argument_parser().parse_args()
    logging.basicConfig(level=args.loglevel or logging.INFO)
    install_log_masking(("sanic.root", "sanic.error", "sanic.access", "rasa_sdk"))
    for noisy in ("httpx", "httpcore"):  # they log every URL they call at INFO
        logging.getLogger(noisy).setLevel(logging.WARNING)
    token = get_settings().action_token
    executor = SelectiveDomainExecutor()
    executor.register_package("actions")
    loader = AppLoader(
        factory=partial(
            create_app,
            executor,
            token,
            cors_origins=args.cors,
            auto_reload=False,
            endpoints=args.endpoints,
            keep_alive_timeout=120,
        )
    )
    app = loader.load()
    app.prepare(host=os.environ.get("SANIC_HOST", "127.0.0.1"), port=args.port, workers=1)
    Sanic.serve(primary=app, app_loader=loader)
