"""Text messages: the `SmsSender` interface and the logged stand-in used by default.

A real provider (Aliyun SMS, Twilio...) implements `SmsSender`; `reference` is the notice's
key, which providers that take a client reference use to drop a repeated request.
`LoggedSmsSender` appends one JSON line per message to a file (`KEFU_SMS_LOG_PATH`) and logs
it, so a local run shows what would have been texted. It is idempotent by reference: a
message already in the file is not written again.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime
from pathlib import Path
from typing import Protocol

logger = logging.getLogger(__name__)


class SmsError(RuntimeError):
    """The text message could not be sent (the provider refused or did not answer)."""


class SmsSender(Protocol):
    """Sends one text message; blocking callers run it in a thread."""

    def send(self, phone: str, text: str, reference: str, at: datetime) -> None:
        """Sends `text` to `phone`; raises `SmsError` on failure."""


class LoggedSmsSender:
    """Writes each message as a JSON line to `path` instead of texting it."""

    _lock = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, phone: str, text: str, reference: str, at: datetime) -> None:
        """Appends `{"at", "to", "reference", "text"}` unless `reference` is already there."""
        with self._lock:
            if reference in self.references():
                return
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as log:
                    line = {"at": at.isoformat(), "to": phone, "reference": reference, "text": text}
                    log.write(json.dumps(line, ensure_ascii=False) + "\n")
            except OSError as error:
                raise SmsError(f"Could not write the SMS log {self.path}: {error}") from error
        logger.info("SMS (logged, not sent) to %s: %s", _mask(phone), reference)

    def references(self) -> set[str]:
        """The references of every message in the file."""
        if not self.path.exists():
            return set()
        found = set()
        with self.path.open(encoding="utf-8") as log:
            for line in log:
                try:
                    found.add(str(json.loads(line)["reference"]))
                except (ValueError, KeyError, TypeError):
                    continue
        return found


def _mask(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}" if len(phone) >= 7 else "****"
