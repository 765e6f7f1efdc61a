"""HTTP requests written by hand on a socket, for bodies no well-behaved client sends.

A server that refuses a request on its headers alone (a declared 10 MB body) answers before
the body is sent; one that refuses while streaming answers part-way. `raw_request` waits
briefly for an early answer before sending the body, stops sending when the server answers
or closes, and then reads whatever answer came.
"""

from __future__ import annotations

import select
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

CHUNK = 64 * 1024


@dataclass
class RawResponse:
    """What came back: status (None when nothing did), headers, body, seconds, bytes sent."""

    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    elapsed: float = 0.0
    body_bytes_sent: int = 0


def raw_request(
    url: str,
    body: bytes = b"",
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    content_length: int | None = None,
    chunked: bool = False,
    early: float = 0.5,
    pace: float = 0.0,
    timeout: float = 15.0,
) -> RawResponse:
    """Sends one request; `content_length` may claim more than `body` holds.

    With `chunked`, the body goes as 64 KB chunks (no Content-Length) and the final empty
    chunk only if the server has not answered by then. `pace` waits that many seconds for an
    answer after each 64 KB, so that `body_bytes_sent` tells how far the server read (without
    it the kernel's socket buffers take megabytes before the server reads anything).
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    else:
        lines.append(f"Content-Length: {len(body) if content_length is None else content_length}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    started = time.monotonic()
    sent = 0
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        answered = bool(select.select([sock], [], [], early)[0])
        try:
            for offset in range(0, len(body), CHUNK) if not answered else ():
                piece = body[offset : offset + CHUNK]
                sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
                sent += len(piece)
                if select.select([sock], [], [], pace)[0]:
                    answered = True
                    break
            if chunked and not answered:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server refused and closed while the body was still coming
        raw = _read_response(sock, started + timeout)
    elapsed = time.monotonic() - started
    return _parse(raw, elapsed, sent)


def _read_response(sock: socket.socket, deadline: float) -> bytes:
    data = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(CHUNK)
        except (TimeoutError, OSError):
            break
        if not chunk:
            break
        data += chunk
        if _complete(data):
            break
    return data


def _complete(data: bytes) -> bool:
    head, separator, rest = data.partition(b"\r\n\r\n")
    if not separator:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return len(rest) >= int(value.strip())
    return False


def _parse(raw: bytes, elapsed: float, sent: int) -> RawResponse:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return RawResponse(None, {}, raw, elapsed, sent)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
    return RawResponse(status, headers, body, elapsed, sent)
