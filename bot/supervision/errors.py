"""Errors raised by the supervision (QA) services."""

from __future__ import annotations


class QaError(ValueError):
    """Base error for supervision / QA operations."""


class QaNotFound(QaError):
    """The requested conversation, review or record does not exist."""


class QaForbidden(QaError):
    """The caller may not perform this QA action."""


class QaConflict(QaError):
    """The action conflicts with the current state (e.g. already claimed)."""
