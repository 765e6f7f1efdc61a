"""Builds the FastAPI application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.base import RequestResponseEndpoint

from bot.core.db import make_engine
from bot.core.settings import Settings, get_settings
from bot.handoff.broker import SqlEventSource
from bot.handoff.service import DeskService
from bot.web.limits import BodyLimitMiddleware
from bot.web.routes import chat, console, handoffs, health, review, sessions
from kefu_shared.masking import install_log_masking

STATIC_DIR = Path(__file__).resolve().parent / "static"


def create_app(settings: Settings | None = None) -> FastAPI:
    """The web service for `settings` (the environment's by default).

    The app's one engine on the app database is made here (`app.state.engine`); every store
    and service of the app uses it (`bot.web.deps`).
    """
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Starts the desk's event-broker consumer; stops it and closes Rasa's client."""
        install_log_masking()
        for noisy in ("httpx", "httpcore"):  # their INFO lines carry URLs with Rasa's ?token=
            logging.getLogger(noisy).setLevel(logging.WARNING)
        service = DeskService.from_settings(settings, app.state.engine)
        app.state.desk_service = service
        broker = make_engine(settings.event_broker_url)
        stop = asyncio.Event()
        consumer = asyncio.create_task(service.run_consumer(SqlEventSource(broker), stop))
        try:
            yield
        finally:
            stop.set()
            await consumer
            await service.rasa.close()
            broker.dispose()

    app = FastAPI(title="Kefu", version="0.1.0", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = make_engine(settings.database_url)
    app.include_router(health.router)
    app.include_router(chat.router)
    app.include_router(sessions.router)
    app.include_router(console.router)
    app.include_router(handoffs.router)
    app.include_router(review.router)
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
