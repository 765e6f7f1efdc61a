"""Handoff latency: customer -> agent console (WebSocket) and agent -> customer web chat.

Customers are python-socketio clients of the web chat (polling, each in its own threads);
the agent is a desk login (httpx, CSRF) with the console's WebSocket open. Arrival times are
taken with `time.perf_counter` where a message is received and handed to the event loop.
"""

from __future__ import annotations

import asyncio
import json
import queue
import re
import secrets
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import socketio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from bot.accounts import AgentStore
from bot.bench.common import BenchReport, percentile, scratch_settings
from bot.core.db import AgentRole, make_engine, upgrade
from bot.core.processes import ServiceGroup, kefu_services
from bot.core.settings import Settings
from bot.core.training import ensure_model
from bot.knowledge.index import ensure_index
from bot.service.orders import seed_demo_orders
from bot.web.deps import SESSION_COOKIE

T = TypeVar("T")

USERNAME = "bench.agent"
DISPLAY_NAME = "压测客服 Bench"
TARGET_P95_MS = 500.0
SETUP_TIMEOUT = 60.0
HANDOFF_REPLY = "转接人工客服"
"""Part of the bot's answer once the handoff is made (utter_handoff_* in domain.yml)."""
CLAIMED_NOTICE = "已接入"
"""Part of the notice the customer gets when the agent claims (bot/handoff/service.py)."""


@dataclass
class Stack:
    """Where the measured stack answers, and its app database."""

    web_url: str
    rasa_url: str
    database_url: str


@dataclass
class Leg:
    """Latencies of one direction, and what did not arrive."""

    latencies: list[float] = field(default_factory=list)
    timeouts: int = 0
    errors: list[str] = field(default_factory=list)

    def merge(self, other: Leg) -> None:
        """Adds `other`'s results to these."""
        self.latencies += other.latencies
        self.timeouts += other.timeouts
        self.errors += other.errors


class Inbox:
    """Waiters for a message text, resolved with the `perf_counter` time it arrived."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._waiting: list[tuple[Callable[[str], bool], asyncio.Future[float]]] = []

    def expect(self, match: Callable[[str], bool]) -> asyncio.Future[float]:
        """A future for the next text `match` accepts (register before causing it)."""
        future: asyncio.Future[float] = self.loop.create_future()
        self._waiting.append((match, future))
        return future

    def deliver(self, text: str, at: float) -> None:
        """Resolves the waiters `text` matches (call in the event loop)."""
        for entry in list(self._waiting):
            match, future = entry
            if future.done():
                self._waiting.remove(entry)
            elif match(text):
                future.set_result(at)
                self._waiting.remove(entry)

    def deliver_threadsafe(self, text: str, at: float) -> None:
        """`deliver` from another thread."""
        self.loop.call_soon_threadsafe(self.deliver, text, at)


class Customer:
    """A web-chat customer over Rasa's socket.io channel (blocking; run in a thread)."""

    def __init__(self, rasa_url: str, inbox: Inbox, web_url: str) -> None:
        self.rasa_url = rasa_url
        self.web_url = web_url
        self.inbox = inbox
        self.session_id = ""  # the sender the web service's session names (set by connect)
        self.token = ""
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("bot_uttered", self._uttered)

    def _uttered(self, data: Any) -> None:
        at = time.perf_counter()
        text = data.get("text") if isinstance(data, dict) else None
        self.inbox.deliver_threadsafe(str(text or ""), at)

    def connect(self, timeout: float) -> None:
        """Gets a session token (as the chat page does), connects and starts the session.

        Raises if the session is not confirmed.
        """
        session = httpx.post(f"{self.web_url}/chat/session", timeout=timeout)
        session.raise_for_status()
        self.token, self.session_id = session.json()["token"], session.json()["sender"]
        confirmed: queue.Queue[Any] = queue.Queue()
        self.sio.on("session_confirm", confirmed.put)
        self.sio.connect(self.rasa_url, socketio_path="/socket.io", transports=["polling"])
        self.sio.emit("session_request", {"session_id": self.token})
        answer = confirmed.get(timeout=timeout)
        if not isinstance(answer, dict) or answer.get("sender") != self.session_id:
            raise RuntimeError("socket.io confirmed another session")

    def say(self, text: str) -> float:
        """Sends `text`; returns the `perf_counter` time just before it was sent."""
        started = time.perf_counter()
        self.sio.emit("user_uttered", {"message": text, "session_id": self.token})
        return started

    def disconnect(self, wait: float = 2.0) -> None:
        """Closes the connection without waiting out the pending long poll.

        Under polling, `socketio.Client.disconnect` returns only when the pending GET does,
        which Rasa's server ends at its next ping (about 30 s). It runs in a daemon thread;
        the close packets are out well within `wait` seconds.
        """
        thread = threading.Thread(target=self.sio.disconnect, daemon=True)
        thread.start()
        thread.join(wait)


class Desk:
    """The bench agent: an HTTP session with its CSRF token, and the console's WebSocket."""

    def __init__(self, web_url: str, inbox: Inbox, timeout: float) -> None:
        self.web_url = web_url.rstrip("/")
        self.inbox = inbox
        self.http = httpx.AsyncClient(base_url=self.web_url, timeout=timeout)
        self.csrf = ""
        self.socket: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self.closed = ""
        """Why the WebSocket closed, if it did."""

    async def log_in(self, username: str, password: str) -> None:
        """Signs in through the login form, then reads the page's CSRF token."""
        form = (await self.http.get("/desk/login")).text
        found = re.search(r'name="csrf_token" value="([^"]+)"', form)
        if not found:
            raise RuntimeError("No CSRF field on /desk/login")
        response = await self.http.post(
            "/desk/login",
            data={"csrf_token": found.group(1), "username": username, "password": password},
        )
        if response.status_code != 303:
            raise RuntimeError(f"Desk login failed ({response.status_code})")
        page = (await self.http.get("/desk")).text
        token = re.search(r'name="csrf-token" content="([^"]+)"', page)
        if not token:
            raise RuntimeError("No CSRF token on /desk")
        self.csrf = token.group(1)

    async def open_socket(self) -> None:
        """Opens /desk/ws with the session cookie and the desk's origin; starts reading."""
        parts = urlsplit(self.web_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        cookie = self.http.cookies.get(SESSION_COOKIE, path="/desk") or ""
        self.socket = await connect(
            f"{scheme}://{parts.netloc}/desk/ws",
            origin=Origin(f"{parts.scheme}://{parts.netloc}"),
            additional_headers={"Cookie": f"{SESSION_COOKIE}={cookie}"},
            proxy=None,
        )
        self._reader = asyncio.create_task(self._read(self.socket))

    async def _read(self, socket: ClientConnection) -> None:
        try:
            async for raw in socket:
                at = time.perf_counter()
                event = json.loads(raw)
                if event.get("type") == "message":
                    self.inbox.deliver(str(event["message"].get("text") or ""), at)
        except ConnectionClosed as closed:
            self.closed = f"desk WebSocket closed: {closed}"
        else:
            self.closed = f"desk WebSocket closed: {socket.close_code} {socket.close_reason}"

    async def get(self, path: str) -> Any:
        """GET a desk API path; raises on a non-200 answer."""
        response = await self.http.get(path)
        response.raise_for_status()
        return response.json()

    async def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """POST JSON with the CSRF header; raises on a non-200 answer."""
        response = await self.http.post(path, json=body or {}, headers={"X-CSRF-Token": self.csrf})
        if response.status_code != 200:
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:200]}")
        return response.json()

    async def close(self) -> None:
        """Closes the WebSocket and the HTTP client."""
        if self.socket is not None:
            await self.socket.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        await self.http.aclose()


def bench_agent(database_url: str) -> str:
    """Creates (or resets) the bench agent account; returns a fresh password."""
    password = secrets.token_urlsafe(18)
    engine = make_engine(database_url)
    try:
        store = AgentStore(engine)
        if store.get(USERNAME) is None:
            store.create(USERNAME, DISPLAY_NAME, AgentRole.agent, password)
        else:
            store.set_password(USERNAME, password)
            store.set_active(USERNAME, True)
    finally:
        engine.dispose()
    return password


async def _arrival(future: asyncio.Future[float], deadline: float) -> float | None:
    """The arrival time, or None when `deadline` (perf_counter) passes first."""
    try:
        return await asyncio.wait_for(future, max(0.0, deadline - time.perf_counter()))
    except TimeoutError:
        return None


class HandoffRun:
    """Ten (or N) customers in handoff with the bench agent, measured both ways."""

    def __init__(
        self, stack: Stack, handoffs: int, each: int, timeout: float, pause: float = 0.0
    ) -> None:
        self.stack = stack
        self.handoffs = handoffs
        self.each = each
        self.timeout = timeout
        self.pause = pause
        self.run = uuid.uuid4().hex[:6]
        self.pool = ThreadPoolExecutor(max_workers=max(4, handoffs * 2))

    async def _blocking(self, call: Callable[[], T]) -> T:
        """Runs a blocking call (socket.io) in this run's threads."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, call)

    async def _handoff_for(self, desk: Desk, customer: Customer) -> int:
        """Asks for a person; returns the id of the handoff the desk lists for the session."""
        reply = customer.inbox.expect(lambda text: HANDOFF_REPLY in text)
        await self._blocking(lambda: customer.say("转人工"))
        if await _arrival(reply, time.perf_counter() + SETUP_TIMEOUT) is None:
            raise RuntimeError(f"No handoff reply to 转人工 within {SETUP_TIMEOUT:.0f}s")
        deadline = time.perf_counter() + SETUP_TIMEOUT
        while time.perf_counter() < deadline:
            for handoff in await desk.get("/desk/api/handoffs"):
                if handoff["conversation_id"] == customer.session_id:
                    return int(handoff["id"])
            await asyncio.sleep(0.2)
        raise RuntimeError(f"The desk lists no handoff for {customer.session_id}")

    async def _claim(self, desk: Desk, customer: Customer, handoff_id: int) -> None:
        notice = customer.inbox.expect(lambda text: CLAIMED_NOTICE in text)
        await desk.post(f"/desk/api/handoffs/{handoff_id}/claim")
        if await _arrival(notice, time.perf_counter() + SETUP_TIMEOUT) is None:
            raise RuntimeError(f"Handoff {handoff_id}: the customer never heard the claim")

    @staticmethod
    async def _resolve(desk: Desk, handoff_id: int) -> None:
        """Resolves the handoff, claiming it first if the bench agent does not own it."""
        try:
            await desk.post(f"/desk/api/handoffs/{handoff_id}/resolve")
        except RuntimeError:
            await desk.post(f"/desk/api/handoffs/{handoff_id}/claim")
            await desk.post(f"/desk/api/handoffs/{handoff_id}/resolve")

    async def _converse(
        self, desk: Desk, customer: Customer, handoff_id: int, index: int
    ) -> tuple[Leg, Leg]:
        """Alternates customer message and agent reply; returns (to desk, to customer).

        With a pause, conversations start staggered and wait `pause` seconds between turns.
        """
        to_desk, to_customer = Leg(), Leg()
        await asyncio.sleep(self.pause * index / self.handoffs)
        for turn in range(self.each):
            if turn:
                await asyncio.sleep(self.pause)
            if turn % 2 == 0:
                text = f"客户消息 bench {self.run}-{index}-{turn}"
                arrived = desk.inbox.expect(text.__eq__)
                try:
                    sent = await self._blocking(partial(customer.say, text))
                except socketio.exceptions.SocketIOError as error:
                    arrived.cancel()
                    to_desk.errors.append(f"handoff {handoff_id}: {error!r}")
                    continue
                at = await _arrival(arrived, sent + self.timeout)
                leg = to_desk
            else:
                text = f"客服回复 bench {self.run}-{index}-{turn}"
                arrived = customer.inbox.expect(text.__eq__)
                sent = time.perf_counter()
                try:
                    await desk.post(f"/desk/api/handoffs/{handoff_id}/messages", {"text": text})
                except (RuntimeError, httpx.HTTPError) as error:
                    arrived.cancel()
                    to_customer.errors.append(f"handoff {handoff_id}: {error}")
                    continue
                at = await _arrival(arrived, sent + self.timeout)
                leg = to_customer
            if at is None:
                leg.timeouts += 1
            else:
                leg.latencies.append(at - sent)
        return to_desk, to_customer

    async def measure(self, password: str) -> dict[str, Any]:
        """Sets up the handoffs, measures, resolves them; returns the results."""
        loop = asyncio.get_running_loop()
        desk = Desk(self.stack.web_url, Inbox(loop), self.timeout)
        customers = [
            Customer(self.stack.rasa_url, Inbox(loop), self.stack.web_url)
            for _ in range(self.handoffs)
        ]
        connected: list[Customer] = []
        ids: list[int] = []
        try:
            started = time.perf_counter()
            await desk.log_in(USERNAME, password)
            await desk.open_socket()
            for customer in customers:
                await self._blocking(partial(customer.connect, SETUP_TIMEOUT))
                connected.append(customer)
            found = await asyncio.gather(
                *(self._handoff_for(desk, c) for c in customers), return_exceptions=True
            )
            ids = [i for i in found if isinstance(i, int)]
            for failure in found:
                if isinstance(failure, BaseException):
                    raise failure
            await asyncio.gather(
                *(self._claim(desk, c, i) for c, i in zip(customers, ids, strict=True))
            )
            setup = time.perf_counter() - started
            started = time.perf_counter()
            legs = await asyncio.gather(
                *(
                    self._converse(desk, c, i, n)
                    for n, (c, i) in enumerate(zip(customers, ids, strict=True))
                )
            )
            wall = time.perf_counter() - started
        finally:
            resolved = await asyncio.gather(
                *(self._resolve(desk, i) for i in ids), return_exceptions=True
            )
            await asyncio.gather(*(self._blocking(c.disconnect) for c in connected))
            socket_closed = desk.closed  # before our own close
            await desk.close()
            self.pool.shutdown(wait=False)
        to_desk, to_customer = Leg(), Leg()
        for desk_leg, customer_leg in legs:
            to_desk.merge(desk_leg)
            to_customer.merge(customer_leg)
        return _results(
            to_desk,
            to_customer,
            {
                "handoffs": self.handoffs,
                "messages_per_handoff": self.each,
                "timeout_s": self.timeout,
                "setup_seconds": round(setup, 1),
                "pause_s": self.pause,
                "measure_seconds": round(wall, 1),
                "messages_per_s": round(self.handoffs * self.each / wall, 1),
                "resolved": sum(1 for r in resolved if not isinstance(r, BaseException)),
                "desk_socket_closed_early": socket_closed,
            },
        )


def _summary(prefix: str, leg: Leg, sent: int) -> dict[str, Any]:
    ms = [x * 1000 for x in leg.latencies]
    return {
        f"{prefix}_sent": sent,
        f"{prefix}_delivered": len(ms),
        f"{prefix}_timeouts": leg.timeouts,
        f"{prefix}_errors": len(leg.errors),
        f"{prefix}_p50_ms": round(percentile(ms, 50), 1),
        f"{prefix}_p95_ms": round(percentile(ms, 95), 1),
        f"{prefix}_max_ms": round(max(ms, default=0.0), 1),
    }


def _results(to_desk: Leg, to_customer: Leg, run: dict[str, Any]) -> dict[str, Any]:
    both = Leg()
    both.merge(to_desk)
    both.merge(to_customer)
    sent_desk = len(to_desk.latencies) + to_desk.timeouts + len(to_desk.errors)
    sent_customer = len(to_customer.latencies) + to_customer.timeouts + len(to_customer.errors)
    results: dict[str, Any] = {
        **run,
        **_summary("customer_to_desk", to_desk, sent_desk),
        **_summary("agent_to_customer", to_customer, sent_customer),
        **_summary("combined", both, sent_desk + sent_customer),
        "target_p95_ms": TARGET_P95_MS,
    }
    failures = both.timeouts + len(both.errors)
    results["target_met"] = bool(
        failures == 0
        and both.latencies
        and max(results["customer_to_desk_p95_ms"], results["agent_to_customer_p95_ms"])
        <= TARGET_P95_MS
    )
    results["error_samples"] = both.errors[:5]
    return results


def _measure(
    stack: Stack, handoffs: int, messages: int, timeout: float, pause: float
) -> dict[str, Any]:
    password = bench_agent(stack.database_url)
    each = max(2, messages // handoffs)
    return asyncio.run(HandoffRun(stack, handoffs, each, timeout, pause).measure(password))


def run_handoff_benchmark(
    settings: Settings,
    handoffs: int,
    messages: int,
    timeout: float = 10.0,
    web_url: str = "",
    rasa_url: str = "",
    pause: float = 0.0,
) -> BenchReport:
    """Measures on a running stack, or on a fresh one (trained model reused) on free ports.

    A running stack is `web_url` and `rasa_url`; its app database is `settings.database_url`
    (the bench agent account is created there). `pause` is each conversation's wait between
    its messages (0: back to back, the heaviest load).
    """
    if bool(web_url) != bool(rasa_url):
        raise ValueError("Give both --web-url and --rasa-url, or neither.")
    if web_url:
        stack = Stack(web_url.rstrip("/"), rasa_url.rstrip("/"), settings.database_url)
        results = _measure(stack, handoffs, messages, timeout, pause)
    else:
        with tempfile.TemporaryDirectory(prefix="kefu-bench-") as scratch:
            model, _ = ensure_model(settings)
            run = scratch_settings(settings, Path(scratch))
            upgrade(run.database_url)
            seed_demo_orders(make_engine(run.database_url))
            ensure_index(run)
            with ServiceGroup(kefu_services(run, model), run):
                stack = Stack(run.web_url.rstrip("/"), run.rasa_url, run.database_url)
                results = _measure(stack, handoffs, messages, timeout, pause)
    report = BenchReport("handoff", results, settings.var_dir / "bench" / "handoff.json")
    report.rows = _rows(results)
    report.write()
    return report


def _rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    target = f"<= {TARGET_P95_MS:.0f}"
    rows: list[tuple[str, str, str]] = []
    for prefix, label in (
        ("customer_to_desk", "customer -> desk WS"),
        ("agent_to_customer", "agent -> customer chat"),
        ("combined", "combined"),
    ):
        rows += [
            (f"{label} p50 (ms)", f"{results[f'{prefix}_p50_ms']:.1f}", ""),
            (f"{label} p95 (ms)", f"{results[f'{prefix}_p95_ms']:.1f}", target),
            (f"{label} max (ms)", f"{results[f'{prefix}_max_ms']:.1f}", ""),
            (
                f"{label} delivered",
                f"{results[f'{prefix}_delivered']}/{results[f'{prefix}_sent']}",
                "all",
            ),
        ]
    rows += [
        (f"timeouts ({results['timeout_s']:.0f} s)", str(results["combined_timeouts"]), "0"),
        ("errors", str(results["combined_errors"]), "0"),
        (f"{results['handoffs']} concurrent handoffs", f"{results['measure_seconds']:.1f} s", ""),
        ("pause between messages (s)", f"{results['pause_s']:.1f}", ""),
        ("messages/s", f"{results['messages_per_s']:.1f}", ""),
        ("target p95 <= 500 ms", "met" if results["target_met"] else "NOT met", ""),
    ]
    return rows
