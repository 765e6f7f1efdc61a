"""The customer directory as the actions use it: who the caller is across channels."""

from __future__ import annotations

import asyncio
import logging
from functools import lru_cache

from actions.service_plan import app_engine
from bot.core.settings import get_settings
from bot.customers import CustomerDirectory, LinkError
from bot.customers.directory import mask_email
from bot.service.mailer import ConfirmationLetter, MailError, send_letter

logger = logging.getLogger(__name__)


def send_code(to: str, subject: str, text: str) -> None:
    """Sends a link code through the mailer; without SMTP a logged stand-in (local only).

    Blocking: called from the directory in a worker thread.
    """
    settings = get_settings()
    if not settings.smtp_host:
        if settings.env != "local":
            raise LinkError("Email is not configured: no code can be sent.")
        logger.warning("SMTP is not configured (local): the code for %s: %s", mask_email(to), text)
        return
    try:
        asyncio.run(send_letter(settings, ConfirmationLetter(to=to, subject=subject, text=text)))
    except MailError as error:
        raise LinkError(f"The code could not be sent: {error}") from error


@lru_cache(maxsize=1)
def customer_directory() -> CustomerDirectory:
    """The customer directory on the app database, created on first use."""
    return CustomerDirectory(app_engine(), send=send_code)
