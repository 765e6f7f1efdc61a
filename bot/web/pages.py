"""The web service's HTML pages: the templates and the headers every desk page carries."""

from __future__ import annotations

from pathlib import Path

from fastapi import Response
from fastapi.templating import Jinja2Templates

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
templates = Jinja2Templates(directory=TEMPLATES_DIR)

DESK_CSP = (
    "default-src 'self'; script-src 'self'; connect-src 'self'; style-src 'self'; "
    "img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
"""The desk pages' Content-Security-Policy: same-origin scripts and styles only."""


def desk_page(response: Response) -> Response:
    """`response` with the desk pages' headers: their CSP and no caching."""
    response.headers["Content-Security-Policy"] = DESK_CSP
    response.headers["Cache-Control"] = "no-store"
    return response
