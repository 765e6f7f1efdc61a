"""WeChat's API client: wechatpy's `WeChatClient` with the access token shared across processes.

- `KefuWeChatClient`: wechatpy's client against a configurable API base URL, with one token
  fetch at a time and a default timeout on every request.
- `ChannelStateSession`: wechatpy's session storage over the shared `ChannelState`, so every
  process reuses the same access token.
"""

from __future__ import annotations

import threading
from typing import Any

import requests
from wechatpy import WeChatClient
from wechatpy.session import SessionStorage

from connectors.channel_state import ChannelState

DEFAULT_API_BASE_URL = "https://api.weixin.qq.com"
TOKEN_EARLY_EXPIRY_SECONDS = 300
"""Cached access tokens are dropped this long before WeChat expires them."""


class ChannelStateSession(SessionStorage):  # type: ignore[misc]
    """wechatpy's session storage over `ChannelState`: access tokens shared across processes."""

    def __init__(
        self,
        state: ChannelState,
        prefix: str = "wechat:session:",
        early_expiry_seconds: int = TOKEN_EARLY_EXPIRY_SECONDS,
    ) -> None:
        self.state = state
        self.prefix = prefix
        self.early_expiry_seconds = early_expiry_seconds

    def get(self, key: str, default: Any = None) -> Any:
        """The stored value, or `default`."""
        value = self.state.get(self.prefix + key)
        return default if value is None else value

    def set(self, key: str, value: Any, ttl: int | None = None) -> None:
        """Stores the value, expiring a little before `ttl` seconds."""
        if ttl is not None:
            ttl = max(int(ttl) - self.early_expiry_seconds, 60)
        self.state.set(self.prefix + key, str(value), ttl)

    def delete(self, key: str) -> None:
        """Removes the value."""
        self.state.delete(self.prefix + key)


class _TimeoutSession(requests.Session):
    """A requests session with a default timeout (wechatpy's token fetch sets none)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.default_timeout = timeout

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        """Sends the request, with the default timeout unless one is given."""
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        return super().request(*args, **kwargs)


class KefuWeChatClient(WeChatClient):  # type: ignore[misc]
    """wechatpy's `WeChatClient` against `api_base_url`, with one token fetch at a time.

    Blocking (requests): call it from async code with `asyncio.to_thread`.
    """

    def __init__(
        self,
        app_id: str,
        app_secret: str,
        api_base_url: str = DEFAULT_API_BASE_URL,
        session: SessionStorage | None = None,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(app_id, app_secret, session=session, timeout=timeout)
        self.api_base_url = api_base_url.rstrip("/")
        self.API_BASE_URL = f"{self.api_base_url}/cgi-bin/"
        self._http = _TimeoutSession(timeout)
        self._token_lock = threading.Lock()

    def fetch_access_token(self) -> dict[str, Any]:
        """Fetches a new access token from `{api_base_url}/cgi-bin/token` into the session."""
        result: dict[str, Any] = self._fetch_access_token(
            url=f"{self.api_base_url}/cgi-bin/token",
            params={
                "grant_type": "client_credential",
                "appid": self.appid,
                "secret": self.secret,
            },
        )
        return result

    @property
    def access_token(self) -> str:
        """The cached token (shared by every process using the same state), fetched if none."""
        token = self.session.get(self.access_token_key)
        if token:
            return str(token)
        with self._token_lock:
            token = self.session.get(self.access_token_key)
            if not token:
                self.fetch_access_token()
                token = self.session.get(self.access_token_key)
        return str(token)
