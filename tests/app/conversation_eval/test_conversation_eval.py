"""The customer conversation set, the behaviours read from trackers, the verdicts, the report."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from bot.conversation_eval.behaviours import FORM_START, observe, split_turns
from bot.conversation_eval.dataset import (
    SPLITS,
    ConversationSetError,
    RecordExpectation,
    TurnSpec,
    load_split,
)
from bot.conversation_eval.judge import (
    Verdict,
    answered_directly,
    judge_turn,
    score_record,
    self_served,
)
from bot.conversation_eval.replay import ConversationRun
from bot.conversation_eval.report import summarise, table

TODAY = date(2026, 12, 7)


# --- the set -----------------------------------------------------------------------------------


def test_the_set_is_big_enough_and_the_splits_are_apart() -> None:
    splits = {split: load_split(split) for split in SPLITS}
    conversations = [c for split in splits.values() for c in split]
    turns = sum(len(c.spec.turns) for c in conversations)
    assert len(conversations) >= 100 and turns >= 400
    ids = [c.id for c in conversations]
    assert len(ids) == len(set(ids))
    assert all(c.id.startswith(f"{c.split}-") for c in conversations)
    dev_texts = {t.say for c in splits["dev"] for t in c.spec.turns}
    test_texts = {t.say for c in splits["test"] for t in c.spec.turns}
    shared = dev_texts & test_texts  # only stock replies: "好的", "ok", "KF202611200001"
    assert len(shared) <= 0.1 * len(test_texts)
    assert all(len(text) <= 20 for text in shared)
    for split in splits.values():
        assert sum(1 for c in split for t in c.spec.turns if t.record) >= 10
        assert all(len(c.spec.turns) >= 2 for c in split) or split is splits["test"]


def _write(tmp_path: Path, conversations: list[dict[str, Any]]) -> Path:
    folder = tmp_path / "dev"
    folder.mkdir(exist_ok=True)
    path = folder / "a.yml"
    path.write_text(
        yaml.safe_dump({"conversations": conversations}, allow_unicode=True), encoding="utf-8"
    )
    return path


def test_mistakes_in_a_conversation_file_are_named_with_file_and_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            {
                "id": "dev-a-001",
                "category": "simple_question",
                "turns": [
                    {"say": "怎么退货", "expect": ["kb_anwser:returns-how-to-apply"]},
                    {"say": "好的", "expect": ["anything_else"], "record": {"tier": "normal"}},
                ],
            }
        ],
    )
    with pytest.raises(ConversationSetError) as raised:
        load_split("dev", tmp_path)
    message = str(raised.value)
    assert f"{path}:" in message
    assert "unknown behaviour 'kb_anwser:returns-how-to-apply'" in message
    assert "a record belongs on a turn expecting need_confirmation" in message
    empty = {"id": "dev-a-002", "category": "colloquial", "turns": [{"say": "", "expect": []}]}
    _write(tmp_path, [empty])
    with pytest.raises(ConversationSetError) as raised:
        load_split("dev", tmp_path)
    assert "turns[0].say" in str(raised.value) and "turns[0].expect" in str(raised.value)


def test_a_repeated_id_and_an_empty_split_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConversationSetError, match="no conversation files"):
        load_split("dev", tmp_path)
    turn = {"say": "你好", "expect": ["greet"]}
    _write(
        tmp_path,
        [
            {"id": "dev-a-001", "category": "colloquial", "turns": [turn]},
            {"id": "dev-a-001", "category": "colloquial", "turns": [turn]},
        ],
    )
    with pytest.raises(ConversationSetError, match="is also used in"):
        load_split("dev", tmp_path)


# --- behaviours from tracker events ------------------------------------------------------------


def user(text: str, intent: str = "greet") -> dict[str, Any]:
    return {
        "event": "user",
        "text": text,
        "parse_data": {"intent": {"name": intent, "confidence": 0.9}},
    }


def bot(response: str, text: str = "...", **metadata: Any) -> dict[str, Any]:
    return {"event": "bot", "text": text, "metadata": {"utter_action": response, **metadata}}


def test_turns_carry_slots_forms_and_answers() -> None:
    events = [
        {"event": "action", "name": "action_session_start"},
        user("我要投诉", "complain"),
        {"event": "action", "name": "action_read_need"},
        bot("utter_complain_ack"),
        {"event": "active_loop", "name": "spin_form"},
        bot("utter_ask_spin_problem"),
        user("退款多久到账", "return_refund"),
        bot("utter_kb_answer", kb_entry_id="returns-refund-time"),
        {"event": "slot", "name": "order_number", "value": "KF202611200001"},
        bot("utter_ask_spin_problem"),
        user("冒烟了", "urgent_issue"),
        bot("utter_urgent_ack", text="安全第一！请立即停止使用"),
    ]
    first, second, third = (observe(turn) for turn in split_turns(events))
    assert {"complaint_ack", "complaint_form", FORM_START, "spin_ask:problem"} <= first.behaviours
    assert {"kb_answer", "kb_answer:returns-refund-time", "complaint_form"} <= second.behaviours
    assert FORM_START not in second.behaviours
    assert second.slots["order_number"] == "KF202611200001"
    assert {"urgent_ack", "safety_warning"} <= third.behaviours  # an older model's wording


def test_suggestions_name_their_entries_and_silence_is_seen() -> None:
    buttons = [{"title": "?", "payload": '/kb_select{"kb_entry_id": "returns-pickup"}'}]
    events = [
        user("退货谁来拿", "return_refund"),
        {
            "event": "bot",
            "text": "您是想问：",
            "data": {"buttons": buttons},
            "metadata": {"utter_action": "utter_kb_suggestions"},
        },
        user("在吗", "greet"),
    ]
    suggested, silent = (observe(turn) for turn in split_turns(events))
    assert {"kb_suggest", "kb_suggest:returns-pickup"} <= suggested.behaviours
    assert silent.silent and "silent" in silent.behaviours


# --- verdicts ----------------------------------------------------------------------------------


def spec(**fields: Any) -> TurnSpec:
    return TurnSpec(say=fields.pop("say", "..."), **fields)


def seen(*labels: str, slots: dict[str, Any] | None = None, messages: int = 1) -> Any:
    return SimpleNamespace(
        intent="x",
        confidence=0.9,
        behaviours=frozenset(labels),
        responses=(),
        texts=(),
        slots=slots or {},
        messages=messages,
        silent=messages == 0,
    )


@pytest.mark.parametrize(
    ("expect", "must_not", "observed", "verdict"),
    [
        (["kb_answer:a"], [], ["kb_answer", "kb_answer:a"], Verdict.acceptable),
        (["kb_answer:a"], [], ["kb_answer", "kb_answer:b"], Verdict.wrong_confident),
        (["kb_answer:a", "kb_suggest:a"], [], ["kb_suggest", "kb_suggest:b"], Verdict.unhelpful),
        (["clarify"], [], ["rating_thanks"], Verdict.wrong_confident),
        (["wait_ack"], ["goodbye"], ["wait_ack", "goodbye"], Verdict.wrong_confident),
        (["clarify"], [], ["offer_human"], Verdict.unhelpful),
        (["clarify"], [], ["greet"], Verdict.wrong_confident),
        (
            ["kb_answer:a"],
            [],
            ["safety_warning", "kb_answer:a", "kb_answer"],
            Verdict.wrong_confident,
        ),
        (["out_of_scope"], [], ["complaint_form", FORM_START], Verdict.wrong_confident),
        (["spin_ask:problem"], [], ["complaint_form", "spin_ask:situation"], Verdict.unhelpful),
        (
            ["complaint_ack"],
            [],
            ["complaint_ack", "complaint_form", FORM_START],
            Verdict.acceptable,
        ),
    ],
)
def test_verdicts(
    expect: list[str], must_not: list[str], observed: list[str], verdict: Verdict
) -> None:
    assert judge_turn(spec(expect=expect, must_not=must_not), seen(*observed))[0] is verdict


def test_silence_is_missing_unless_expected_and_slots_count() -> None:
    assert judge_turn(spec(expect=["greet"]), seen("silent", messages=0))[0] is Verdict.missing
    assert judge_turn(spec(expect=["silent"]), seen("silent", messages=0))[0] is Verdict.acceptable
    wrong_order = seen("order_status", slots={"order_number": "KF202611200002"})
    turn = spec(expect=["order_status"], slots={"order_number": "KF202611200001"})
    verdict, reasons = judge_turn(turn, wrong_order)
    assert verdict is Verdict.wrong_confident and "slot order_number" in reasons[0]


def test_self_service_counts_answers_and_the_right_button() -> None:
    turn = spec(expect=["kb_answer:a", "kb_suggest:a", "clarify"], simple=True)
    answered = seen("kb_answer", "kb_answer:a")
    assert self_served(turn, answered, judge_turn(turn, answered)[0])
    assert answered_directly(turn, answered, judge_turn(turn, answered)[0])
    suggested = seen("kb_suggest", "kb_suggest:a")
    assert self_served(turn, suggested, judge_turn(turn, suggested)[0])
    assert not answered_directly(turn, suggested, judge_turn(turn, suggested)[0])
    clarified = seen("clarify")
    assert judge_turn(turn, clarified)[0] is Verdict.acceptable
    assert not self_served(turn, clarified, Verdict.acceptable)


def test_record_fields_are_scored_one_by_one() -> None:
    expectation = RecordExpectation(
        category="complaint",
        order_number="KF202611200001",
        product=["耳机"],
        problem=["左耳没声音"],
        problem_since=-2,
        impact="business",
        need_payoff="replacement",
        tier="normal",
        complaint_grade="general",
    )
    record = SimpleNamespace(
        category="complaint",
        order_number="KF202611200001",
        product="AuraSound X2 主动降噪耳机",
        situation="KF202611200001",
        problem="左耳 没声音，从前天开始",
        problem_since=date(2026, 12, 5),
        implication="影响我上班开会",
        impacts=["business"],
        need_payoff="refund",
        skipped=[],
        urgency=SimpleNamespace(value="normal"),
        complaint_grade=SimpleNamespace(value="general"),
        completeness=1.0,
    )
    score = score_record(expectation, record, TODAY)  # type: ignore[arg-type]
    assert score.found and score.completeness == 1.0
    assert {name for name, ok in score.fields.items() if not ok} == {"need_payoff"}
    missing = score_record(expectation, None, TODAY)
    assert not missing.found and not any(missing.fields.values())


# --- the report --------------------------------------------------------------------------------


def test_the_report_counts_by_category_and_checks_the_targets() -> None:
    conversation = load_split("dev")[0]
    run = ConversationRun(conversation, "eval-x")  # never replayed: every turn is missing
    run.error = "ConnectError: refused"
    summary = summarise("dev", [run])
    results = summary.results
    assert results["turns"] == len(conversation.spec.turns)
    assert results["total"]["missing"] == results["turns"]
    assert results["errors"] == [f"{conversation.id}: ConnectError: refused"]
    text = table(summary)
    assert conversation.spec.category in text and "MISSED" in text


def test_acknowledging_a_need_that_is_one_is_not_a_confident_mistake() -> None:
    """Everything was said at once; the bot took the complaint up but asked one more question."""
    turn = spec(expect=["need_confirmation"])
    verdict, _ = judge_turn(turn, seen("complaint_ack", "complaint_form", "spin_ask:problem"))
    assert verdict is Verdict.unhelpful
    question = spec(expect=["kb_answer:a"])
    assert (
        judge_turn(question, seen("complaint_ack", "complaint_form"))[0] is Verdict.wrong_confident
    )
