"""Builds the FastAPI application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.base import RequestResponseEndpoint

from bot.core.db import make_engine
from bot.core.settings import Settings, get_settings
from bot.followups.delivery import Deliverer
from bot.handoff.broker import event_source
from bot.handoff.service import DeskService
from bot.web.deps import casework_of
from bot.web.limits import BodyLimitMiddleware
from bot.web.live import TicketWatcher
from bot.web.routes import (
    chat,
    console,
    conversations,
    dashboard,
    handoffs,
    health,
    quality,
    reports,
    review,
    sessions,
    tickets,
)
from kefu_shared.masking import install_log_masking

STATIC_DIR = Path(__file__).resolve().parent / "static"
logger = logging.getLogger(__name__)


def _make_deliverer(settings: Settings, app: FastAPI) -> Deliverer | None:
    """The notice deliverer of this process (`app.state.deliverer`), or None.

    Tests may set `app.state.deliverer` beforehand. If it cannot be built (a bad SMTP
    setting...), the desk still starts: the scheduler delivers what the desk owes.
    """
    existing: Deliverer | None = getattr(app.state, "deliverer", None)
    if existing is not None:
        return existing
    try:
        return Deliverer.from_settings(settings, app.state.engine, casework_of(app).policy)
    except Exception:
        logger.warning("No immediate notice delivery: the scheduler will send.", exc_info=True)
        return None


def _deliver_with(deliverer: Deliverer) -> Callable[[list[int]], Awaitable[None]]:
    """The desk service's hook: deliver these notices now (failures left to the scheduler)."""

    async def deliver(notice_ids: list[int]) -> None:
        try:
            await deliverer.deliver_ids(list(notice_ids), datetime.now(UTC))
        except Exception:
            logger.warning("Could not deliver notices %s now.", notice_ids, exc_info=True)

    return deliver


def create_app(settings: Settings | None = None) -> FastAPI:
    """The web service for `settings` (the environment's by default).

    The app's one engine on the app database is made here (`app.state.engine`); every store
    and service of the app uses it (`bot.web.deps`).
    """
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Starts the broker consumer, the notice deliverer and the live watcher; stops them."""
        install_log_masking()
        for noisy in ("httpx", "httpcore"):  # their INFO lines carry URLs with Rasa's ?token=
            logging.getLogger(noisy).setLevel(logging.WARNING)
        service = getattr(app.state, "desk_service", None) or DeskService.from_settings(
            settings, app.state.engine
        )
        app.state.desk_service = service
        deliverer = _make_deliverer(settings, app)
        app.state.deliverer = deliverer
        if deliverer is not None and service.deliver is None:
            service.deliver = _deliver_with(deliverer)
        source = event_source(settings)
        stop = asyncio.Event()
        consumer = asyncio.create_task(service.run_consumer(source, stop))
        watcher = TicketWatcher(app.state.engine, casework_of(app), service.hub)
        watching = asyncio.create_task(watcher.run(stop))
        try:
            yield
        finally:
            stop.set()
            await consumer
            await watching
            await service.rasa.close()
            if deliverer is not None:
                with contextlib.suppress(Exception):
                    await deliverer.close()
            await asyncio.to_thread(source.close)

    app = FastAPI(title="Kefu", version="0.1.0", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = make_engine(settings.database_url)
    app.include_router(health.router)
    app.include_router(chat.router)
    app.include_router(sessions.router)
    app.include_router(console.router)
    app.include_router(handoffs.router)
    app.include_router(review.router)
    app.include_router(tickets.router)
    app.include_router(dashboard.router)
    app.include_router(conversations.router)
    app.include_router(quality.router)
    app.include_router(reports.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount(
        "/vendor/webchat",
        StaticFiles(directory=settings.webchat_dir, check_dir=False),
        name="webchat",
    )

    @app.middleware("http")
    async def security_headers(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        return response

    # added last, so it runs first: bodies are bounded before routing, auth and parsing
    app.add_middleware(
        BodyLimitMiddleware,
        max_json_bytes=settings.max_json_bytes,
        max_form_bytes=settings.max_form_bytes,
    )
    return app
