"""`deploy` and `rollback` against the live stack while customers keep chatting.

Each deploy starts a successor Rasa on the stack's port (bot/editor/rolling_deploy.py); at the
end the stack's own Rasa process is put back, since later modules restart it by name.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

from bot.core.processes import ServiceGroup
from bot.core.settings import Settings
from bot.editor.deployment import DeploymentError, DeploymentLog, deploy, rasa_status, rollback
from bot.editor.rolling_deploy import is_alive, recorded_pid
from bot.knowledge.index import knowledge_settings
from knowledge_index import build, current_version
from tests.e2e.chat_client import Chat

MESSAGES = ("你好", "谢谢", "hello", "我的订单到哪了")
NEW_QUESTION = "你们的商品可以寄到南极科考站吗"
NEW_ANSWER_MARK = "南极科考站暂不支持配送"


@dataclass
class LoadTest:
    """Customers chatting over REST in threads; counts every request and every failure."""

    rasa_url: str
    users: int = 4
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run_user(self, number: int) -> None:
        url = f"{self.rasa_url}/webhooks/rest/webhook"
        sender = f"load-{number}-{uuid.uuid4().hex[:8]}"
        with httpx.Client(timeout=120) as client:
            turn = 0
            while not self.stop.is_set():
                text = MESSAGES[turn % len(MESSAGES)]
                turn += 1
                try:
                    response = client.post(url, json={"sender": sender, "message": text})
                    ok = response.status_code == 200 and bool(response.json())
                    problem = "" if ok else f"{response.status_code} {response.text[:200]}"
                except (httpx.HTTPError, ValueError) as error:
                    problem = repr(error)
                with self.lock:
                    self.requests += 1
                    if problem:
                        self.failures.append(f"{text!r}: {problem}")

    def __enter__(self) -> LoadTest:
        self.threads = [
            threading.Thread(target=self.run_user, args=(n,), daemon=True)
            for n in range(self.users)
        ]
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=150)

    def wait_for_requests(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.requests < count and time.monotonic() < deadline:
            time.sleep(0.2)
        assert self.requests >= count, "the load test made no progress"


@pytest.fixture(scope="module", autouse=True)
def stack_rasa_restored(stack_group: ServiceGroup) -> Iterator[None]:
    """After this module, the group's own Rasa process serves the stack again."""
    yield
    rasa = next(s for s in stack_group.services if s.name == "rasa")
    pid = recorded_pid(stack_group.settings)
    if pid is None or (rasa.process is not None and rasa.process.pid == pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    stack_group.start_service("rasa")


@pytest.fixture(scope="module")
def models(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Path]]:
    """Two copies of the stack's model under different names (a real swap each time)."""
    from bot.core.settings import get_settings
    from bot.core.training import model_path

    stack.models_dir.mkdir(parents=True, exist_ok=True)
    copies = [stack.models_dir / f"kefu-deploy-{name}.tar.gz" for name in ("a", "b")]
    for copy in copies:
        shutil.copyfile(model_path(get_settings()), copy)
    yield copies


def _staged_index_with_new_entry(stack: Settings, tmp_path: Path) -> str:
    """A knowledge index version with one extra entry, built but not in service."""
    source = tmp_path / "knowledge"
    shutil.copytree(knowledge_settings(stack).source_dir, source)
    extra = {
        "topic": "shipping-extra",
        "entries": [
            {
                "id": "shipping-antarctica",
                "language": "zh",
                "question": NEW_QUESTION,
                "alt_questions": ["能寄到南极科考站吗", "南极科考站能收快递吗"],
                "answer": f"{NEW_ANSWER_MARK}，目前只配送中国大陆地址。",
                "tags": ["配送"],
                "updated_at": "2026-11-23",
            }
        ],
    }
    (source / "shipping_extra.yml").write_text(yaml.safe_dump(extra, allow_unicode=True))
    return build(knowledge_settings(stack), source=source, activate=False).name


def _answer_appears(chat: Chat, expected: bool, timeout: float = 60) -> bool:
    """Asks the new question until the bot's answer does (or does not) contain the mark."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (NEW_ANSWER_MARK in chat.say(NEW_QUESTION)) == expected:
            return True
        time.sleep(1)
    return False


def test_deploy_and_rollback_under_load_fail_no_request(
    stack: Settings, models: list[Path], tmp_path: Path
) -> None:
    model_a, model_b = models
    old_version = current_version(knowledge_settings(stack).var_dir).name
    deploy(stack, model_a, old_version)
    assert rasa_status(stack)["model_file"] == model_a.name
    new_version = _staged_index_with_new_entry(stack, tmp_path)
    assert current_version(knowledge_settings(stack).var_dir).name == old_version  # staged only

    chat = Chat(stack.rasa_url)
    first_pid = recorded_pid(stack)
    with LoadTest(stack.rasa_url) as load:
        load.wait_for_requests(20)
        deployment = deploy(stack, model_b, new_version)
        assert recorded_pid(stack) not in (None, first_pid), "no successor process took over"
        assert rasa_status(stack)["model_file"] == model_b.name
        assert current_version(knowledge_settings(stack).var_dir).name == new_version
        assert _answer_appears(chat, expected=True), "the new index was not put in service"
        during = load.requests
        load.wait_for_requests(during + 20)

        restored = rollback(stack)
        assert restored.model == str(model_a.resolve())
        assert rasa_status(stack)["model_file"] == model_a.name
        assert current_version(knowledge_settings(stack).var_dir).name == old_version
        assert _answer_appears(chat, expected=False), "rollback did not restore the old index"
        load.wait_for_requests(load.requests + 20)
    assert load.failures == [], f"{len(load.failures)} of {load.requests} requests failed"
    assert load.requests >= 60
    statuses = [d.status for d in DeploymentLog.of(stack).read()]
    assert statuses[-2:] == ["active", "rolled_back"]
    assert deployment.index_version == new_version


def test_a_model_that_does_not_load_is_refused_and_the_bot_keeps_serving(
    stack: Settings, models: list[Path], tmp_path: Path
) -> None:
    before = rasa_status(stack)["model_file"]
    garbage = tmp_path / "kefu-garbage.tar.gz"
    garbage.write_bytes(b"this is not a model")
    with pytest.raises(DeploymentError, match="not a Rasa model archive"):
        deploy(stack, garbage)

    broken = tmp_path / "kefu-broken.tar.gz"  # a valid archive whose metadata is nonsense
    with tarfile.open(broken, "w:gz") as archive:
        data = json.dumps({"not": "rasa metadata"}).encode()
        info = tarfile.TarInfo("metadata.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    with pytest.raises(DeploymentError, match="keeps serving the previous model"):
        deploy(stack, broken)

    with pytest.raises(DeploymentError, match="no such model file"):
        deploy(stack, tmp_path / "missing.tar.gz")
    assert rasa_status(stack)["model_file"] == before
    assert Chat(stack.rasa_url).say("你好")
    assert DeploymentLog.of(stack).current() is not None
