"""A local WeChat official-account API: access tokens and customer-service text messages.

    with FakeWeChatAPI("wx49f0ab532d5d035a", "app-secret") as api:
        # WECHAT_API_BASE_URL=api.url
        ...
        api.wait_for(lambda message: message["touser"] == openid)
        api.texts_to(openid)  # ["您好，..."]

Answers like `https://api.weixin.qq.com`: `GET /cgi-bin/token` issues tokens,
`POST /cgi-bin/message/custom/send?access_token=...` accepts `msgtype: text` messages.
Test controls: `expire(openid)` closes a user's 48-hour window (errcode 45015),
`fail_next(n, errcode=-1)` makes the next sends fail, `expire_tokens()` invalidates every
token issued (errcode 40001, as after a refresh elsewhere). Stdlib only: both runtimes use it.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fakes.server import LocalServer

MAX_TEXT_BYTES = 2048
ERRMSG = {
    0: "ok",
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40125: "invalid appsecret",
    44002: "empty post data",
    45002: "content size out of limit",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    47001: "data format error",
}


def _error(errcode: int) -> dict[str, Any]:
    return {"errcode": errcode, "errmsg": ERRMSG.get(errcode, "error")}


class FakeWeChatAPI(LocalServer):
    """The WeChat API calls Kefu makes, for one app id and secret, on a loopback port.

    `sent` holds the accepted customer-service messages (the JSON body plus `received_at`,
    a `time.monotonic()` value); `attempts` every send request with the errcode answered.
    """

    thread_name = "fake-wechat-api"

    def __init__(
        self, app_id: str, app_secret: str, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.app_id = app_id
        self.app_secret = app_secret
        self.token_requests = 0
        self.sent: list[dict[str, Any]] = []
        self.attempts: list[dict[str, Any]] = []
        self._tokens: set[str] = set()
        self._expired: set[str] = set()
        self._failures: list[tuple[int, int]] = []
        super().__init__(_handler_class(self), host, port)

    # ------------------------------------------------------------ test controls

    def expire(self, openid: str) -> None:
        """Later sends to `openid` fail with 45015 (the 48-hour window closed)."""
        with self._changed:
            self._expired.add(openid)

    def fail_next(self, count: int, errcode: int = -1, http_status: int = 200) -> None:
        """The next `count` sends answer `errcode` (-1 "system error": transient).

        With an `http_status` other than 200 they get that HTTP status instead.
        """
        with self._changed:
            self._failures.extend((errcode, http_status) for _ in range(count))

    def expire_tokens(self) -> None:
        """Invalidates every access token issued so far (sends answer 40001)."""
        with self._changed:
            self._tokens.clear()

    # ------------------------------------------------------------ what happened

    def texts_to(self, openid: str) -> list[str]:
        """The texts accepted for `openid`, oldest first."""
        with self._changed:
            return [
                str(message["text"]["content"])
                for message in self.sent
                if message.get("touser") == openid
            ]

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        """The first accepted message matching `predicate`, waiting up to `timeout` seconds."""
        return self._wait_until(
            lambda: next((message for message in self.sent if predicate(message)), None),
            timeout,
            lambda: f"No matching WeChat message within {timeout} s; sent: {self.sent!r}",
        )

    # ------------------------------------------------------------ the API

    def token(self, params: dict[str, str]) -> dict[str, Any]:
        """`GET /cgi-bin/token`: a new access token for the right app id and secret."""
        with self._changed:
            self.token_requests += 1
            if params.get("grant_type") != "client_credential":
                return _error(40002)
            if params.get("appid") != self.app_id or params.get("secret") != self.app_secret:
                return _error(40125)
            token = f"FAKE_TOKEN_{secrets.token_hex(16)}"
            self._tokens.add(token)
            return {"access_token": token, "expires_in": 7200}

    def send(self, access_token: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """`POST /cgi-bin/message/custom/send`: (HTTP status, answer) for one message."""
        try:
            message = json.loads(body.decode("utf-8")) if body else None
        except ValueError:
            message = None
        with self._changed:
            status, answer = self._answer_send(access_token, message)
            attempt = {"body": message, "errcode": answer.get("errcode"), "status": status}
            self.attempts.append(attempt)
            if status == 200 and answer["errcode"] == 0 and isinstance(message, dict):
                self.sent.append({**message, "received_at": time.monotonic()})
            self._changed.notify_all()
        return status, answer

    def _answer_send(self, access_token: str, message: Any) -> tuple[int, dict[str, Any]]:
        if access_token not in self._tokens:
            return 200, _error(40001)
        if message is None:
            return 200, _error(44002)
        if (
            not isinstance(message, dict)
            or message.get("msgtype") != "text"
            or not isinstance(message.get("text"), dict)
            or not isinstance(message["text"].get("content"), str)
        ):
            return 200, _error(47001)
        if not message.get("touser"):
            return 200, _error(40003)
        if self._failures:
            errcode, http_status = self._failures.pop(0)
            return http_status, _error(errcode)
        if message["touser"] in self._expired:
            return 200, _error(45015)
        if len(message["text"]["content"].encode("utf-8")) > MAX_TEXT_BYTES:
            return 200, _error(45002)
        return 200, _error(0)


def _handler_class(api: FakeWeChatAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            url = urlsplit(self.path)
            params = {key: values[0] for key, values in parse_qs(url.query).items()}
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if (method, url.path) == ("GET", "/cgi-bin/token"):
                status, answer = 200, api.token(params)
            elif (method, url.path) == ("POST", "/cgi-bin/message/custom/send"):
                status, answer = api.send(params.get("access_token", ""), body)
            else:
                status, answer = 404, {"errcode": 404, "errmsg": "not found"}
            payload = json.dumps(answer, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests read `sent`, not the access log."""

    return Handler
