"""What every fake shares: a stdlib HTTP server on a loopback port, served from a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TypeVar

Found = TypeVar("Found")
Server = TypeVar("Server", bound="LocalServer")


class LocalServer:
    """Serves `handler` on `host:port` (a free port by default) in a daemon thread.

    Subclasses record what they receive under `self._changed` and call `notify_all()` on
    it, so `_wait_until` wakes up as soon as something arrives.
    """

    thread_name = "fake-api"
    """Name of the serving thread (in thread dumps)."""

    def __init__(
        self, handler: type[BaseHTTPRequestHandler], host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL clients are configured with."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self: Server) -> Server:
        """Serves in a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=self.thread_name,
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Wakes every waiter and stops serving."""
        with self._changed:
            self._changed.notify_all()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self: Server) -> Server:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_until(
        self, find: Callable[[], Found | None], timeout: float, failure: Callable[[], str]
    ) -> Found:
        """The first non-None `find()` within `timeout` s; else AssertionError(failure())."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = find()
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(failure())
                self._changed.wait(remaining)
