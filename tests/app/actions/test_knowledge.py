"""The knowledge-base actions against a real (small) index built with the fake encoder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from unittest.mock import patch

import pytest
from click.testing import CliRunner
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import Engine

from actions.knowledge import (
    ActionAnswerFromKb,
    ActionKbFeedback,
    KbResult,
    knowledge_base,
    lookup,
)
from actions.service_plan import sentence_encoder
from bot.cli.main import main
from bot.core.db import KbFeedback, KbOutcome
from bot.core.settings import get_settings
from bot.knowledge.query_log import KbLog
from knowledge_index import HashingEncoder, KnowledgeBase, KnowledgeSettings, build
from tests.app.conftest import make_tracker, user_event

KB_YML = """\
topic: returns
entries:
  - id: returns-7day
    language: zh
    question: 七天无理由退货的条件是什么？
    alt_questions: [7天无理由怎么退, 买了不想要了能退吗, 没拆封可以退货吗]
    answer: 签收 7 天内未使用即可申请。
    link: https://help.kefu.example/returns/7-day
  - id: returns-refund-time
    language: zh
    question: 退款多久到账？
    alt_questions: [退款要几天才能到, 钱什么时候退回来]
    answer: 审核通过后 1-3 个工作日原路退回。
  - id: returns-how-en
    language: en
    question: How do I return an item?
    alt_questions: [how to send something back, where do I request a return]
    answer: Open My orders, choose the order and tap Return.
"""


@pytest.fixture
def kb(tmp_path: Path, engine: Engine) -> Iterator[KnowledgeBase]:
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "returns.yml").write_text(KB_YML)
    settings = KnowledgeSettings(var_dir=tmp_path / "index", source_dir=tmp_path / "kb")
    encoder = HashingEncoder(dimension=128)
    build(settings, encoder=encoder)
    base = KnowledgeBase(settings, encoder=encoder)
    with (
        patch("actions.knowledge.knowledge_base", return_value=base),
        patch("actions.knowledge.kb_log", return_value=KbLog(engine)),
    ):
        yield base


def test_lookup_answers_in_the_customer_language(kb: KnowledgeBase) -> None:
    chinese = lookup("七天无理由退货的条件是什么？", "zh")
    assert chinese.outcome == KbOutcome.answered
    assert chinese.hits[0]["entry_id"] == "returns-7day"
    english = lookup("How do I return an item?", "en")
    assert english.hits and all(h["language"] == "en" for h in english.hits)


def test_lookup_by_entry_id_and_unknown_id(kb: KnowledgeBase) -> None:
    assert lookup("", "zh", "returns-refund-time").outcome == KbOutcome.answered
    assert lookup("", "zh", "no-such-entry").outcome == KbOutcome.no_answer


async def test_answer_cites_the_source_and_is_recorded(kb: KnowledgeBase, engine: Engine) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker("七天无理由退货的条件是什么？", "return_refund")
    events = await ActionAnswerFromKb().run(dispatcher, tracker, {})
    message = dispatcher.messages[0]
    assert message["response"] == "utter_kb_answer"
    assert "https://help.kefu.example/returns/7-day" in message["source"]
    assert events[0] == SlotSet("kb_outcome", "answered")
    assert KbLog(engine).self_service().answered == 1


async def test_no_answer_gives_the_topic_overview_not_a_guess(kb: KnowledgeBase) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker("退货的事怎么弄", "return_refund", 0.99)
    nothing = KbResult(KbOutcome.no_answer, [], "v1")
    with patch("actions.knowledge.lookup", return_value=nothing):
        events = await ActionAnswerFromKb().run(dispatcher, tracker, {})
    assert dispatcher.messages[0]["response"] == "utter_return_policy"
    assert events[0] == SlotSet("kb_outcome", "no_answer")


async def test_an_unsure_topic_gets_a_question_not_an_overview(kb: KnowledgeBase) -> None:
    """ "能给我一个加盖公章的购物清单吗" read as a product question at 0.82: no product overview."""
    dispatcher = CollectingDispatcher()
    tracker = make_tracker("能给我一个加盖公章的购物清单吗", "product_question", 0.82)
    nothing = KbResult(KbOutcome.no_answer, [], "v1")
    with patch("actions.knowledge.lookup", return_value=nothing):
        await ActionAnswerFromKb().run(dispatcher, tracker, {})
    assert dispatcher.messages[0]["response"] == "utter_kb_clarify"


async def test_out_of_scope_gets_one_sentence_then_a_person(kb: KnowledgeBase) -> None:
    nothing = KbResult(KbOutcome.no_answer, [], "v1")
    dispatcher = CollectingDispatcher()
    tracker = make_tracker("明天会下雨吗", "out_of_scope", 0.99)
    with patch("actions.knowledge.lookup", return_value=nothing):
        await ActionAnswerFromKb().run(dispatcher, tracker, {})
    assert dispatcher.messages[0]["response"] == "utter_out_of_scope"
    earlier = [
        user_event("明天会下雨吗", "out_of_scope"),
        {"event": "bot", "text": "...", "metadata": {"utter_action": "utter_out_of_scope"}},
    ]
    again = make_tracker("那后天呢", "out_of_scope", 0.99, events=earlier)
    dispatcher = CollectingDispatcher()
    with patch("actions.knowledge.lookup", return_value=nothing):
        await ActionAnswerFromKb().run(dispatcher, again, {})
    assert dispatcher.messages[0]["response"] == "utter_offer_human"


async def test_feedback_is_stored_on_the_latest_answer(kb: KnowledgeBase, engine: Engine) -> None:
    await ActionAnswerFromKb().run(
        CollectingDispatcher(), make_tracker("退款多久到账？", "return_refund"), {}
    )
    dispatcher = CollectingDispatcher()
    tracker = make_tracker("没解决", "deny", slots={"kb_outcome": "answered"})
    await ActionKbFeedback().run(dispatcher, tracker, {})
    assert dispatcher.messages[0]["response"] == "utter_kb_not_solved"
    assert KbLog(engine).misses()[0].feedback == KbFeedback.not_solved


async def test_feedback_after_suggestions_just_carries_on(kb: KnowledgeBase) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker("好的", "affirm", slots={"kb_outcome": "suggested"})
    assert await ActionKbFeedback().run(dispatcher, tracker, {}) == []
    assert dispatcher.messages[0]["response"] == "utter_anything_else"


def test_kb_build_publishes_where_the_actions_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kefu kb build` and the action server both follow KEFU_DATA_DIR and KEFU_VAR_DIR."""
    (tmp_path / "data" / "knowledge").mkdir(parents=True)
    (tmp_path / "data" / "knowledge" / "returns.yml").write_text(KB_YML)
    monkeypatch.setenv("KEFU_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KEFU_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("KEFU_KB_MODEL", "hashing")
    monkeypatch.delenv("KEFU_KB_VAR_DIR", raising=False)
    monkeypatch.delenv("KEFU_KB_SOURCE_DIR", raising=False)
    cached = (get_settings, knowledge_base, sentence_encoder)
    for function in cached:
        function.cache_clear()
    try:
        result = CliRunner().invoke(main, ["kb", "build"])
        assert result.exit_code == 0, result.output
        versions = tmp_path / "var" / "knowledge" / "versions"
        (published,) = versions.iterdir()
        assert f"Published {published}" in result.output
        assert knowledge_base().load() == published.name
        assert lookup("七天无理由退货的条件是什么？", "zh").hits[0]["entry_id"] == "returns-7day"
    finally:
        for function in cached:
            function.cache_clear()
