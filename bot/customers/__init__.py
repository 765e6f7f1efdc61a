"""Customers across channels: one account per person, its channel identities, linking them."""

from bot.customers.directory import (
    CODE_ATTEMPTS,
    CODE_LIFETIME,
    DAILY_EMAILS,
    CustomerDirectory,
    LinkError,
    LinkStarted,
)

__all__ = [
    "CODE_ATTEMPTS",
    "CODE_LIFETIME",
    "DAILY_EMAILS",
    "CustomerDirectory",
    "LinkError",
    "LinkStarted",
]
