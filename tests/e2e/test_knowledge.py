"""Knowledge-base answers in the live bot: sources, declines, feedback, hot reload."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from bot.core.db import KbFeedback, KbOutcome, KbQuery, make_engine, session_factory
from bot.core.settings import Settings
from bot.knowledge.index import knowledge_settings
from knowledge_index import build
from tests.e2e.chat_client import Chat

pytestmark = pytest.mark.e2e


def kb_rows(stack: Settings, sender: str) -> list[KbQuery]:
    sessions = session_factory(make_engine(stack.database_url))
    with sessions() as session:
        return list(session.scalars(select(KbQuery).where(KbQuery.sender_id == sender)))


def test_chinese_answer_with_source_and_feedback(stack: Settings) -> None:
    chat = Chat(stack.rasa_url)
    answer = chat.send("七天无理由退货要满足什么条件")
    assert "来源" in answer[0]["text"] and "7 天" in answer[0]["text"]
    assert [b["payload"] for b in answer[0]["buttons"]] == ["/affirm", "/deny"]
    sorry = chat.send(
        "/deny"
    )  # the "没解决" button: a returns question goes on in the returns flow
    payloads = [b["payload"] for m in sorry for b in m.get("buttons", [])]
    assert payloads and all(p.startswith("/choose") for p in payloads), sorry
    (row,) = kb_rows(stack, chat.sender)
    assert row.outcome == KbOutcome.answered and row.entry_id == "returns-7day-no-reason"
    assert row.feedback == KbFeedback.not_solved


def test_english_answer_in_english(stack: Settings) -> None:
    chat = Chat(stack.rasa_url)
    reply = chat.say("how long does a refund take to arrive?")
    assert "Source:" in reply and "working days" in reply
    assert "Great" in chat.say("/affirm")
    assert kb_rows(stack, chat.sender)[0].feedback == KbFeedback.solved


@pytest.mark.parametrize(
    "text", ["这个耳机能不能在火星上用", "你们招聘客服吗", "/product_question"]
)
def test_questions_the_kb_cannot_answer_are_not_guessed(stack: Settings, text: str) -> None:
    chat = Chat(stack.rasa_url)
    reply = chat.say(text)
    assert "来源" not in reply and "Source:" not in reply
    assert all(row.outcome != KbOutcome.answered for row in kb_rows(stack, chat.sender))


def test_suggestions_are_buttons_that_answer_by_id(stack: Settings) -> None:
    chat = Chat(stack.rasa_url)
    reply = chat.send("屏幕碎了保修吗")
    buttons = reply[0].get("buttons") or []
    if reply[0]["text"].startswith("我不太确定"):
        assert 1 <= len(buttons) <= 3 and buttons[0]["payload"].startswith("/kb_select")
        picked = chat.send(buttons[0]["payload"])
        assert "来源" in picked[0]["text"]
    else:  # answered outright
        assert "来源" in reply[0]["text"]


def test_a_rebuilt_index_is_served_without_restart(stack: Settings, tmp_path: Path) -> None:
    chat = Chat(stack.rasa_url)
    assert "来源" in chat.say("七天无理由退货要满足什么条件")  # conversation in progress
    source = tmp_path / "knowledge"
    shutil.copytree(knowledge_settings(stack).source_dir, source)
    extra = {
        "topic": "payments-extra",
        "entries": [
            {
                "id": "payments-ecny",
                "language": "zh",
                "question": "能用数字人民币付款吗？",
                "alt_questions": ["支持数字人民币吗", "数字人民币可以付款吗", "e-CNY 能用吗"],
                "answer": "支持。结算页选择“数字人民币”，用数字钱包扫码即可完成支付。",
                "tags": ["支付"],
                "updated_at": "2026-11-22",
            }
        ],
    }
    (source / "payments_extra.yml").write_text(yaml.safe_dump(extra, allow_unicode=True))
    build(knowledge_settings(stack), source=source)
    deadline = time.monotonic() + 60
    reply = ""
    while time.monotonic() < deadline and "数字钱包" not in reply:
        reply = chat.say("能用数字人民币付款吗")
        time.sleep(1)
    assert "数字钱包" in reply


def test_self_service_report(stack: Settings) -> None:
    import subprocess

    output = subprocess.run(
        [str(stack.app_python), "-m", "bot.cli.main", "kb", "report"],
        env={**stack.as_environment(), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    report = json.loads(output)
    assert report["questions"] >= 3 and report["answered"] >= 2 and report["rejected"] >= 1
    assert 0 < report["self_service_rate"] < 1
