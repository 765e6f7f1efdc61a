"""The action server Kefu runs: rasa-sdk's app, a selective-domain executor, a warm KB.

Differences from `python -m rasa_sdk --actions actions`:
- the executor works with Rasa 3.6's selective domain (`enable_selective_domain` in
  endpoints.yml): Rasa 3.6 sends the domain only to actions that ask for it and never sends
  the domain digest rasa-sdk 3.21 expects, so rasa-sdk would refuse every other call (449);
- each worker makes the one engine on the app database every action uses
  (`actions.service_plan.app_engine`) as it starts;
- each worker loads the knowledge base (model and index, a few seconds) in a thread as it
  starts, so the first customer question is fast.
"""

from __future__ import annotations

import logging
import os
import threading
from functools import partial
from typing import Any

from rasa_sdk.endpoint import create_app_for_serve, create_argument_parser
from rasa_sdk.executor import ActionExecutor
from sanic import Sanic
from sanic.worker.loader import AppLoader

from kefu_shared.masking import install_log_masking

logger = logging.getLogger(__name__)


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


def warm_knowledge_base() -> None:
    """Loads the service plan files, the knowledge base and the message readers.

    Problems are logged instead of failing: the server keeps serving what it can.
    """
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


def create_app(executor: ActionExecutor, **options: Any) -> Sanic[Any, Any]:
    """rasa-sdk's app; the worker makes its database engine, then warms the knowledge base."""
    app: Sanic[Any, Any] = create_app_for_serve(executor, **options)

    async def open_app_database(*_: Any) -> None:
        from actions.service_plan import app_engine

        app_engine()  # the worker's one engine, made before any action can race to make it

    async def start_warm_up(*_: Any) -> None:
        threading.Thread(target=warm_knowledge_base, name="kb-warm-up", daemon=True).start()

    app.register_listener(open_app_database, "before_server_start")
    app.register_listener(start_warm_up, "after_server_start")
    return app


def main() -> None:
    """Parses rasa-sdk's options and serves the `actions` package (one worker)."""
    args = create_argument_parser().parse_args()
    logging.basicConfig(level=args.loglevel or logging.INFO)
    install_log_masking(("sanic.root", "sanic.error", "sanic.access", "rasa_sdk"))
    executor = SelectiveDomainExecutor()
    executor.register_package("actions")
    loader = AppLoader(
        factory=partial(
            create_app,
            executor,
            cors_origins=args.cors,
            auto_reload=False,
            endpoints=args.endpoints,
            keep_alive_timeout=120,
        )
    )
    app = loader.load()
    app.prepare(host=os.environ.get("SANIC_HOST", "127.0.0.1"), port=args.port, workers=1)
    Sanic.serve(primary=app, app_loader=loader)
