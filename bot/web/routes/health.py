"""Liveness of the web service."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Always `{"status": "ok"}` while the service runs."""
    return {"status": "ok"}
