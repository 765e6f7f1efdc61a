"""The scale-out stack: two Rasa instances behind HAProxy share conversations.

One module-scoped stack (PostgreSQL, Redis, RabbitMQ, HAProxy, two Rasa instances, two
action workers, web, scheduler, QA) in its own VAR dir on free ports. HAProxy names the
instance that answered in the X-Kefu-Instance header, which lets a test aim a turn at the
other instance: a GET / through the balancer advances its round robin.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bot.bench.common import free_port
from bot.core.local_servers import missing_packages
from bot.core.local_servers.haproxy import INSTANCE_HEADER, STICKY_COOKIE
from bot.core.scaleout import ScaleOutStack
from bot.core.settings import Settings, get_settings
from bot.core.training import ensure_model
from bot.handoff.broker import event_source
from bot.knowledge.index import ensure_index
from bot.service.orders import seed_demo_orders
from tests.e2e.chat_client import Customer

TOKEN = "e2e-scaleout-token-0123456789"
ORDER = "KF202611200001"


@pytest.fixture(scope="module")
def scaleout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScaleOutStack]:
    """A running two-instance stack with the demo orders."""
    missing = missing_packages()
    if missing and os.geteuid() != 0:
        pytest.skip(f"not installed: {', '.join(missing)} (make install-scaleout as root)")
    model, _ = ensure_model(get_settings())
    var = tmp_path_factory.mktemp("scaleout-var")
    (var / "webchat").symlink_to(get_settings().webchat_dir)
    settings = Settings(
        var_dir=var,
        rasa_port=free_port(),
        actions_port=free_port(),
        web_port=free_port(),
        rasa_token=TOKEN,
        rasa_instances=2,
        demo_day=False,
    )
    ensure_index(settings)

    def seed(stack_settings: Settings) -> None:
        from bot.core.db import make_engine

        engine = make_engine(stack_settings.database_url)
        seed_demo_orders(engine)
        engine.dispose()

    stack = ScaleOutStack(settings, model, prepare=seed, durable=False)
    started = time.monotonic()
    try:
        stack.start()
        print(f"scale-out stack ready in {time.monotonic() - started:.0f}s")
    except Exception:
        for log in sorted((var / "logs").glob("*.log")):
            print(f"==> {log}\n{log.read_text(errors='replace')[-3000:]}")
        raise
    yield stack
    started = time.monotonic()
    stack.stop()
    print(f"scale-out stack stopped in {time.monotonic() - started:.1f}s")


def say(stack: ScaleOutStack, sender: str, text: str) -> tuple[str, str]:
    """One REST turn through the balancer (no cookies kept); returns (instance, bot texts)."""
    response = httpx.post(
        f"{stack.settings.rasa_url}/webhooks/rest/webhook",
        json={"sender": sender, "message": text},
        timeout=60,
    )
    response.raise_for_status()
    texts = "\n".join(m.get("text", "") for m in response.json())
    return response.headers[INSTANCE_HEADER], texts


def aim_away_from(stack: ScaleOutStack, instance: str) -> None:
    """Advances HAProxy's round robin until the next request goes to the other instance."""
    for _ in range(10):
        response = httpx.get(f"{stack.settings.rasa_url}/", timeout=10)
        if response.headers[INSTANCE_HEADER] == instance:
            return
    raise AssertionError(f"{instance} never answered a GET /")


def tracker(url: str, sender: str) -> dict[str, Any]:
    """The conversation's tracker as one Rasa server sees it."""
    response = httpx.get(
        f"{url}/conversations/{sender}/tracker", params={"token": TOKEN}, timeout=30
    )
    response.raise_for_status()
    return dict(response.json())


def test_a_form_started_on_one_instance_is_finished_on_the_other(
    scaleout: ScaleOutStack,
) -> None:
    sender = f"scaleout-form-{time.monotonic_ns()}"
    asked_on, asked = say(scaleout, sender, "我的订单到哪了")
    assert "订单号" in asked
    aim_away_from(scaleout, asked_on)
    answered_on, answer = say(scaleout, sender, ORDER)
    assert answered_on != asked_on
    assert ORDER in answer and "订单号是" not in answer, answer
    # every instance, asked directly, sees the whole conversation and the filled slot
    views = [tracker(instance["url"], sender) for instance in scaleout.describe()["instances"]]
    for view in views:
        assert view["slots"]["order_number"] == ORDER
        said = [e.get("text") for e in view["events"] if e["event"] == "user"]
        assert said == ["我的订单到哪了", ORDER]
    assert len(views[0]["events"]) == len(views[1]["events"])


def test_socketio_requests_stay_on_one_instance(scaleout: ScaleOutStack) -> None:
    with httpx.Client(base_url=scaleout.settings.rasa_url, timeout=10) as client:
        answered = set()
        for _ in range(4):
            response = client.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
            answered.add(response.headers[INSTANCE_HEADER])
        assert len(answered) == 1
        assert client.cookies.get(STICKY_COOKIE) in {"rasa1", "rasa2"}
    # REST requests, without the cookie, still alternate
    seen = {httpx.get(f"{scaleout.settings.rasa_url}/").headers[INSTANCE_HEADER] for _ in range(4)}
    assert seen == {"rasa1", "rasa2"}


def test_an_agent_reply_posted_to_the_other_instance_reaches_the_web_chat(
    scaleout: ScaleOutStack,
) -> None:
    """The socket lives on one instance; the reply enters Rasa on the other (Redis manager)."""
    customer = Customer(scaleout.settings)
    try:
        customer.say("你好")
        customer.hear("")
        pinned = customer.sio.eio.http.cookies.get(STICKY_COOKIE)
        assert pinned in {"rasa1", "rasa2"}
        other = next(i for i in scaleout.describe()["instances"] if i["name"] != pinned)
        response = httpx.post(
            f"{other['url']}/conversations/{customer.session_id}/tracker/events",
            params={"token": TOKEN, "output_channel": "latest", "execute_side_effects": "true"},
            json=[{"event": "bot", "text": "人工客服小王：您好，我来帮您看看"}],
            timeout=30,
        )
        response.raise_for_status()
        assert customer.hear("人工客服小王", timeout=20)
    finally:
        customer.close()


def test_the_desk_reads_customer_messages_from_the_broker(scaleout: ScaleOutStack) -> None:
    sender = f"scaleout-broker-{time.monotonic_ns()}"
    for text in ("我的订单到哪了", ORDER):
        say(scaleout, sender, text)
    source = event_source(scaleout.settings)
    try:
        said: list[str] = []
        position: str | None = None
        deadline = time.monotonic() + 30
        while said != ["我的订单到哪了", ORDER] and time.monotonic() < deadline:
            batch = source.read(position, 500)
            if not batch:
                time.sleep(0.5)
                continue
            position = batch[-1].position
            said += [
                e.data.get("text", "")
                for e in batch
                if e.sender_id == sender and e.data.get("event") == "user"
            ]
        assert said == ["我的订单到哪了", ORDER]
    finally:
        source.close()


def test_killing_an_instance_mid_conversation_loses_no_answer(
    scaleout: ScaleOutStack,
) -> None:
    """Runs last: it leaves the stack with one instance."""
    if scaleout.group is None:
        pytest.fail("the stack has no services")
    sender = f"scaleout-kill-{time.monotonic_ns()}"
    asked_on, asked = say(scaleout, sender, "我的订单到哪了")
    assert "订单号" in asked
    victim = next(s for s in scaleout.group.services if s.name == asked_on)
    if victim.process is None:
        pytest.fail(f"{asked_on} is not running")
    os.killpg(victim.process.pid, signal.SIGKILL)
    victim.process.wait()
    # the next turns land where they can: HAProxy retries refused connections elsewhere
    instances = set()
    for text in (ORDER, "谢谢"):
        started = time.monotonic()
        instance, answer = say(scaleout, sender, text)
        instances.add(instance)
        assert answer, f"no answer to {text!r}"
        assert time.monotonic() - started < 30
        if text == ORDER:
            assert ORDER in answer, answer
    assert instances == {"rasa1", "rasa2"} - {asked_on}
