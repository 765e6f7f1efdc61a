"""A local Telegram Bot API: answers python-telegram-bot 22 like Telegram does, records every call.

    with FakeTelegramAPI("123456:secret") as api:
        bot = Bot("123456:secret", base_url=f"{api.url}/bot")
        ...
        api.wait_for(lambda call: call[0] == "sendMessage" and call[1]["chat_id"] == 42)

Requests go to `/bot<token>/<method>` as JSON, form or multipart bodies (python-telegram-bot
sends forms whose structured values are JSON strings); parameters are recorded decoded, so
`reply_markup` is a dict and `chat_id` an int. Stdlib only: the Rasa and app runtimes both use it.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fakes.server import LocalServer

BLOCKED = "Forbidden: bot was blocked by the user"
"""What Telegram answers when the user blocked the bot."""

CHAT_NOT_FOUND = "Bad Request: chat not found"
"""What Telegram answers for a chat the bot never talked to."""

MAX_TEXT_CHARS = 4096
MAX_CALLBACK_DATA_BYTES = 64
LONG_POLL_CAP_SECONDS = 5.0
"""getUpdates waits at most this long, whatever `timeout` asks (keeps tests quick)."""

# Parameters that stay strings even when they look like JSON ("123" as a text is text).
_STRING_PARAMS = frozenset(
    {
        "text",
        "caption",
        "url",
        "secret_token",
        "callback_query_id",
        "inline_message_id",
        "photo",
        "document",
        "ip_address",
        "parse_mode",
        "action",
        "query",
        "title",
        "description",
        "short_description",
        "name",
        "language_code",
        "business_connection_id",
    }
)
_CHAT_METHODS = frozenset({"sendmessage", "sendphoto", "sendchataction", "editmessagereplymarkup"})

Call = tuple[str, dict[str, Any]]


class _ApiError(Exception):
    """A Bot API error answer: `{"ok": false, "error_code": ..., "description": ...}`."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        """The JSON answer."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


class FakeTelegramAPI(LocalServer):
    """The Bot API methods Kefu uses, for one bot token, on a loopback port.

    `calls` holds every call answered with `ok: true` as `(method, params)`; `errors` the
    ones answered with an error as `(method, params, error_code)`.
    """

    thread_name = "fake-telegram-api"

    def __init__(
        self,
        token: str,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str = "kefu_test_bot",
    ) -> None:
        self.token = token
        self.username = username
        self.bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 1
        self.calls: list[Call] = []
        self.errors: list[tuple[str, dict[str, Any], int]] = []
        self._webhook: dict[str, Any] = {}
        self._webhook_url = ""
        self._webhook_allowed: list[str] | None = None
        self._webhook_error: tuple[int, str] | None = None
        self._updates: list[dict[str, Any]] = []
        self._blocked: dict[str, tuple[int, str]] = {}
        self._failures: list[tuple[str, _ApiError]] = []
        self._message_ids = itertools.count(1)
        self._messages: dict[tuple[str, int], dict[str, Any]] = {}
        super().__init__(_handler_class(self), host, port)

    # ------------------------------------------------------------ test controls

    def push_update(self, update: dict[str, Any]) -> None:
        """Queues an update for getUpdates (long polls wake up)."""
        with self._changed:
            self._updates.append(update)
            self._changed.notify_all()

    def block(self, chat_id: int | str, code: int = 403, description: str = BLOCKED) -> None:
        """Later calls to `chat_id` fail, by default as for a user who blocked the bot."""
        with self._changed:
            self._blocked[str(chat_id)] = (code, description)

    def fail_next(
        self,
        count: int,
        code: int = 502,
        description: str = "Bad Gateway",
        retry_after: int | None = None,
        method: str = "sendMessage",
    ) -> None:
        """The next `count` calls of `method` fail (502 by default; 429 with `retry_after`)."""
        if retry_after is not None:
            code, description = 429, f"Too Many Requests: retry after {retry_after}"
        with self._changed:
            self._failures.extend(
                (method.lower(), _ApiError(code, description, retry_after)) for _ in range(count)
            )

    def report_webhook_error(self, message: str) -> None:
        """Makes getWebhookInfo report `message` as the last delivery error."""
        with self._changed:
            self._webhook_error = (int(time.time()), message)

    # ------------------------------------------------------------ what happened

    @property
    def webhook(self) -> dict[str, Any]:
        """The parameters of the last setWebhook call ({} before any)."""
        with self._changed:
            return dict(self._webhook)

    def methods(self) -> list[str]:
        """The names of the successful calls, in order."""
        with self._changed:
            return [method for method, _ in self.calls]

    def sent_messages(self, chat_id: int | str | None = None) -> list[dict[str, Any]]:
        """The parameters of each delivered sendMessage, optionally only those to `chat_id`."""
        with self._changed:
            return [
                params
                for method, params in self.calls
                if method == "sendMessage"
                and (chat_id is None or str(params.get("chat_id")) == str(chat_id))
            ]

    def texts_to(self, chat_id: int | str) -> list[str]:
        """The texts delivered to `chat_id`, in order."""
        return [str(params.get("text", "")) for params in self.sent_messages(chat_id)]

    def wait_for(self, predicate: Callable[[Call], bool], timeout: float = 10.0) -> dict[str, Any]:
        """The params of the first successful call `(method, params)` matching `predicate`.

        Raises:
            AssertionError: none within `timeout` seconds (the message lists the calls).
        """
        return self._wait_until(
            lambda: next((call[1] for call in self.calls if predicate(call)), None),
            timeout,
            lambda: (
                f"No matching Telegram call within {timeout} s; calls: {self.calls}, "
                f"errors: {self.errors}"
            ),
        )

    # ------------------------------------------------------------ the API

    def answer(self, token: str, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The HTTP status and JSON body Telegram gives for `method` called with `params`."""
        if token != self.token:
            return 401, _ApiError(401, "Unauthorized").body()
        handler = _METHODS.get(method.lower())
        if handler is None:
            return 404, _ApiError(404, "Not Found").body()
        name = handler.__name__.removeprefix("_")
        try:
            self._check_failures(method.lower(), params)
            result = handler(self, params)
        except _ApiError as error:
            with self._changed:
                self.errors.append((name, params, error.code))
                self._changed.notify_all()
            return error.code, error.body()
        with self._changed:
            self.calls.append((name, params))
            self._changed.notify_all()
        return 200, {"ok": True, "result": result}

    def _check_failures(self, method: str, params: dict[str, Any]) -> None:
        with self._changed:
            for index, (failing, error) in enumerate(self._failures):
                if failing == method:
                    del self._failures[index]
                    raise error
            if method in _CHAT_METHODS and str(params.get("chat_id")) in self._blocked:
                raise _ApiError(*self._blocked[str(params.get("chat_id"))])

    def _bot_user(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": "Kefu", "username": self.username}

    def _message(self, params: dict[str, Any], **content: Any) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _ApiError(400, "Bad Request: chat_id is empty")
        if isinstance(chat_id, str) and chat_id.startswith("@"):
            chat = {"id": -1_000_000_000_000, "type": "channel", "username": chat_id[1:]}
        else:
            chat = {"id": int(chat_id), "type": "private" if int(chat_id) > 0 else "supergroup"}
        message = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": self._bot_user(),
            **content,
        }
        if isinstance(params.get("reply_markup"), dict):
            _check_keyboard(params["reply_markup"])
            message["reply_markup"] = params["reply_markup"]
        with self._changed:
            self._messages[(str(chat_id), message["message_id"])] = message
        return message

    def _getMe(self, params: dict[str, Any]) -> Any:
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _sendMessage(self, params: dict[str, Any]) -> Any:
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT_CHARS:
            raise _ApiError(400, "Bad Request: message is too long")
        return self._message(params, text=text)

    def _sendPhoto(self, params: dict[str, Any]) -> Any:
        if not params.get("photo"):
            raise _ApiError(400, "Bad Request: there is no photo in the request")
        photo = {"file_id": "fake-photo", "file_unique_id": "fake", "width": 1, "height": 1}
        content: dict[str, Any] = {"photo": [photo]}
        if params.get("caption"):
            content["caption"] = params["caption"]
        return self._message(params, **content)

    def _sendChatAction(self, params: dict[str, Any]) -> Any:
        if not params.get("action"):
            raise _ApiError(400, "Bad Request: action is empty")
        return True

    def _answerCallbackQuery(self, params: dict[str, Any]) -> Any:
        if not params.get("callback_query_id"):
            raise _ApiError(400, "Bad Request: query is too old or query ID is invalid")
        return True

    def _editMessageReplyMarkup(self, params: dict[str, Any]) -> Any:
        if params.get("inline_message_id"):
            return True
        message_id = params.get("message_id")
        if not isinstance(message_id, int):
            raise _ApiError(400, "Bad Request: message identifier is not specified")
        with self._changed:
            message = dict(self._messages.get((str(params.get("chat_id")), message_id)) or {})
        message = message or {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": params.get("chat_id"), "type": "private"},
            "text": "",
        }
        message.pop("reply_markup", None)
        if isinstance(params.get("reply_markup"), dict):
            _check_keyboard(params["reply_markup"])
            message["reply_markup"] = params["reply_markup"]
        return message

    def _setWebhook(self, params: dict[str, Any]) -> Any:
        url = params.get("url")
        if not isinstance(url, str):
            raise _ApiError(400, "Bad Request: bad webhook: url is empty")
        secret = params.get("secret_token")
        if secret is not None and not _valid_secret(str(secret)):
            raise _ApiError(400, "Bad Request: secret token contains unallowed characters")
        with self._changed:
            self._webhook = dict(params)
            self._webhook_url = url
            self._webhook_allowed = params.get("allowed_updates")
            if params.get("drop_pending_updates") is True:
                self._updates.clear()
        return True

    def _deleteWebhook(self, params: dict[str, Any]) -> Any:
        with self._changed:
            self._webhook_url = ""
            if params.get("drop_pending_updates") is True:
                self._updates.clear()
        return True

    def _getWebhookInfo(self, params: dict[str, Any]) -> Any:
        with self._changed:
            info: dict[str, Any] = {
                "url": self._webhook_url,
                "has_custom_certificate": False,
                "pending_update_count": len(self._updates),
                "max_connections": 40,
            }
            if self._webhook_url and self._webhook_allowed is not None:
                info["allowed_updates"] = self._webhook_allowed
            if self._webhook_error is not None:
                info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    def _getUpdates(self, params: dict[str, Any]) -> Any:
        offset, limit = params.get("offset"), params.get("limit") or 100
        timeout = min(float(params.get("timeout") or 0), LONG_POLL_CAP_SECONDS)
        deadline = time.monotonic() + timeout
        with self._changed:
            if self._webhook_url:
                raise _ApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
            if isinstance(offset, int) and offset > 0:  # confirms every earlier update
                self._updates = [u for u in self._updates if u.get("update_id", 0) >= offset]
            while not self._updates and time.monotonic() < deadline:
                self._changed.wait(deadline - time.monotonic())
            return list(self._updates[: int(limit)])

    def _setMyCommands(self, params: dict[str, Any]) -> Any:
        if not isinstance(params.get("commands"), list):
            raise _ApiError(400, "Bad Request: commands must be a list")
        return True


_METHOD_NAMES = (
    "getMe",
    "sendMessage",
    "sendPhoto",
    "sendChatAction",
    "answerCallbackQuery",
    "editMessageReplyMarkup",
    "setWebhook",
    "deleteWebhook",
    "getWebhookInfo",
    "getUpdates",
    "setMyCommands",
)
_METHODS: dict[str, Callable[[FakeTelegramAPI, dict[str, Any]], Any]] = {
    name.lower(): getattr(FakeTelegramAPI, f"_{name}") for name in _METHOD_NAMES
}


def _valid_secret(secret: str) -> bool:
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
    return 1 <= len(secret) <= 256 and set(secret) <= allowed


def _check_keyboard(markup: dict[str, Any]) -> None:
    """Telegram refuses callback data over 64 bytes."""
    for row in markup.get("inline_keyboard") or []:
        for button in row:
            data = button.get("callback_data")
            if data is not None and len(str(data).encode("utf-8")) > MAX_CALLBACK_DATA_BYTES:
                raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")


def _decode(name: str, value: str) -> Any:
    """A form value as Telegram reads it: structured values are JSON, texts stay strings."""
    if name in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def decode_params(content_type: str, body: bytes, query: str = "") -> dict[str, Any]:
    """The parameters of a Bot API request: query string plus JSON, form or multipart body.

    Raises:
        ValueError: the body does not match its content type.
    """
    params: dict[str, Any] = {name: _decode(name, value) for name, value in parse_qsl(query)}
    kind = content_type.split(";", 1)[0].strip().lower()
    if not body:
        return params
    if kind == "application/json":
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("the JSON body must be an object")
        params.update(data)
    elif kind == "application/x-www-form-urlencoded":
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        params.update({name: _decode(name, value) for name, value in pairs})
    elif kind == "multipart/form-data":
        header = f"Content-Type: {content_type}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            decoded = part.get_payload(decode=True)
            payload = decoded if isinstance(decoded, bytes) else b""
            if not isinstance(name, str):
                continue
            if part.get_filename():
                params[name] = {"filename": part.get_filename(), "size": len(payload)}
            else:
                params[name] = _decode(name, payload.decode("utf-8"))
    return params


def _handler_class(api: FakeTelegramAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _serve(self) -> None:
            url = urlsplit(self.path)
            parts = url.path.strip("/").split("/")
            status: int
            body: dict[str, Any]
            if len(parts) != 2 or not parts[0].startswith("bot"):
                status, body = 404, _ApiError(404, "Not Found").body()
                self._read_body()
            else:
                try:
                    params = decode_params(
                        self.headers.get("Content-Type", ""), self._read_body(), url.query
                    )
                except (ValueError, UnicodeDecodeError):
                    status, body = 400, _ApiError(400, "Bad Request: can't parse body").body()
                else:
                    status, body = api.answer(parts[0].removeprefix("bot"), parts[1], params)
            payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests read `calls`, not the access log."""

    return Handler
