"""The review queue: collecting misses and agents' replies, grouping, decisions, data files.

Every test writes into a temporary copy of `data/` (`Settings(data_dir=...)`); an autouse
fixture checks the project's own data files are left alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import Engine, select

from bot.cli.review import review
from bot.core.db import (
    MessageKind,
    ReviewItem,
    ReviewSource,
    ReviewStatus,
    session_factory,
)
from bot.core.settings import Settings
from bot.editor import data_writer
from bot.editor.data_writer import ValidationFailed
from bot.editor.review import (
    AlreadyDecided,
    ItemNotFound,
    ReviewQueue,
    collect,
    group_items,
    is_handoff_request,
    is_trivial,
)
from knowledge_index import load_entries
from tests.app.conftest import (
    ENGRAVE_ANSWER,
    PROJECT_DATA,
    KeywordEncoder,
    open_handoff,
    say,
    seed,
    tree_digest,
)

pytestmark = pytest.mark.usefixtures("project_data_untouched")


@pytest.fixture
def queue(engine: Engine, settings: Settings) -> ReviewQueue:
    return ReviewQueue(engine, settings, KeywordEncoder())


def items(engine: Engine) -> list[ReviewItem]:
    with session_factory(engine)() as session:
        return list(session.scalars(select(ReviewItem).order_by(ReviewItem.id)))


def make_item(
    engine: Engine,
    key: str,
    question: str,
    customer: str,
    minutes_ago: int,
    answer: str | None = None,
    hit: str | None = None,
    language: str = "zh",
) -> int:
    now = datetime.now(UTC)
    item = ReviewItem(
        source_key=key,
        source=ReviewSource.agent_reply if answer else ReviewSource.unanswered,
        question=question,
        answer=answer,
        language=language,
        customer_id=customer,
        channel="rest",
        hit_entry_id=hit,
        created_at=now - timedelta(minutes=minutes_ago),
        collected_at=now,
        status=ReviewStatus.pending,
    )
    with session_factory(engine).begin() as session:
        session.add(item)
        session.flush()
        return item.id


# ---------------------------------------------------------------------- collect
@pytest.mark.parametrize(
    ("text", "trivial"),
    [
        ("好的", True), ("谢谢！", True), ("Thanks!", True), ("thank you very much", True),
        ("在吗", True), ("/affirm", True), ("退货呢", True), ("refund?", True),
        ("好的，请稍等。", True), ("One moment please", True), ("", True),
        ("商品可以刻字吗", False), ("how long does a refund take", False),
    ],
)  # fmt: skip
def test_trivial_texts_are_recognised(text: str, trivial: bool) -> None:
    assert is_trivial(text) is trivial


def test_handoff_requests_are_not_questions() -> None:
    assert is_handoff_request("转人工") and is_handoff_request("I want to talk to a person")
    assert not is_handoff_request("你们招聘客服吗")


def test_collect_copies_misses_and_agent_replies_once(engine: Engine) -> None:
    ids = seed(engine)
    assert collect(engine) == 6
    assert collect(engine) == 0  # idempotent
    by_key = {item.source_key: item for item in items(engine)}
    assert set(by_key) == {
        f"kb:{ids['no_answer']}",
        f"kb:{ids['suggested']}",
        f"kb:{ids['rejected']}",
        f"kb:{ids['selected']}",
        *(k for k in by_key if k.startswith("handoff-msg:")),
    }
    assert f"kb:{ids['answered']}" not in by_key and f"kb:{ids['trivial']}" not in by_key
    assert by_key[f"kb:{ids['no_answer']}"].source == ReviewSource.unanswered
    suggested = by_key[f"kb:{ids['suggested']}"]
    assert suggested.source == ReviewSource.suggested
    assert suggested.hit_entry_id == "warranty-standard-period"
    assert by_key[f"kb:{ids['rejected']}"].source == ReviewSource.not_solved
    assert by_key[f"kb:{ids['selected']}"].question == "火星上能收到快递吗"  # button prefix gone

    replies = [item for item in by_key.values() if item.source == ReviewSource.agent_reply]
    assert len(replies) == 2  # the notice, the holding reply and the note are skipped
    engraving = next(item for item in replies if item.customer_id == "c7")
    assert engraving.question == "我想给耳机刻字可以吗"  # not "转人工"
    assert engraving.answer == ENGRAVE_ANSWER and engraving.status == ReviewStatus.pending
    invoice = next(item for item in replies if item.customer_id == "c8")
    assert invoice.question == "可以开增值税专用发票吗"  # from the packet

    say(engine, ids["handoff"], MessageKind.customer, "刻字要加钱吗")
    say(engine, ids["handoff"], MessageKind.agent, "刻字免费，每件商品限一处。")
    assert collect(engine) == 1
    newest = items(engine)[-1]
    assert (newest.question, newest.answer) == ("刻字要加钱吗", "刻字免费，每件商品限一处。")


def test_replies_copied_from_an_earlier_handoff_are_not_collected_twice(engine: Engine) -> None:
    first = open_handoff(engine, "c9", [(MessageKind.customer, "可以开增值税专用发票吗")])
    say(engine, first, MessageKind.agent, "可以开专票，请在订单详情页申请。")
    open_handoff(  # a later handoff (same customer) opens with the transcript's tail
        engine,
        "c9-later",
        [
            (MessageKind.customer, "可以开增值税专用发票吗"),
            (MessageKind.agent, "可以开专票，请在订单详情页申请。"),  # the packet's copy
        ],
    )
    assert collect(engine) == 1


# ---------------------------------------------------------------------- grouping
def test_groups_are_ranked_by_frequency_customers_then_recency(
    engine: Engine, queue: ReviewQueue
) -> None:
    # Engraving: 4 items from 2 customers; invoices: 4 items from 4 customers.
    make_item(engine, "a1", "商品可以刻字吗", "c1", 50, hit="care-overnight-charging")
    make_item(engine, "a2", "商品可以刻字吗", "c1", 40)
    make_item(engine, "a3", "耳机能刻字吗", "c2", 30, answer="旧的回复")
    latest = make_item(engine, "a4", "刻字要多久", "c2", 5, answer=ENGRAVE_ANSWER)
    for n in range(4):
        make_item(engine, f"b{n}", f"发票问题{n}", f"d{n}", 45)
    old = make_item(engine, "c1", "火星上能用吗", "e1", 100)
    new = make_item(engine, "d1", "保修几年", "e2", 1)
    groups = queue.groups()
    sizes = [(len(g.items), g.customers) for g in groups]
    assert sizes == [(4, 4), (4, 2), (1, 1), (1, 1)]
    invoices, engraving, first_single, second_single = groups
    assert first_single.item_ids == [new] and second_single.item_ids == [old]  # newest first
    proposal = engraving.proposal
    assert proposal.question == "商品可以刻字吗"  # the most frequent wording
    assert set(proposal.alt_questions) == {"耳机能刻字吗", "刻字要多久"}
    assert proposal.answer == ENGRAVE_ANSWER  # the most recent agent reply
    assert proposal.topic == "product_care" and proposal.entry_id == "care-overnight-charging"
    assert invoices.proposal.topic == "" and invoices.proposal.answer == ""
    assert engraving.id == min(engraving.item_ids) and latest in engraving.item_ids
    assert engraving.sources == {
        "unanswered": 2,
        "suggested": 0,
        "not_solved": 0,
        "agent_reply": 2,
        "frequent_problem": 0,
    }
    data = engraving.as_dict()
    assert data["count"] == 4 and data["questions"][0] == {"text": "商品可以刻字吗", "count": 2}
    json.dumps(data)  # JSON-ready


def test_the_threshold_decides_what_groups(engine: Engine) -> None:
    class Angle:
        name, dimension = "angle", 2

        def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
            angles = {"a": 0.0, "b": 0.5, "c": 1.2}  # cos(a, b) = 0.88, cos(a, c) = 0.36
            return np.array(
                [[np.cos(angles[t[0]]), np.sin(angles[t[0]])] for t in texts], dtype=np.float32
            )

    for key in "abc":
        make_item(engine, key, f"{key} question text", key, 1)
    with session_factory(engine)() as session:
        pending = list(session.scalars(select(ReviewItem)))
    assert [len(g.items) for g in group_items(pending, Angle(), 0.8)] == [2, 1]
    assert [len(g.items) for g in group_items(pending, Angle(), 0.9)] == [1, 1, 1]
    assert group_items([], Angle()) == []


def test_the_queue_makes_its_encoder_once_and_encodes_each_question_once(
    engine: Engine, settings: Settings
) -> None:
    calls: list[list[str]] = []

    class Counting(KeywordEncoder):
        def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
            calls.append(list(texts))
            return super().encode(texts)

    made: list[Counting] = []
    queue = ReviewQueue(engine, settings, lambda: made.append(Counting()) or made[-1])
    assert made == []  # nothing loaded before it is needed
    make_item(engine, "q1", "商品可以刻字吗", "c1", 3)
    make_item(engine, "q2", "商品可以刻字吗", "c2", 2)
    queue.groups()
    queue.groups()
    make_item(engine, "q3", "能开发票吗", "c3", 1)
    assert [len(g.items) for g in queue.groups()] == [2, 1]
    assert len(made) == 1 and calls == [["商品可以刻字吗"], ["能开发票吗"]]


# ---------------------------------------------------------------------- decisions
def test_approving_a_group_appends_a_valid_knowledge_entry(
    engine: Engine, queue: ReviewQueue, settings: Settings
) -> None:
    seed(engine)
    queue.collect()
    group = next(g for g in queue.groups() if "刻字" in g.proposal.question)
    path = settings.knowledge_source_dir / "product_care.yml"
    before = path.read_text(encoding="utf-8")
    decision = queue.approve_entry(
        group.id,
        by="editor",
        question="商品可以刻字吗？",
        answer=group.proposal.answer,
        topic="product_care",
        alt_questions=[*group.proposal.alt_questions, "商品可以刻字吗？"],
        item_ids=group.item_ids,
    )
    after = path.read_text(encoding="utf-8")
    assert after.startswith(before)  # the rest of the file is kept as it was
    assert "    answer: |\n      可以刻字。" in after  # a literal block
    entry_id = decision.record["entry_id"]
    assert entry_id.startswith("product_care-")
    entry = {e.id: e for e in load_entries(settings.knowledge_source_dir)}[entry_id]
    assert entry.question == "商品可以刻字吗？" and entry.answer == ENGRAVE_ANSWER
    assert "商品可以刻字吗？" not in entry.alt_questions and entry.language == "zh"
    assert decision.record["file"] == "data/knowledge/product_care.yml"
    assert "make kb" in decision.next_step
    for item in queue.items(group.item_ids):
        assert item.status == ReviewStatus.approved and item.decided_by == "editor"
        assert item.decided_at is not None and item.decision == decision.record
    assert all(group.id != g.id for g in queue.groups())
    with pytest.raises(AlreadyDecided):
        queue.reject(group.id, by="other", item_ids=group.item_ids)


def test_merging_adds_the_questions_to_an_existing_entry(
    engine: Engine, queue: ReviewQueue, settings: Settings
) -> None:
    first = make_item(engine, "m1", "退款一般几天能到", "c1", 3)
    make_item(engine, "m2", "退款多久到账？", "c2", 2)  # the entry's own question already
    decision = queue.merge(first, by="editor", entry_id="returns-refund-time")
    assert decision.status == ReviewStatus.merged
    assert decision.record["added"] == ["退款一般几天能到"]
    entry = {e.id: e for e in load_entries(settings.knowledge_source_dir)}["returns-refund-time"]
    assert entry.alt_questions[-1] == "退款一般几天能到"
    assert {i.status for i in queue.items([first])} == {ReviewStatus.merged}


def test_approving_as_nlu_examples_inserts_them_under_the_intent(
    engine: Engine, queue: ReviewQueue, settings: Settings
) -> None:
    first = make_item(engine, "n1", "商品可以刻字吗", "c1", 3)
    make_item(engine, "n2", "耳机能刻字吗", "c2", 2)
    decision = queue.approve_examples(first, by="editor", intent="product_question")
    assert decision.record["intent"] == "product_question" and "make train" in decision.next_step
    path = settings.nlu_dir / "products.yml"
    assert decision.record["file"] == "data/nlu/products.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    block = next(i for i in data["nlu"] if i.get("intent") == "product_question")["examples"]
    assert block.endswith("- 商品可以刻字吗\n- 耳机能刻字吗\n")
    assert {i.status for i in queue.items(decision.item_ids)} == {ReviewStatus.approved}


def test_rejecting_writes_nothing(engine: Engine, queue: ReviewQueue, settings: Settings) -> None:
    first = make_item(engine, "r1", "火星上能用吗", "c1", 3)
    before = tree_digest(settings.data_dir)
    decision = queue.reject(first, by="editor", reason="  joke \n question ")
    assert decision.status == ReviewStatus.rejected and decision.record["reason"] == "joke question"
    assert tree_digest(settings.data_dir) == before
    (item,) = queue.items([first])
    assert item.status == ReviewStatus.rejected and item.decision["reason"] == "joke question"


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        ({"topic": "../returns"}, data_writer.UnknownTarget, "not a topic file name"),
        ({"topic": "a/b"}, data_writer.UnknownTarget, "not a topic file name"),
        ({"topic": "nope"}, data_writer.UnknownTarget, "No topic file nope.yml"),
        ({"answer": "  \n "}, data_writer.InvalidContent, "answer is empty"),
        ({"question": ""}, data_writer.InvalidContent, "question is empty"),
        ({"language": "fr"}, data_writer.InvalidContent, "zh or en"),
    ],
)
def test_bad_entries_are_refused_and_change_nothing(
    engine: Engine,
    queue: ReviewQueue,
    settings: Settings,
    call: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    first = make_item(engine, "x1", "商品可以刻字吗", "c1", 3)
    before = tree_digest(settings.data_dir)
    arguments = {"question": "商品可以刻字吗", "answer": "可以", "topic": "product_care", **call}
    with pytest.raises(error, match=message):
        queue.approve_entry(first, by="editor", **arguments)
    assert tree_digest(settings.data_dir) == before
    assert queue.items([first])[0].status == ReviewStatus.pending


def test_other_bad_decisions(engine: Engine, queue: ReviewQueue, settings: Settings) -> None:
    first = make_item(engine, "y1", "商品可以刻字吗", "c1", 3)
    before = tree_digest(settings.data_dir)
    with pytest.raises(data_writer.UnknownTarget, match="No knowledge entry"):
        queue.merge(first, by="e", entry_id="no-such-entry")
    with pytest.raises(data_writer.UnknownTarget, match="no intent"):
        queue.approve_examples(first, by="e", intent="no_such_intent")
    with pytest.raises(data_writer.InvalidContent, match="return_refund"):
        queue.approve_examples(first, by="e", intent="greet", texts=["我要退货"])
    with pytest.raises(data_writer.InvalidContent, match="entity markup"):
        queue.approve_examples(first, by="e", intent="greet", texts=["[KF1](order_number) 好"])
    with pytest.raises(ItemNotFound):
        queue.reject(999, by="e")
    with pytest.raises(ItemNotFound):
        queue.reject(first, by="e", item_ids=[first, 12345])
    assert tree_digest(settings.data_dir) == before
    queue.reject(first, by="e")
    with pytest.raises(AlreadyDecided):
        queue.reject(first, by="e")


def test_examples_are_compared_as_the_validator_compares_them(settings: Settings) -> None:
    """Punctuation, symbols, case and blanks next to Chinese do not make a new example."""
    before = tree_digest(settings.data_dir)
    with pytest.raises(data_writer.InvalidContent, match="return_refund"):
        data_writer.append_examples(settings.nlu_dir, "greet", ["我要 退货！👍"])
    result = data_writer.append_examples(settings.nlu_dir, "return_refund", ["我要退货～"])
    assert result.added == ()
    assert tree_digest(settings.data_dir) == before
    assert is_trivial("好的👍") and is_trivial("OK 谢谢")


def test_a_file_that_would_not_load_is_not_written(
    engine: Engine, queue: ReviewQueue, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = make_item(engine, "z1", "商品可以刻字吗", "c1", 3)
    broken = settings.knowledge_source_dir / "shipping.yml"
    broken.write_text(broken.read_text(encoding="utf-8") + "  - id: [oops\n", encoding="utf-8")
    with pytest.raises(ValidationFailed, match=r"data/knowledge/shipping.yml:\d+: bad YAML"):
        queue.approve_entry(first, by="e", question="q q q", answer="a", topic="product_care")
    broken.write_text((PROJECT_DATA / "knowledge" / "shipping.yml").read_text(encoding="utf-8"))

    real = data_writer.load_entries

    def refuse_copies(source: Path) -> Any:
        if "kefu-review-" in str(source):
            raise data_writer.SourceError(source / "product_care.yml", 7, "made-up problem")
        return real(source)

    monkeypatch.setattr(data_writer, "load_entries", refuse_copies)
    before = tree_digest(settings.data_dir)
    with pytest.raises(ValidationFailed, match=r"product_care\.yml:7: made-up problem"):
        queue.approve_entry(first, by="e", question="q q q", answer="a", topic="product_care")
    assert tree_digest(settings.data_dir) == before
    assert queue.items([first])[0].status == ReviewStatus.pending
    assert not list(settings.knowledge_source_dir.glob(".*.tmp"))


def test_english_entries_and_new_alt_question_lists(
    engine: Engine, queue: ReviewQueue, settings: Settings
) -> None:
    first = make_item(engine, "en1", "can you engrave my headphones", "c1", 3, language="en")
    decision = queue.approve_entry(
        first,
        by="e",
        question="Can you engrave my headphones?",
        answer="Yes: add the text (up to 10 characters) as an order note.",
        topic="product_care",
    )
    entry = {e.id: e for e in load_entries(settings.knowledge_source_dir)}[
        decision.record["entry_id"]
    ]
    assert entry.language == "en" and entry.alt_questions == ()
    path = settings.knowledge_source_dir / "product_care.yml"
    assert "    answer: |\n      Yes: add the text" in path.read_text(encoding="utf-8")


# ---------------------------------------------------------------------- CLI
def test_the_cli_collects_lists_and_decides(engine: Engine, queue: ReviewQueue) -> None:
    seed(engine)
    runner = CliRunner()
    result = runner.invoke(review, ["collect"], obj=queue)
    assert result.exit_code == 0 and "Collected 6 new review items" in result.output
    listed = runner.invoke(review, ["list", "--json"], obj=queue)
    assert listed.exit_code == 0, listed.output
    groups = json.loads(listed.output)["groups"]
    engraving = next(g for g in groups if "刻字" in g["proposal"]["question"])
    assert engraving["count"] == 3 and engraving["sources"]["agent_reply"] == 1
    table = runner.invoke(review, ["list"], obj=queue)
    assert f"#{engraving['id']}" in table.output and "answer: 可以刻字" in table.output
    refused = runner.invoke(review, ["approve", str(engraving["id"]), "--topic", ".."], obj=queue)
    assert refused.exit_code == 1 and "not a topic file name" in refused.output
    approved = runner.invoke(
        review, ["approve", str(engraving["id"]), "--topic", "product_care"], obj=queue
    )
    assert approved.exit_code == 0, approved.output
    assert "approved -> data/knowledge/product_care.yml" in approved.output
    assert "make kb" in approved.output
    rejected = runner.invoke(review, ["reject", str(engraving["id"])], obj=queue)
    assert rejected.exit_code == 1 and "No pending review group" not in rejected.output
    assert "already" in rejected.output
