"""Working tickets to closure: what agents, supervisors and customers do to a case.

`CaseWork` is the one entry point (the desk's routes, the bot's actions and the CLI call it);
`may_see` / `may_act` are the visibility rules; `CaseError`, `CaseNotFound` and
`CaseForbidden` are its refusals, each with a message for the caller.
"""

from bot.casework.access import may_act, may_see
from bot.casework.base import CaseChange
from bot.casework.errors import CaseError, CaseForbidden, CaseNotFound
from bot.casework.work import CaseWork

__all__ = [
    "CaseChange",
    "CaseError",
    "CaseForbidden",
    "CaseNotFound",
    "CaseWork",
    "may_act",
    "may_see",
]
