"""Channel load: simulated WeChat users and Telegram chats against a fresh stack.

The stack runs with both channels pointed at fakes (`fakes/`): the WeChat customer-service
message API and the Telegram Bot API, on loopback.

WeChat (safe mode, AES): each of `users` customers sends signed, encrypted text messages to
/webhooks/wechat/webhook for `seconds`, one at a time: it reads the HTTP reply (a passive
answer, or `success` when the answer follows through the customer-service message API),
waits for the answer in the second case, waits `pause` seconds and sends the next message.
Users start evenly over the first `ramp` seconds (0: all at the same instant, a burst of
first messages that each open a new conversation).
Every fifth message goes out three times at once with the same MsgId, as WeChat re-sends a
message whose reply is slow. Measured:

- acknowledged within 5 s: share of all HTTP requests (retry copies included) answered 200
  within 5 s, WeChat's limit (target 100 %);
- acknowledgement time p50/p95/max: per message, its slowest copy (target p95 <= 1 s);
- answer time: until the customer has the answer (the passive reply, or the first
  customer-service message after the acknowledgement);
- duplicate answers (target 0): per MsgId, HTTP replies with content beyond the first, plus
  texts the customer received twice for it, among the passive reply and the
  customer-service messages to that user between this message and the user's next one (an
  answer pushed again; the continuation of a passive reply over 2048 bytes is not a repeat);
- retries processed (target 0): per user, user messages in Rasa's tracker beyond the distinct
  MsgIds sent. A retry that reached the bot is answered twice, however it is delivered.

Telegram: each of `chats` chats POSTs updates to /webhooks/telegram/webhook with the secret
header for `telegram_seconds`, one at a time (the channel answers once the bot has processed
the update); every fifth update goes out three times at once with the same update_id.
Measured: handling time per update (its slowest copy), updates handled per second, replies
recorded by the fake Bot API, replies beyond the bot messages in each chat's tracker (extra
replies, target 0) and user messages beyond the distinct update_ids (retries processed,
target 0).

Before each phase a warm-up user (not counted) sends every question once: the first answer
of each kind is slower, as models and data load lazily.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import secrets
import shutil
import string
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import httpx

from bot.bench.common import BenchReport, percentile, scratch_settings
from bot.core.db import make_engine, upgrade
from bot.core.processes import ServiceGroup, kefu_services
from bot.core.settings import Settings
from bot.core.training import ensure_model
from bot.knowledge.index import ensure_index
from bot.service.orders import seed_demo_orders

if TYPE_CHECKING:
    from fakes.telegram_api import FakeTelegramAPI
    from fakes.wechat_api import FakeWeChatAPI
    from fakes.wechat_user import WeChatUser

T = TypeVar("T")

QUESTIONS = (
    "怎么开发票",
    "我的订单KF202611200003到哪了",
    "退货运费谁出",
    "hello",
    "I want a refund",
    "能开增值税专用发票吗",
    "where is my order KF202611200002",
    "积分怎么用",
    "付款失败了怎么办",
    "how do I return an item",
)
"""Customer questions from the demo domain, Chinese and English, sent in turn."""

ACK_LIMIT_S = 5.0
"""WeChat waits this long for the HTTP reply, then re-sends the message."""
TARGET_ACK_P95_MS = 1000.0
RETRY_EVERY = 5
"""Every n-th message (update) is sent `1 + RETRY_COPIES` times at once."""
RETRY_COPIES = 2
REQUEST_TIMEOUT_S = 15.0
ANSWER_TIMEOUT_S = 30.0
"""How long a WeChat user waits for a customer-service message after `success`."""
LATE_SENDS_S = 5.0
"""Wait after a phase for answers still on their way."""
POLL_S = 0.05
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
WECHAT_PATH = "/webhooks/wechat/webhook"
TELEGRAM_PATH = "/webhooks/telegram/webhook"


@dataclass(frozen=True)
class Secrets:
    """Throwaway credentials shared by the stack, the fakes and the simulated clients."""

    wechat_token: str
    app_id: str
    app_secret: str
    encoding_aes_key: str
    telegram_token: str
    telegram_secret: str

    @classmethod
    def generate(cls) -> Secrets:
        """Fresh random credentials in each platform's format."""
        alphanumeric = string.ascii_letters + string.digits
        return cls(
            wechat_token=secrets.token_hex(16),
            app_id=f"wx{secrets.token_hex(8)}",
            app_secret=secrets.token_hex(16),
            encoding_aes_key="".join(secrets.choice(alphanumeric) for _ in range(43)),
            telegram_token=f"{secrets.randbelow(10**9) + 10**9}:{secrets.token_urlsafe(26)}",
            telegram_secret=secrets.token_urlsafe(32),
        )


@dataclass
class Copy:
    """One HTTP request: its time, status and, for WeChat, the passive reply's text."""

    seconds: float | None
    """None when no response came (timeout or connection error)."""
    status: int = 0
    content: str | None = None
    """The passive reply's text (or its type), None for `success` or an empty body."""
    error: str = ""

    @property
    def ok(self) -> bool:
        """Answered 200."""
        return self.status == 200


@dataclass
class Sent:
    """One message (update) of one user (chat), with every copy sent."""

    sender: str
    """WeChat openid, or Telegram chat id as text (Rasa's sender_id)."""
    message_id: int
    """WeChat MsgId or Telegram update_id."""
    sent_at: float
    """`time.monotonic()` just before the first copy went out."""
    copies: list[Copy] = field(default_factory=list)
    text: str = ""

    @property
    def slowest(self) -> float | None:
        """The slowest copy's time; None when a copy got no response."""
        times = [copy.seconds for copy in self.copies if copy.seconds is not None]
        return max(times) if times and len(times) == len(self.copies) else None

    @property
    def passive(self) -> list[Copy]:
        """The copies whose HTTP reply carried an answer."""
        return [copy for copy in self.copies if copy.ok and copy.content is not None]


@dataclass(frozen=True)
class TrackerCounts:
    """User and bot messages in one conversation's tracker."""

    user: int
    bot: int

    @classmethod
    def of(cls, events: Iterable[dict[str, Any]]) -> TrackerCounts:
        """Counts the `user` and `bot` events."""
        kinds = [event.get("event") for event in events]
        return cls(user=kinds.count("user"), bot=kinds.count("bot"))


def attribute(starts: list[float], items: Iterable[tuple[float, T]]) -> list[list[T]]:
    """Groups timed `items` by window [starts[i], starts[i + 1]) (the last is open).

    `starts` is sorted; items before the first start belong to no window.
    """
    windows: list[list[T]] = [[] for _ in starts]
    for at, item in items:
        index = bisect.bisect_right(starts, at) - 1
        if index >= 0:
            windows[index].append(item)
    return windows


def _ms(values: Iterable[float]) -> dict[str, float]:
    ms = [value * 1000 for value in values]
    return {
        "p50_ms": round(percentile(ms, 50), 1),
        "p95_ms": round(percentile(ms, 95), 1),
        "max_ms": round(max(ms, default=0.0), 1),
    }


def _by_sender(items: Iterable[Sent]) -> dict[str, list[Sent]]:
    grouped: dict[str, list[Sent]] = {}
    for item in sorted(items, key=lambda item: item.sent_at):
        grouped.setdefault(item.sender, []).append(item)
    return grouped


def retries_processed(sent: list[Sent], trackers: dict[str, TrackerCounts]) -> int:
    """User messages in the trackers beyond the distinct messages each sender sent."""
    distinct: dict[str, set[int]] = {}
    for item in sent:
        distinct.setdefault(item.sender, set()).add(item.message_id)
    return sum(
        max(0, trackers[sender].user - len(ids))
        for sender, ids in distinct.items()
        if sender in trackers
    )


def wechat_results(
    sent: list[Sent],
    pushes: dict[str, list[tuple[float, str]]],
    trackers: dict[str, TrackerCounts],
    wall: float,
) -> dict[str, Any]:
    """The WeChat phase's results (see the module docstring for the definitions).

    Args:
        sent: Every message, with its copies.
        pushes: Per openid, each customer-service message: when the fake API received it
            (`time.monotonic()`) and its text.
        trackers: Per openid, the counts in Rasa's tracker (missing: not fetched).
        wall: Seconds the phase lasted.
    """
    requests = [copy for item in sent for copy in item.copies]
    acknowledged = [
        c for c in requests if c.ok and c.seconds is not None and c.seconds <= ACK_LIMIT_S
    ]
    passive = duplicates = deferred = unanswered = 0
    answer_times: list[float] = []
    samples: dict[str, str] = {}
    for openid, items in _by_sender(sent).items():
        timed = [(at, (at, text)) for at, text in pushes.get(openid, [])]
        windows = attribute([item.sent_at for item in items], timed)
        for item, pushed in zip(items, windows, strict=True):
            replies = item.passive
            delivered = [replies[0].content or ""] if replies else []
            delivered += [text for _, text in pushed]
            duplicates += max(0, len(replies) - 1) + len(delivered) - len(set(delivered))
            if delivered:
                samples.setdefault(item.text, delivered[0][:80])
            if replies:
                passive += 1
                answer_times.append(min(c.seconds for c in replies if c.seconds is not None))
            elif pushed:
                deferred += 1
                answer_times.append(min(at for at, _ in pushed) - item.sent_at)
            else:
                unanswered += 1
    acks = [item.slowest for item in sent if item.slowest is not None]
    errors = [copy.error or f"HTTP {copy.status}" for copy in requests if not copy.ok]
    share = 100.0 * len(acknowledged) / len(requests) if requests else 0.0
    results: dict[str, Any] = {
        "users": len({item.sender for item in sent}),
        "seconds": round(wall, 1),
        "messages": len(sent),
        "requests": len(requests),
        "retry_copies": len(requests) - len(sent),
        "acknowledged_within_5s_percent": round(share, 2),
        **{f"ack_{key}": value for key, value in _ms(acks).items()},
        "answered_passively": passive,
        "passive_percent": round(100.0 * passive / len(sent), 1) if sent else 0.0,
        "answered_via_customer_service_api": deferred,
        "unanswered": unanswered,
        **{f"answer_{key}": value for key, value in _ms(answer_times).items()},
        "messages_per_s": round(len(sent) / wall, 1) if wall else 0.0,
        "duplicate_answers": duplicates,
        "retries_processed": retries_processed(sent, trackers),
        "trackers_checked": len(trackers),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "answer_samples": samples,
    }
    results["target_met"] = bool(
        requests
        and share == 100.0
        and results["ack_p95_ms"] <= TARGET_ACK_P95_MS
        and duplicates == 0
        and results["retries_processed"] == 0
        and not errors
    )
    return results


def telegram_results(
    sent: list[Sent],
    replies: dict[str, int],
    trackers: dict[str, TrackerCounts],
    wall: float,
) -> dict[str, Any]:
    """The Telegram phase's results (see the module docstring for the definitions).

    Args:
        sent: Every update, with its copies.
        replies: Per chat id, the messages the fake Bot API received for it.
        trackers: Per chat id, the counts in Rasa's tracker (missing: not fetched).
        wall: Seconds the phase lasted.
    """
    requests = [copy for item in sent for copy in item.copies]
    handled = [item for item in sent if all(copy.ok for copy in item.copies)]
    times = [item.slowest for item in handled if item.slowest is not None]
    errors = [copy.error or f"HTTP {copy.status}" for copy in requests if not copy.ok]
    chats = {item.sender for item in sent}
    extra = missing = 0
    for chat in chats & trackers.keys():
        extra += max(0, replies.get(chat, 0) - trackers[chat].bot)
        missing += max(0, trackers[chat].bot - replies.get(chat, 0))
    results: dict[str, Any] = {
        "chats": len(chats),
        "seconds": round(wall, 1),
        "updates": len(sent),
        "requests": len(requests),
        "retry_copies": len(requests) - len(sent),
        "updates_handled": len(handled),
        "updates_per_s": round(len(handled) / wall, 1) if wall else 0.0,
        **_ms(times),
        "replies": sum(replies.get(chat, 0) for chat in chats),
        "extra_replies": extra,
        "missing_replies": missing,
        "retries_processed": retries_processed(sent, trackers),
        "trackers_checked": len(trackers),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
    }
    results["duplicates_ok"] = bool(extra == 0 and results["retries_processed"] == 0)
    return results


async def _timed(
    send: Callable[[], Awaitable[httpx.Response]],
    read: Callable[[httpx.Response], str | None] | None = None,
) -> Copy:
    """Awaits one request; `read` turns a 200 response into the passive reply's text."""
    started = time.monotonic()
    try:
        response = await send()
    except httpx.TimeoutException as error:
        return Copy(
            None, error=f"{type(error).__name__} (no answer within {REQUEST_TIMEOUT_S:.0f} s)"
        )
    except httpx.HTTPError as error:
        return Copy(None, error=f"{type(error).__name__}: {error}"[:200])
    seconds = time.monotonic() - started
    if response.status_code != 200:
        return Copy(seconds, response.status_code, error=f"HTTP {response.status_code}")
    try:
        content = read(response) if read else None
    except Exception as error:  # a reply the simulated client cannot read is an error
        return Copy(seconds, 0, error=f"unreadable reply: {error!r}"[:200])
    return Copy(seconds, 200, content)


def planned_turn(sender: int, turn: int) -> tuple[str, int]:
    """What the `sender`-th simulated customer sends on its `turn`-th message, and how often.

    Every `RETRY_EVERY`-th message goes out `1 + RETRY_COPIES` times, as a platform retries.
    """
    copies = 1 + (RETRY_COPIES if turn % RETRY_EVERY == RETRY_EVERY - 1 else 0)
    return QUESTIONS[(sender + turn) % len(QUESTIONS)], copies


class ChannelRun:
    """Both phases against one running stack and the two fakes."""

    def __init__(
        self,
        rasa_url: str,
        rasa_token: str,
        keys: Secrets,
        wechat_api: FakeWeChatAPI,
        telegram_api: FakeTelegramAPI,
        pause: float = 3.0,
        ramp: float = 5.0,
    ) -> None:
        self.rasa_url = rasa_url.rstrip("/")
        self.rasa_token = rasa_token
        self.keys = keys
        self.wechat_api = wechat_api
        self.telegram_api = telegram_api
        self.pause = pause
        self.ramp = ramp
        self.run = secrets.token_hex(3)
        self.ids = itertools.count(10**9 + secrets.randbelow(10**9))

    async def check_channels(self, client: httpx.AsyncClient) -> None:
        """Raises unless both channels' health routes say they are enabled."""
        for name in ("wechat", "telegram"):
            response = await client.get(f"{self.rasa_url}/webhooks/{name}/")
            body = response.json() if response.status_code == 200 else {}
            if body.get("status") != "ok" or body.get("mode", "aes") != "aes":
                raise RuntimeError(
                    f"The {name} channel is not enabled (WeChat in safe mode): "
                    f"{response.status_code} {response.text}"
                )

    # WeChat

    def _wechat_user(self, openid: str) -> WeChatUser:
        from fakes.wechat_user import WeChatUser  # needs `cryptography`: only when running

        keys = self.keys
        return WeChatUser(keys.wechat_token, keys.app_id, keys.encoding_aes_key, openid)

    async def _wechat_copy(self, client: httpx.AsyncClient, user: WeChatUser, xml: str) -> Copy:
        query, body = user.signed_query(xml)

        def read(response: httpx.Response) -> str | None:
            reply = user.read_reply(response.content, query)
            if reply is None:
                return None
            return str(reply.get("Content") or reply.get("MsgType") or "")

        return await _timed(
            lambda: client.post(
                f"{self.rasa_url}{WECHAT_PATH}",
                params=query,
                content=body,
                headers={"Content-Type": "text/xml"},
            ),
            read,
        )

    async def _wechat_message(
        self, client: httpx.AsyncClient, user: WeChatUser, openid: str, text: str, copies: int
    ) -> Sent:
        """Sends one message (`copies` times at once); waits for its answer if deferred."""
        msg_id = next(self.ids)
        xml = user.text_xml(text, msg_id)
        seen = len(self.wechat_api.texts_to(openid))
        item = Sent(openid, msg_id, time.monotonic(), text=text)
        item.copies = list(
            await asyncio.gather(*(self._wechat_copy(client, user, xml) for _ in range(copies)))
        )
        if not item.passive:
            await self._until(lambda: len(self.wechat_api.texts_to(openid)) > seen)
        return item

    async def _wechat_customer(
        self, client: httpx.AsyncClient, index: int, deadline: float, start_delay: float
    ) -> list[Sent]:
        openid = f"oBench{self.run}-{index:03d}"
        user = self._wechat_user(openid)
        sent: list[Sent] = []
        await asyncio.sleep(start_delay)
        for turn in itertools.count():
            if time.monotonic() >= deadline:
                break
            text, copies = planned_turn(index, turn)
            sent.append(await self._wechat_message(client, user, openid, text, copies))
            await asyncio.sleep(self.pause)
        return sent

    async def wechat(self, client: httpx.AsyncClient, users: int, seconds: float) -> dict[str, Any]:
        """The WeChat phase: `users` customers for `seconds`; returns its results."""
        warmup = f"oBench{self.run}-warmup"
        user = self._wechat_user(warmup)
        for text in QUESTIONS:
            item = await self._wechat_message(client, user, warmup, text, 1)
            if not item.copies[0].ok:
                raise RuntimeError(f"WeChat warm-up message failed: {item.copies[0].error}")
        started = time.monotonic()
        deadline = started + seconds
        per_user = await asyncio.gather(
            *(
                self._wechat_customer(client, index, deadline, index * self.ramp / users)
                for index in range(users)
            )
        )
        wall = time.monotonic() - started
        await asyncio.sleep(LATE_SENDS_S)
        sent = [item for items in per_user for item in items]
        openids = sorted({item.sender for item in sent})
        pushes: dict[str, list[tuple[float, str]]] = {openid: [] for openid in openids}
        for record in list(self.wechat_api.sent):
            if record.get("touser") in pushes:
                text = str((record.get("text") or {}).get("content", ""))
                pushes[record["touser"]].append((float(record["received_at"]), text))
        trackers = await self._trackers(client, openids, "wechat")
        results = wechat_results(sent, pushes, trackers, wall)
        health = (await client.get(f"{self.rasa_url}/webhooks/wechat/")).json()
        results["undelivered_records"] = health.get("undelivered")
        return results

    # Telegram

    async def _telegram_update(
        self, client: httpx.AsyncClient, chat_id: int, text: str, turn: int, copies: int
    ) -> Sent:
        from fakes.telegram_user import telegram_update

        update_id = next(self.ids)
        update = telegram_update(update_id, chat_id, text=text, message_id=turn + 1)
        headers = {SECRET_HEADER: self.keys.telegram_secret}
        item = Sent(str(chat_id), update_id, time.monotonic(), text=text)
        url = f"{self.rasa_url}{TELEGRAM_PATH}"
        item.copies = list(
            await asyncio.gather(
                *(
                    _timed(lambda: client.post(url, json=update, headers=headers))
                    for _ in range(copies)
                )
            )
        )
        return item

    async def _telegram_chat(
        self,
        client: httpx.AsyncClient,
        chat_id: int,
        index: int,
        deadline: float,
        start_delay: float,
    ) -> list[Sent]:
        sent: list[Sent] = []
        await asyncio.sleep(start_delay)
        for turn in itertools.count():
            if time.monotonic() >= deadline:
                break
            text, copies = planned_turn(index, turn)
            sent.append(await self._telegram_update(client, chat_id, text, turn, copies))
        return sent

    async def telegram(
        self, client: httpx.AsyncClient, chats: int, seconds: float
    ) -> dict[str, Any]:
        """The Telegram phase: `chats` chats for `seconds`; returns its results."""
        base = 7_000_000_000 + secrets.randbelow(10**6) * 1000
        for turn, text in enumerate(QUESTIONS):
            warmup = await self._telegram_update(client, base + 999, text, turn, 1)
            if not warmup.copies[0].ok:
                raise RuntimeError(f"Telegram warm-up update failed: {warmup.copies[0].error}")
        started = time.monotonic()
        deadline = started + seconds
        per_chat = await asyncio.gather(
            *(
                self._telegram_chat(
                    client, base + index, index, deadline, index * self.ramp / chats
                )
                for index in range(chats)
            )
        )
        wall = time.monotonic() - started
        await asyncio.sleep(LATE_SENDS_S)
        sent = [item for items in per_chat for item in items]
        chat_ids = sorted({item.sender for item in sent})
        replies = dict.fromkeys(chat_ids, 0)
        for method, params in list(self.telegram_api.calls):
            chat = str(params.get("chat_id"))
            if method.lower() in ("sendmessage", "sendphoto") and chat in replies:
                replies[chat] += 1
        trackers = await self._trackers(client, chat_ids, "telegram")
        return telegram_results(sent, replies, trackers, wall)

    # Shared

    async def _until(self, done: Callable[[], bool], timeout: float = ANSWER_TIMEOUT_S) -> bool:
        """Polls `done` until it is true (True) or `timeout` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(POLL_S)
        return True

    async def _trackers(
        self, client: httpx.AsyncClient, senders: list[str], channel: str
    ) -> dict[str, TrackerCounts]:
        """Counts from each sender's tracker through Rasa's HTTP API (failures left out).

        Rasa's sender of a platform id is `<channel>:<id>` (e.g. `wechat:<openid>`).
        """
        counts: dict[str, TrackerCounts] = {}
        for sender in senders:
            response = await client.get(
                f"{self.rasa_url}/conversations/{quote(f'{channel}:{sender}', safe=':@')}/tracker",
                params={"token": self.rasa_token, "include_events": "ALL"},
            )
            if response.status_code == 200:
                counts[sender] = TrackerCounts.of(response.json().get("events") or [])
        return counts

    async def measure(
        self, users: int, seconds: float, chats: int, telegram_seconds: float
    ) -> dict[str, Any]:
        """Runs the phases with a non-zero duration; returns their results by channel."""
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        results: dict[str, Any] = {}
        async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, limits=limits) as client:
            await self.check_channels(client)
            if seconds > 0 and users > 0:
                results["wechat"] = await self.wechat(client, users, seconds)
                results["wechat"]["pause_s"] = self.pause
                results["wechat"]["ramp_s"] = self.ramp
            if telegram_seconds > 0 and chats > 0:
                results["telegram"] = await self.telegram(client, chats, telegram_seconds)
        return results


def channel_settings(
    settings: Settings, scratch: Path, keys: Secrets, wechat_url: str, telegram_url: str
) -> Settings:
    """Scratch settings with both channels enabled against the fakes (WeChat in safe mode)."""
    return scratch_settings(settings, scratch).model_copy(
        update={
            "wechat_token": keys.wechat_token,
            "wechat_app_id": keys.app_id,
            "wechat_app_secret": keys.app_secret,
            "wechat_encoding_aes_key": keys.encoding_aes_key,
            "wechat_api_base_url": wechat_url,
            "telegram_token": keys.telegram_token,
            "telegram_secret_token": keys.telegram_secret,
            "telegram_api_base_url": telegram_url,
        }
    )


def run_channels_benchmark(
    settings: Settings,
    seconds: float = 60.0,
    users: int = 20,
    telegram_seconds: float = 60.0,
    chats: int = 20,
    pause: float = 3.0,
    ramp: float = 5.0,
) -> BenchReport:
    """Measures both channels on a fresh stack (trained model reused) on free ports.

    The stack's logs are copied to `var/logs/bench-channels/` when it stops. A phase with
    0 seconds is left out.
    """
    from fakes.telegram_api import FakeTelegramAPI
    from fakes.wechat_api import FakeWeChatAPI

    keys = Secrets.generate()
    model, _ = ensure_model(settings)
    kept_logs = settings.var_dir / "logs" / "bench-channels"
    with (
        tempfile.TemporaryDirectory(prefix="kefu-bench-") as scratch,
        FakeWeChatAPI(keys.app_id, keys.app_secret) as wechat_api,
        FakeTelegramAPI(keys.telegram_token) as telegram_api,
    ):
        run = channel_settings(settings, Path(scratch), keys, wechat_api.url, telegram_api.url)
        upgrade(run.database_url)
        engine = make_engine(run.database_url)
        seed_demo_orders(engine)
        engine.dispose()
        ensure_index(run)
        try:
            with ServiceGroup(kefu_services(run, model), run):
                measured = ChannelRun(
                    run.rasa_url, run.rasa_token, keys, wechat_api, telegram_api, pause, ramp
                )
                results = asyncio.run(measured.measure(users, seconds, chats, telegram_seconds))
        finally:
            shutil.rmtree(kept_logs, ignore_errors=True)
            shutil.copytree(Path(scratch) / "logs", kept_logs, dirs_exist_ok=True)
    report = BenchReport("channels", results, settings.var_dir / "bench" / "channels.json")
    report.rows = rows(results)
    report.write()
    return report


def rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The table's (metric, measured, target) rows for the phases that ran."""
    table: list[tuple[str, str, str]] = []
    wechat = results.get("wechat")
    if wechat:
        table += [
            (
                f"WeChat: {wechat['users']} users, {wechat['seconds']:.0f} s",
                f"{wechat['messages']} msgs",
                "",
            ),
            ("WeChat requests (with retries)", str(wechat["requests"]), ""),
            (
                "WeChat acked within 5 s",
                f"{wechat['acknowledged_within_5s_percent']:.1f} %",
                "100 %",
            ),
            ("WeChat ack p50 (ms)", f"{wechat['ack_p50_ms']:.1f}", ""),
            ("WeChat ack p95 (ms)", f"{wechat['ack_p95_ms']:.1f}", f"<= {TARGET_ACK_P95_MS:.0f}"),
            ("WeChat ack max (ms)", f"{wechat['ack_max_ms']:.1f}", ""),
            ("WeChat answered passively", f"{wechat['passive_percent']:.1f} %", ""),
            ("WeChat answered via CS API", str(wechat["answered_via_customer_service_api"]), ""),
            ("WeChat unanswered", str(wechat["unanswered"]), "0"),
            ("WeChat answer p95 (ms)", f"{wechat['answer_p95_ms']:.1f}", ""),
            ("WeChat duplicate answers", str(wechat["duplicate_answers"]), "0"),
            ("WeChat retries processed", str(wechat["retries_processed"]), "0"),
            ("WeChat errors", str(wechat["errors"]), "0"),
            ("WeChat targets", "met" if wechat["target_met"] else "NOT met", ""),
        ]
    telegram = results.get("telegram")
    if telegram:
        table += [
            (
                f"Telegram: {telegram['chats']} chats, {telegram['seconds']:.0f} s",
                f"{telegram['updates']} updates",
                "",
            ),
            ("Telegram updates/s handled", f"{telegram['updates_per_s']:.1f}", ""),
            ("Telegram p50 (ms)", f"{telegram['p50_ms']:.1f}", ""),
            ("Telegram p95 (ms)", f"{telegram['p95_ms']:.1f}", ""),
            ("Telegram replies sent", str(telegram["replies"]), ""),
            ("Telegram extra replies", str(telegram["extra_replies"]), "0"),
            ("Telegram missing replies", str(telegram["missing_replies"]), "0"),
            ("Telegram retries processed", str(telegram["retries_processed"]), "0"),
            ("Telegram errors", str(telegram["errors"]), "0"),
        ]
    return table
