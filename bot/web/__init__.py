"""Kefu's web service (FastAPI): the customer chat page, health and the agent desk."""

from bot.web.app import create_app

__all__ = ["create_app"]
