"""`rasa_addons.resilience` on a real (tiny) Rasa model: the apology instead of silence, the spool.

The model is trained once for the module (rules only, about 20 s with Rasa's imports). The
action server is a real HTTP server on a loopback port (or a closed port), the tracker store
Rasa's SQL store on a SQLite file, the lock store Rasa's Redis store against a real
`redis-server` (skipped when it is not installed).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from aiohttp import web
from rasa.core.agent import Agent
from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.core.lock_store import InMemoryLockStore, LockStore, RedisLockStore
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from connectors.channel_state import SqliteChannelState
from connectors.wechat.channel import WeChatInput, WeChatSettings
from connectors.wechat.text import SYSTEM_BUSY as WECHAT_BUSY
from connectors.wechat.webhook import WeChatWebhook
from fakes.wechat_api import FakeWeChatAPI
from fakes.wechat_user import WeChatUser
from rasa_addons import resilience
from rasa_addons.resilience import SYSTEM_BUSY, Replayer, TrackerStoreUnavailable
from rasa_addons.spool import Spool, spool_path

ROOT = Path(__file__).resolve().parents[3]
slow = pytest.mark.slow
"""Trains a tiny Rasa model; still part of `make test-unit`."""

BUSY = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))["responses"][SYSTEM_BUSY]
BUSY_TEXT = {v["condition"][0]["value"]: v["text"] for v in BUSY}

DOMAIN = {
    "version": "3.1",
    "session_config": {"session_expiration_time": 60, "carry_over_slots_to_new_session": True},
    "intents": ["greet", "ask_custom", "chat"],
    "entities": ["language"],
    "slots": {
        "language": {
            "type": "categorical",
            "values": ["zh", "en"],
            "initial_value": "zh",
            "influence_conversation": False,
            "mappings": [{"type": "from_entity", "entity": "language"}],
        }
    },
    "actions": ["action_custom", "action_session_start"],
    "responses": {
        "utter_greet": [{"text": "你好！"}],
        "utter_chat": [{"text": "好的。"}],
        SYSTEM_BUSY: BUSY,
    },
}
RULES = {
    "version": "3.1",
    "rules": [
        {"rule": "greet", "steps": [{"intent": "greet"}, {"action": "utter_greet"}]},
        {"rule": "chat", "steps": [{"intent": "chat"}, {"action": "utter_chat"}]},
        {"rule": "custom", "steps": [{"intent": "ask_custom"}, {"action": "action_custom"}]},
    ],
}
NLU = {
    "version": "3.1",
    "nlu": [
        {"intent": "greet", "examples": "- hello\n- hi\n"},
        {"intent": "ask_custom", "examples": "- custom\n- order\n"},
        {"intent": "chat", "examples": "- chat\n- talk\n"},
    ],
}
CONFIG = """\
recipe: default.v1
language: en
assistant_id: resilience-test
pipeline:
  - name: WhitespaceTokenizer
  - name: KeywordIntentClassifier
policies:
  - name: RulePolicy
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rasa.model_training import train

    folder = tmp_path_factory.mktemp("model")
    (folder / "domain.yml").write_text(yaml.safe_dump(DOMAIN, allow_unicode=True), "utf-8")
    (folder / "rules.yml").write_text(yaml.safe_dump(RULES), "utf-8")
    (folder / "nlu.yml").write_text(yaml.safe_dump(NLU), "utf-8")
    (folder / "config.yml").write_text(CONFIG, "utf-8")
    result = train(
        str(folder / "domain.yml"),
        str(folder / "config.yml"),
        [str(folder / "rules.yml"), str(folder / "nlu.yml")],
        output=str(folder),
        fixed_model_name="tiny",
    )
    assert result.code == 0 and result.model, "training the tiny model failed"
    return Path(result.model)


class ActionServer:
    """A real action server on a loopback port; `mode` says how it answers."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/webhook"
        self.mode = "ok"
        self.calls: list[str] = []
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append(body["next_action"])
        if self.mode == "error":
            return web.json_response({"error": "boom"}, status=500)
        if self.mode == "slow":
            await asyncio.sleep(5)
        if body["next_action"] == "action_session_start":
            events = [{"event": "session_started"}, {"event": "action", "name": "action_listen"}]
            return web.json_response({"events": events, "responses": []})
        return web.json_response({"events": [], "responses": [{"text": "查到了：已发货。"}]})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/webhook", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@pytest.fixture(autouse=True)
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Replayer:
    """The patches, a short action timeout and a fresh spool per test."""
    resilience.install()
    monkeypatch.setenv(resilience.ACTION_TIMEOUT_VARIABLE, "1")
    replayer = Replayer(Spool(tmp_path / "spool.db"))
    monkeypatch.setattr(resilience, "_replayer", replayer)
    return replayer


@pytest.fixture
async def actions() -> AsyncIterator[ActionServer]:
    server = ActionServer()
    await server.start()
    yield server
    await server.stop()


def sqlite_store(path: Path, kind: str = "rasa") -> SQLTrackerStore:
    """Rasa's SQL tracker store, or Kefu's incremental one (endpoints.yml's), on `path`."""
    if kind == "incremental":
        tracker_store = pytest.importorskip("rasa_addons.tracker_store")
        return tracker_store.IncrementalSQLTrackerStore(host=f"sqlite:///{path}")  # type: ignore[no-any-return]
    return SQLTrackerStore(dialect="sqlite", db=str(path))


@pytest.fixture(params=["rasa", "incremental"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Which SQL tracker store a tracker-store test runs on."""
    return str(request.param)


def load(
    model: Path,
    action_url: str,
    tracker_db: Path | None = None,
    lock_store: LockStore | None = None,
    store_kind: str = "rasa",
) -> Agent:
    return Agent.load(
        model,
        tracker_store=sqlite_store(tracker_db, store_kind) if tracker_db else None,
        lock_store=lock_store or InMemoryLockStore(),
        action_endpoint=EndpointConfig(url=action_url),
    )


async def say(agent: Agent, sender: str, text: str) -> list[dict[str, Any]]:
    output = CollectingOutputChannel()
    await agent.handle_message(UserMessage(text, output, sender, input_channel="rest"))
    return output.messages


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [str(message.get("text")) for message in messages]


async def tracker_of(agent: Agent, sender: str) -> DialogueStateTracker:
    tracker = await agent.tracker_store.retrieve(sender)
    assert tracker is not None
    return tracker


def actions_after_last_user(tracker: DialogueStateTracker) -> list[str]:
    events = list(tracker.events)
    last_user = max(i for i, e in enumerate(events) if isinstance(e, UserUttered))
    return [str(e.action_name) for e in events[last_user:] if isinstance(e, ActionExecuted)]


def break_database(path: Path) -> None:
    """Makes the SQLite file unopenable: it (and its WAL) moved aside, a folder in its place."""
    for suffix in ("", "-wal", "-shm"):
        part = Path(f"{path}{suffix}")
        if part.exists():
            part.rename(Path(f"{path}{suffix}.aside"))
    path.mkdir()


def restore_database(path: Path) -> None:
    path.rmdir()
    for suffix in ("", "-wal", "-shm"):
        aside = Path(f"{path}{suffix}.aside")
        if aside.exists():
            aside.rename(Path(f"{path}{suffix}"))


class PushingChannel(InputChannel):
    """An input channel that can send outside a request (like socket.io or WeChat)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self.output = CollectingOutputChannel()

    def name(self) -> str:  # type: ignore[override]  # an instance's name, for the test
        return self._name

    def get_output_channel(self) -> CollectingOutputChannel:
        return self.output


def user_texts(tracker: DialogueStateTracker) -> list[str]:
    return [str(e.text) for e in tracker.events if isinstance(e, UserUttered)]


def bot_texts(tracker: DialogueStateTracker) -> list[str]:
    return [str(e.text) for e in tracker.events if isinstance(e, BotUttered)]


# ---------------------------------------------------------------- the action server fails

# ---------------------------------------------------------------- the action server fails


@slow
async def test_action_server_down_gets_the_apology_and_the_turn_ends(
    model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    agent = load(model, f"http://127.0.0.1:{free_port()}/webhook", tmp_path / "tracker.db")

    # the custom session start fails too: Rasa's default one starts the session, no apology
    assert texts(await say(agent, "c1", "/greet")) == ["你好！"]

    answer = await say(agent, "c1", "/ask_custom")
    assert texts(answer) == [BUSY_TEXT["zh"]]
    assert answer[0]["buttons"] == [{"title": "转人工", "payload": "/ask_human"}]
    tracker = await tracker_of(agent, "c1")
    assert actions_after_last_user(tracker) == [SYSTEM_BUSY, "action_listen"]

    # the conversation goes on; the apology follows the conversation's language
    assert texts(await say(agent, "c1", "/greet")) == ["你好！"]
    assert texts(await say(agent, "c1", '/ask_custom{"language": "en"}')) == [BUSY_TEXT["en"]]

    # each failure is logged once, without Rasa's own error line and traceback
    logged = [r.getMessage() for r in caplog.records]
    failed = [m.split()[1] for m in logged if m.startswith("action_failed")]
    assert failed == ["action=action_session_start", "action=action_custom", "action=action_custom"]
    assert not [m for m in logged if m.startswith("Failed to run custom action")]
    assert not [m for m in logged if "Encountered an exception while running action" in m]


@slow
async def test_errors_and_timeouts_get_the_apology_then_the_server_answers_again(
    model: Path, actions: ActionServer
) -> None:
    agent = load(model, actions.url)
    assert texts(await say(agent, "c2", "/greet")) == ["你好！"]

    actions.mode = "error"
    assert texts(await say(agent, "c2", "/ask_custom")) == [BUSY_TEXT["zh"]]

    actions.mode = "slow"  # answers after 5 s; KEFU_ACTION_TIMEOUT_SECONDS=1
    started = time.monotonic()
    assert texts(await say(agent, "c2", "/ask_custom")) == [BUSY_TEXT["zh"]]
    assert time.monotonic() - started < 3

    actions.mode = "ok"
    assert texts(await say(agent, "c2", "/ask_custom")) == ["查到了：已发货。"]
    assert actions.calls == ["action_session_start"] + ["action_custom"] * 3


@slow
async def test_an_action_server_that_stops_mid_conversation(
    model: Path, actions: ActionServer
) -> None:
    agent = load(model, actions.url)
    assert texts(await say(agent, "c3", "/ask_custom")) == ["查到了：已发货。"]
    await actions.stop()
    assert texts(await say(agent, "c3", "/ask_custom")) == [BUSY_TEXT["zh"]]
    await actions.start()
    assert texts(await say(agent, "c3", "/ask_custom")) == ["查到了：已发货。"]


# ---------------------------------------------------------------- the tracker store fails


@slow
async def test_an_unreachable_tracker_store_spools_and_replays_in_order(
    model: Path, actions: ActionServer, installed: Replayer, tmp_path: Path, store_kind: str
) -> None:
    database = tmp_path / "tracker.db"
    agent = load(model, actions.url, database, store_kind=store_kind)
    assert texts(await say(agent, "c4", "/greet")) == ["你好！"]

    break_database(database)
    try:
        assert texts(await say(agent, "c4", "/chat")) == [BUSY_TEXT["zh"]]
        assert texts(await say(agent, "c4", "hello there")) == [BUSY_TEXT["en"]]
        assert texts(await say(agent, "c4", "/ask_custom")) == [BUSY_TEXT["zh"]]
        assert installed.spool.waiting("c4") == 3
        await installed.replay_all(agent, [])  # still down: nothing replayed, nothing lost
        assert installed.spool.waiting("c4") == 3
        with pytest.raises(TrackerStoreUnavailable):
            await agent.tracker_store.retrieve("c4")
    finally:
        restore_database(database)

    channel = PushingChannel("rest")
    await installed.replay_all(agent, [channel])
    assert installed.spool.waiting() == 0
    assert texts(channel.output.messages) == ["好的。", "你好！", "查到了：已发货。"]
    tracker = await tracker_of(agent, "c4")
    assert user_texts(tracker) == ["/greet", "/chat", "hello there", "/ask_custom"]
    replayed = [e for e in tracker.events if isinstance(e, UserUttered)][1:]
    assert all(resilience.SPOOLED_AT_KEY in (e.metadata or {}) for e in replayed)
    assert texts(await say(agent, "c4", "/chat")) == ["好的。"]


@slow
async def test_a_new_message_first_replays_what_waits(
    model: Path, actions: ActionServer, installed: Replayer, tmp_path: Path, store_kind: str
) -> None:
    database = tmp_path / "tracker.db"
    agent = load(model, actions.url, database, store_kind=store_kind)
    assert texts(await say(agent, "c5", "/greet")) == ["你好！"]
    break_database(database)
    assert texts(await say(agent, "c5", "/chat")) == [BUSY_TEXT["zh"]]
    restore_database(database)
    # the waiting message is answered before the new one, on the new message's channel
    assert texts(await say(agent, "c5", "/ask_custom")) == ["好的。", "查到了：已发货。"]
    assert user_texts(await tracker_of(agent, "c5")) == ["/greet", "/chat", "/ask_custom"]
    assert installed.spool.waiting() == 0


@slow
async def test_a_failed_save_keeps_the_answered_turn_without_answering_twice(
    model: Path, actions: ActionServer, installed: Replayer, tmp_path: Path, store_kind: str
) -> None:
    database = tmp_path / "tracker.db"
    agent = load(model, actions.url, database, store_kind=store_kind)
    assert texts(await say(agent, "c6", "/greet")) == ["你好！"]
    with sqlite3.connect(database) as connection:
        connection.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON events "
            "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
        )
    # read works, the save fails: the customer has the answer, the turn waits in the spool
    assert texts(await say(agent, "c6", "/ask_custom")) == ["查到了：已发货。"]
    assert installed.spool.waiting("c6") == 1
    with sqlite3.connect(database) as connection:
        connection.execute("DROP TRIGGER refuse")

    channel = PushingChannel("rest")
    await installed.replay_all(agent, [channel])
    assert channel.output.messages == []  # stored, not answered again
    assert actions.calls.count("action_custom") == 1  # nor run again
    tracker = await tracker_of(agent, "c6")
    assert user_texts(tracker) == ["/greet", "/ask_custom"]
    assert bot_texts(tracker) == ["你好！", "查到了：已发货。"]
    assert texts(await say(agent, "c6", "/chat")) == ["好的。"]


@slow
async def test_the_server_replay_loop_replays_by_itself_and_stops(
    model: Path, actions: ActionServer, installed: Replayer, tmp_path: Path
) -> None:
    database = tmp_path / "tracker.db"
    agent = load(model, actions.url, database)
    assert texts(await say(agent, "c8", "/greet")) == ["你好！"]
    channel = PushingChannel("rest")
    app = SimpleNamespace(ctx=SimpleNamespace(agent=agent, input_channels=[channel]))
    task = asyncio.create_task(installed.run(app))  # type: ignore[arg-type]  # Sanic's ctx
    try:
        break_database(database)
        assert texts(await say(agent, "c8", "/chat")) == [BUSY_TEXT["zh"]]
        await asyncio.sleep(0.5)  # the loop tries, fails, waits
        restore_database(database)
        deadline = time.monotonic() + 10
        while not channel.output.messages and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert texts(channel.output.messages) == ["好的。"]
    finally:
        started = time.monotonic()
        await installed.stop(task)
    assert task.done() and not task.cancelled() and time.monotonic() - started < 2


# ---------------------------------------------------------------- the lock store fails


@pytest.fixture
def redis_port(tmp_path: Path) -> Iterator[int]:
    """A free port; `start_redis` starts a real redis-server on it (stopped after the test)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    yield port
    for pid_file in tmp_path.glob("redis-*.pid"):
        subprocess.run(["kill", pid_file.read_text().strip()], check=False)


def start_redis(port: int, folder: Path) -> None:
    command = [
        "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", "--dir", str(folder), "--daemonize", "yes",
        "--pidfile", str(folder / f"redis-{port}.pid"),
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as connection:
                connection.sendall(b"PING\r\n")
                if connection.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("redis-server did not start")


@slow
async def test_an_unreachable_lock_store_spools_and_replays(
    model: Path, actions: ActionServer, installed: Replayer, tmp_path: Path, redis_port: int
) -> None:
    lock_store = RedisLockStore(host="127.0.0.1", port=redis_port, socket_timeout=1)
    agent = load(model, actions.url, tmp_path / "tracker.db", lock_store)
    assert texts(await say(agent, "c7", "/chat")) == [BUSY_TEXT["zh"]]
    assert installed.spool.waiting("c7") == 1

    await asyncio.to_thread(start_redis, redis_port, tmp_path)
    channel = PushingChannel("rest")
    await installed.replay_all(agent, [channel])
    assert texts(channel.output.messages) == ["好的。"]
    assert user_texts(await tracker_of(agent, "c7")) == ["/chat"]
    assert texts(await say(agent, "c7", "/greet")) == ["你好！"]


# ---------------------------------------------------------------- WeChat: 5 seconds, never silence

WECHAT_TOKEN = "kefu-unit-token"
WECHAT_APP_ID = "wx49f0ab532d5d035a"
WECHAT_SECRET = "kefu-unit-secret"
OPENID = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"


@pytest.fixture
def wechat_api() -> Iterator[FakeWeChatAPI]:
    with FakeWeChatAPI(WECHAT_APP_ID, WECHAT_SECRET) as api:
        yield api


def wechat_channel(tmp_path: Path, api: FakeWeChatAPI, passive: float = 1.0) -> WeChatInput:
    settings = WeChatSettings(
        token=WECHAT_TOKEN,
        app_id=WECHAT_APP_ID,
        app_secret=WECHAT_SECRET,
        api_base_url=api.url,
        passive_reply_seconds=passive,
    )
    state = SqliteChannelState(tmp_path / "channels.db")
    return WeChatInput(settings, state=state, retry_delays=(0.01,))


async def wechat_post(
    webhook: WeChatWebhook, text: str, msg_id: int, customer: WeChatUser | None = None
) -> dict[str, str] | None:
    """WeChat's POST of a text message; the passive reply (None for `success`)."""
    customer = customer or WeChatUser(WECHAT_TOKEN, WECHAT_APP_ID, None, OPENID)
    query, body = customer.signed_query(customer.text_xml(text, msg_id))
    reply = await webhook.receive(query, body, str(len(body)))
    assert reply.status == 200
    return customer.read_reply(reply.body.encode(), query)


@slow
async def test_wechat_gets_the_apology_in_time_and_the_answer_after_the_replay(
    model: Path,
    actions: ActionServer,
    installed: Replayer,
    tmp_path: Path,
    store_kind: str,
    wechat_api: FakeWeChatAPI,
) -> None:
    database = tmp_path / "tracker.db"
    agent = load(model, actions.url, database, store_kind=store_kind)
    channel = wechat_channel(tmp_path, wechat_api)
    webhook = channel.webhook(agent.handle_message)
    reply = await wechat_post(webhook, "/greet", 1)
    assert reply is not None and reply["Content"] == "你好！"

    break_database(database)
    started = time.monotonic()
    reply = await wechat_post(webhook, "/chat", 2)
    assert time.monotonic() - started < 1.0
    assert reply is not None and reply["Content"].startswith(BUSY_TEXT["zh"])
    assert "1. 转人工" in reply["Content"]  # the button, as a numbered option
    restore_database(database)

    await installed.replay_all(agent, [channel])
    assert wechat_api.texts_to(OPENID) == ["好的。"]  # pushed: the request is long over
    assert user_texts(await tracker_of(agent, f"wechat:{OPENID}")) == ["/greet", "/chat"]
    await webhook.drain()


Handler = Callable[[UserMessage], Awaitable[Any]]


def failing(delay: float, said: str | None = None) -> Handler:
    """A bot that fails after `delay` seconds (having said `said` first, if given)."""

    async def handle(message: UserMessage) -> None:
        if said:
            await message.output_channel.send_text_message(message.sender_id, said)
        await asyncio.sleep(delay)
        raise RuntimeError("the database is down")

    return handle


async def test_wechat_answers_a_failing_bot_with_the_apology(
    tmp_path: Path, wechat_api: FakeWeChatAPI
) -> None:
    webhook = wechat_channel(tmp_path, wechat_api).webhook(failing(0.0))
    reply = await wechat_post(webhook, "我的订单到哪了", 1)
    assert reply is not None and reply["Content"] == WECHAT_BUSY["zh"]
    reply = await wechat_post(webhook, "where is my order", 2)
    assert reply is not None and reply["Content"] == WECHAT_BUSY["en"]


async def test_wechat_pushes_the_apology_when_the_bot_fails_late(
    tmp_path: Path, wechat_api: FakeWeChatAPI
) -> None:
    webhook = wechat_channel(tmp_path, wechat_api, passive=0.2).webhook(failing(0.5))
    started = time.monotonic()
    assert await wechat_post(webhook, "我的订单到哪了", 1) is None  # acknowledged in time
    assert time.monotonic() - started < 0.5
    await webhook.drain()
    assert wechat_api.texts_to(OPENID) == [WECHAT_BUSY["zh"]]


async def test_wechat_adds_no_apology_to_what_the_bot_already_said(
    tmp_path: Path, wechat_api: FakeWeChatAPI
) -> None:
    webhook = wechat_channel(tmp_path, wechat_api).webhook(failing(0.0, said="收到"))
    reply = await wechat_post(webhook, "我的订单到哪了", 1)
    assert reply is not None and reply["Content"] == "收到"


async def test_wechat_handles_once_a_retry_whose_original_died_unanswered(
    tmp_path: Path, wechat_api: FakeWeChatAPI
) -> None:
    heard: list[str] = []

    async def bot(message: UserMessage) -> None:
        heard.append(str(message.text))
        await message.output_channel.send_text_message(message.sender_id, "在的")

    channel = wechat_channel(tmp_path, wechat_api)
    webhook = channel.webhook(bot)
    # WeChat's copies carry the original's CreateTime: 10 s ago, so this is its second retry
    retrying = WeChatUser(WECHAT_TOKEN, WECHAT_APP_ID, None, OPENID, clock=lambda: time.time() - 10)
    # the Rasa instance that took the original was killed before answering: only its claim is left
    assert channel.state.claim("wechat:msg:42")
    reply = await wechat_post(webhook, "在吗", 42, retrying)
    assert reply is not None and reply["Content"] == "在的" and heard == ["在吗"]
    assert await wechat_post(webhook, "在吗", 42, retrying) is None  # the third retry: answered
    assert heard == ["在吗"]

    # an answered message's late copy, and a young copy of one in progress, are duplicates
    assert await wechat_post(webhook, "还在吗", 43, retrying) is not None
    assert await wechat_post(webhook, "还在吗", 43, retrying) is None
    assert channel.state.claim("wechat:msg:44")
    assert await wechat_post(webhook, "你好", 44) is None
    assert heard == ["在吗", "还在吗"]


# ---------------------------------------------------------------- the spool


def test_the_spool_path_follows_the_environment() -> None:
    assert spool_path({"KEFU_RASA_SPOOL_PATH": "/x/s.db"}) == Path("/x/s.db")
    assert spool_path({"KEFU_VAR_DIR": "/v"}) == Path("/v/rasa/spool.db")
    assert spool_path({}) == Path("var/rasa/spool.db")


def test_the_spool_gives_each_sender_its_oldest_entry_once(tmp_path: Path) -> None:
    now = [1000.0]
    spool = Spool(tmp_path / "deep" / "spool.db", lease_seconds=60, clock=lambda: now[0])
    assert spool.senders() == [] and not (tmp_path / "deep").exists()  # no file until needed
    first = spool.append_message("a", "one", "rest", "m1", {"channel": "x"}, "down")
    spool.append_message("b", "other", "socketio", None, None, "down")
    second = spool.append_message("a", "two", "rest", None, None, "down")
    assert spool.senders() == ["a", "b"] and spool.waiting() == 3

    entry = spool.claim_next("a")
    assert entry is not None and entry.id == first
    assert (entry.text, entry.input_channel, entry.metadata) == ("one", "rest", {"channel": "x"})
    assert spool.claim_next("a") is None  # leased: not even the next one (order per sender)
    spool.release(entry.id, failed=True)
    again = spool.claim_next("a")
    assert again is not None and again.id == first and again.attempts == 1
    now[0] += 61  # the lease of a replayer that died runs out
    taken_over = spool.claim_next("a")
    assert taken_over is not None and taken_over.id == first
    spool.done(first)
    following = spool.claim_next("a")
    assert following is not None and following.id == second
    spool.bury(second, "keeps failing")
    assert spool.waiting("a") == 0 and spool.senders() == ["b"]


def test_spooled_events_keep_their_content(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    events = [UserUttered("hi").as_dict(), BotUttered("hello").as_dict()]
    spool.append_events("a", events, "save failed")
    entry = spool.claim_next("a")
    assert entry is not None and entry.kind == "events" and entry.events == events


async def test_the_apology_of_a_model_without_the_response() -> None:
    from rasa.core.nlg import TemplatedNaturalLanguageGenerator
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import SlotSet

    domain = Domain.from_dict({"slots": DOMAIN["slots"]})
    tracker = DialogueStateTracker("s", domain.slots)
    tracker.update(SlotSet("language", "en"))
    draft = await resilience.system_busy(TemplatedNaturalLanguageGenerator({}), tracker, "rest")
    assert draft["text"] == resilience.FALLBACK_TEXTS["en"]
