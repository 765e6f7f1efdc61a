"""The errors of case work: each carries a message fit for the desk or the customer.

`CaseError` is a refused operation (the web layer answers 409/422 with its message);
`CaseNotFound` is a ticket, task or alert that does not exist or that the caller may not
see (404, so its existence does not leak); `CaseForbidden` is an operation the caller's role
may not do on something it may see (403).
"""

from __future__ import annotations


class CaseError(ValueError):
    """A case operation was refused; the message says why (a 4xx for the caller)."""


class CaseNotFound(CaseError):
    """No such ticket, task or alert, or the caller may not see it (404)."""


class CaseForbidden(CaseError):
    """The caller's role may not do this (403), e.g. an agent recording a follow-up outcome."""
