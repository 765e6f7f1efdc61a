"""`Running`: a thing that starts and stops, used as `with thing: ...` (started, then stopped)."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Running:
    """Base of what runs children (servers, service groups, stacks): `with` starts and stops it."""

    def start(self) -> None:
        """Starts it and returns once it is ready."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stops it; never raises for what has already stopped."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
