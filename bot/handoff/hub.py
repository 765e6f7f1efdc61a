"""The desk's live updates: every open console's WebSocket, and broadcasting to them."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from starlette.websockets import WebSocket


class DeskHub:
    """The consoles connected to this desk process."""

    def __init__(self) -> None:
        self._sockets: set[WebSocket] = set()

    @property
    def connections(self) -> int:
        """How many consoles are connected."""
        return len(self._sockets)

    def add(self, socket: WebSocket) -> None:
        """Registers an accepted WebSocket."""
        self._sockets.add(socket)

    def discard(self, socket: WebSocket) -> None:
        """Forgets a closed WebSocket."""
        self._sockets.discard(socket)

    async def broadcast(self, payload: dict[str, Any]) -> None:
        """Sends `payload` to every console; a console that fails is dropped."""
        sockets = list(self._sockets)
        results = await asyncio.gather(
            *(socket.send_json(payload) for socket in sockets), return_exceptions=True
        )
        for socket, result in zip(sockets, results, strict=True):
            if isinstance(result, BaseException):
                self._sockets.discard(socket)
                with contextlib.suppress(Exception):
                    await socket.close()
