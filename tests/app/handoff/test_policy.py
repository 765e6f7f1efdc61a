"""The handoff policy: the shipped file, every validation error with its line, negative words."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from bot.cli.main import main as cli
from bot.core.settings import PROJECT_ROOT
from bot.handoff.policy import (
    HandoffPolicy,
    HandoffPolicyError,
    HandoffReason,
    default_handoff_path,
    is_negative,
    load_handoff_policy,
    negative_streak,
    reason_label,
)
from tests.app.conftest import edited_text, load_error, write_yaml

# A small policy; the line numbers in the error tests below refer to it.
BASE = """\
version: 1
triggers:
  explicit_request:
    intents: [ask_human]
  consecutive_misses:
    count: 2
  major_complaint: true
  urgent_tier: true
  negative_sentiment:
    streak: 3
    words:
      zh: [垃圾, 气死, 太差, 失望, 不靠谱]
      en: [terrible, angry, fed up, "rip-off"]
    negations:
      zh: [不, 没有]
      en: [not, "n't", "no"]
  vip:
    enabled: true
queue:
  online_window_minutes: 2
"""


write = partial(write_yaml, name="handoff.yml")
edited = partial(edited_text, BASE)
error_of = partial(load_error, load_handoff_policy, HandoffPolicyError)


@pytest.fixture(scope="module")
def shipped() -> HandoffPolicy:
    return load_handoff_policy()


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> HandoffPolicy:
    return load_handoff_policy(write(tmp_path_factory.mktemp("policy"), BASE))


# --- the shipped file --------------------------------------------------------------------------


def test_shipped_policy_follows_the_contract(shipped: HandoffPolicy) -> None:
    assert default_handoff_path() == PROJECT_ROOT / "data" / "service" / "handoff.yml"
    assert shipped.explicit_intents == ("ask_human",)
    assert shipped.miss_count == 2
    assert shipped.negative_streak_limit == 3
    assert shipped.major_complaint is True
    assert shipped.urgent_tier is True
    assert shipped.vip_enabled is True
    assert shipped.queue.online_window_minutes == 2
    assert shipped.online_window.total_seconds() == 120
    words = shipped.triggers.negative_sentiment.words
    assert 30 <= len(words.zh) <= 60
    assert 30 <= len(words.en) <= 60
    negations = shipped.triggers.negative_sentiment.negations
    assert negations is not None
    assert {"不", "没"} <= set(negations.zh)
    assert {"not", "n't", "never", "no"} <= set(negations.en)


def test_shipped_policy_names_only_intents_of_the_domain(shipped: HandoffPolicy) -> None:
    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))
    known = {next(iter(i)) if isinstance(i, dict) else i for i in domain["intents"]}
    assert set(shipped.explicit_intents) <= known


def test_shipped_words_are_clean(shipped: HandoffPolicy) -> None:
    words = shipped.triggers.negative_sentiment.words
    assert all(not any(ch.isascii() and ch.isalpha() for ch in word) for word in words.zh)
    assert all(word.isascii() and word == word.strip().lower() for word in words.en)


@pytest.mark.parametrize(
    "text",
    [
        "什么垃圾服务",
        "气死我了",
        "你们太差了！",
        "真的很失望",
        "骗子！",
        "退钱",
        "我要投诉你们",
        "无语了",
        "受够了",
        "This is terrible",
        "I'm so ANGRY right now",
        "worst shop ever",
        "this is a scam",
        "I am fed up with this",
        "useless bot",
    ],
)
def test_shipped_words_catch_typical_complaints(shipped: HandoffPolicy, text: str) -> None:
    assert is_negative(text, shipped)


@pytest.mark.parametrize(
    "text",
    [
        "你好，我想查一下订单 KF202611200001",
        "谢谢，问题解决了",
        "不失望，挺好的",
        "没有生气，只是问问",
        "滚筒洗衣机什么时候发货",
        "灯泡坏了，能换吗",
        "I'm not angry, just asking",
        "Thanks, that was helpful",
        "whatever works for you",
        "it isn't terrible",
        "Can you check order KF202611200001?",
    ],
)
def test_shipped_words_leave_ordinary_messages(shipped: HandoffPolicy, text: str) -> None:
    assert not is_negative(text, shipped)


def test_the_check_command(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["service", "check"])
    assert result.exit_code == 0, result.output
    assert "service handoff: OK" in result.output
    assert "service canned replies: OK" in result.output
    broken = write(tmp_path, edited("count: 2", "count: 0"))
    result = runner.invoke(cli, ["service", "check", "--handoff", str(broken)])
    assert result.exit_code == 1
    assert f"{broken}:6: triggers.consecutive_misses.count: must be greater" in result.output
    assert "service policy: OK" in result.output
    result = runner.invoke(cli, ["service", "check", "--handoff", str(tmp_path / "nope.yml")])
    assert result.exit_code == 1
    assert "nope.yml: file not found" in result.output


# --- reasons -----------------------------------------------------------------------------------


def test_reasons_are_the_contract_values() -> None:
    assert [reason.value for reason in HandoffReason] == [
        "explicit_request",
        "consecutive_misses",
        "major_complaint",
        "urgent_tier",
        "negative_sentiment",
        "vip_customer",
        "correction_limit",
    ]
    assert HandoffReason("vip_customer") is HandoffReason.vip_customer


def test_reason_labels() -> None:
    reason = HandoffReason.explicit_request
    assert reason.label() == "客户要求人工 · Customer asked for a person"
    assert reason.label("zh") == "客户要求人工"
    assert reason.label("zh-CN") == "客户要求人工"
    assert reason.label("en") == "Customer asked for a person"
    assert reason.label("fr") == "Customer asked for a person"
    for each in HandoffReason:
        zh, en = each.label("zh"), each.label("en")
        assert zh and en and zh != en
        assert each.label() == f"{zh} · {en}"
    assert len({each.label() for each in HandoffReason}) == len(HandoffReason)


def test_labels_of_stored_reasons() -> None:
    assert reason_label("urgent_tier") == HandoffReason.urgent_tier.label()
    assert reason_label("vip_customer", "zh") == "VIP 客户"
    assert reason_label("something_new") == "something_new"


# --- validation: every mistake with its file and line -----------------------------------------


def test_the_small_policy_loads(small: HandoffPolicy) -> None:
    assert small.triggers.negative_sentiment.words.en == ("terrible", "angry", "fed up", "rip-off")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "count: 2",
            "count: 0",
            "6: triggers.consecutive_misses.count: must be greater than or equal to 1 (got 0)",
        ),
        (
            "count: 2",
            "count: two",
            "6: triggers.consecutive_misses.count: must be a valid integer (got 'two')",
        ),
        (
            "count: 2",
            "count: true",
            "6: triggers.consecutive_misses.count: must be a valid integer (got True)",
        ),
        (
            "count: 2",
            "count: 2.5",
            "6: triggers.consecutive_misses.count: must be a valid integer (got 2.5)",
        ),
        (
            "streak: 3",
            "streak: -1",
            "10: triggers.negative_sentiment.streak: must be greater than or equal to 1 (got -1)",
        ),
        (
            "online_window_minutes: 2",
            "online_window_minutes: 0",
            "20: queue.online_window_minutes: must be greater than or equal to 1 (got 0)",
        ),
        (
            "major_complaint: true",
            "major_complaint: maybe",
            "7: triggers.major_complaint: must be a valid boolean (got 'maybe')",
        ),
        (
            "enabled: true",
            "enabled: 1",
            "18: triggers.vip.enabled: must be a valid boolean (got 1)",
        ),
        ("version: 1", "version: 2", "1: version: must be 1 (got 2)"),
        (
            "queue:",
            "queues:",
            "19: unknown key 'queues' (did you mean 'queue'?) (allowed here: version, triggers,"
            " queue)",
        ),
        (
            "streak: 3",
            "streek: 3",
            "10: triggers.negative_sentiment: unknown key 'streek' (did you mean 'streak'?)",
        ),
        (
            "zh: [不, 没有]",
            "zh: [不, 没有]\n      jp: [x]",
            "16: triggers.negative_sentiment.negations: unknown key 'jp' (allowed here: zh, en)",
        ),
        ("  urgent_tier: true\n", "", "2: triggers.urgent_tier: is required but missing"),
        ("version: 1\n", "", "1: version: is required but missing"),
        (
            "zh: [垃圾, 气死, 太差, 失望, 不靠谱]",
            "zh: []",
            "12: triggers.negative_sentiment.words.zh: list at least one word",
        ),
        (
            "zh: [垃圾, 气死, 太差, 失望, 不靠谱]",
            "zh:",
            "12: triggers.negative_sentiment.words.zh: list at least one word",
        ),
        (
            'en: [terrible, angry, fed up, "rip-off"]',
            "en: []",
            "13: triggers.negative_sentiment.words.en: list at least one word",
        ),
        (
            "zh: [垃圾, 气死, 太差, 失望, 不靠谱]",
            "zh: [垃圾, '']",
            "12: triggers.negative_sentiment.words.zh[1]: must not be empty",
        ),
        (
            "intents: [ask_human]",
            "intents: []",
            "4: triggers.explicit_request.intents: list at least one intent",
        ),
        (
            "zh: [垃圾, 气死, 太差, 失望, 不靠谱]",
            "zh: 垃圾",
            "12: triggers.negative_sentiment.words.zh: must be a list",
        ),
        (
            "    words:\n",
            "    words: 垃圾\n    old_words:\n",
            "12: triggers.negative_sentiment: unknown key 'old_words'",
        ),
        (
            "enabled: true",
            "enabled: [true]",
            "18: triggers.vip.enabled: must be a valid boolean",
        ),
        (
            "  vip:\n    enabled: true\n",
            "  vip: true\n",
            "17: triggers.vip: must be a mapping (key: value lines)",
        ),
        (
            '    negations:\n      zh: [不, 没有]\n      en: [not, "n\'t", "no"]\n',
            "    negations: {}\n",
            "14: triggers.negative_sentiment.negations: list at least one keyword under zh or en",
        ),
        (
            '"n\'t", "no"]',
            '"n\'t", no]',
            "16: triggers.negative_sentiment.negations.en[2]: False was read as yes/no: put the"
            ' keyword in quotes, e.g. "no" or "on"',
        ),
        (
            "zh: [垃圾, 气死, 太差, 失望, 不靠谱]",
            "zh: [垃圾, 气死, 垃圾]",
            "12: triggers.negative_sentiment.words.zh[2]: '垃圾' is already listed under"
            " triggers.negative_sentiment.words.zh; keep one word",
        ),
        (
            "en: [terrible, angry",
            "en: [terrible, Terrible",
            "13: triggers.negative_sentiment.words.en[1]: 'Terrible' is already listed under"
            " triggers.negative_sentiment.words.en; keep one word",
        ),
        (
            "fed up,",
            "ｔｅｒｒｉｂｌｅ,",
            "13: triggers.negative_sentiment.words.en[2]: 'ｔｅｒｒｉｂｌｅ' is already listed",
        ),
        (
            'en: [terrible, angry, fed up, "rip-off"]',
            'en: [terrible, angry, fed up, "rip-off", 垃圾]',
            "13: triggers.negative_sentiment.words.en[4]: '垃圾' is already listed under"
            " triggers.negative_sentiment.words.zh; keep one word",
        ),
        (
            "zh: [垃圾, 气死",
            "zh: [没有, 气死",
            "12: triggers.negative_sentiment.words.zh[0]: '没有' is also listed under negations;"
            " remove it from one",
        ),
        (
            "zh: [不, 没有]",
            "zh: [不, 没有, 不]",
            "15: triggers.negative_sentiment.negations.zh[2]: '不' is already listed under"
            " triggers.negative_sentiment.negations.zh; keep one negation",
        ),
        (
            "intents: [ask_human]",
            "intents: [ask_human, ask_human]",
            "4: triggers.explicit_request.intents[1]: 'ask_human' is already listed under"
            " triggers.explicit_request.intents; keep one intent",
        ),
        (
            "    count: 2\n",
            "    count: 2\n    count: 3\n",
            "7: duplicate key 'count': each name may appear only once in the same mapping",
        ),
        (
            "intents: [ask_human]",
            "intents: [ask_human",
            "5: YAML syntax error: expected ',' or ']', but got ':'",
        ),
    ],
)
def test_invalid_policy_names_file_line_and_place(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    path = write(tmp_path, edited(old, new))
    message = error_of(path)
    assert any(line.startswith(f"{path}:{expected}") for line in message.splitlines()), message


def test_a_duplicate_in_a_block_list_names_its_own_line(tmp_path: Path) -> None:
    text = edited(
        'en: [terrible, angry, fed up, "rip-off"]',
        "en:\n        - terrible\n        - angry\n        - TERRIBLE",
    )
    message = error_of(write(tmp_path, text))
    assert message.endswith(
        ":16: triggers.negative_sentiment.words.en[2]: 'TERRIBLE' is already listed under"
        " triggers.negative_sentiment.words.en; keep one word"
    )


def test_every_mistake_is_listed_in_file_order(tmp_path: Path) -> None:
    text = (
        BASE.replace("version: 1", "version: 3")
        .replace("online_window_minutes: 2", "online_window_minutes: soon")
        .replace("count: 2", "count: 0")
        .replace("major_complaint: true", "major_complaint: often")
    )
    path = write(tmp_path, text)
    lines = error_of(path).splitlines()
    assert [line.split(":")[1] for line in lines] == ["1", "6", "7", "20"]
    assert all(line.startswith(f"{path}:") for line in lines)


def test_checks_after_the_schema_are_all_listed(tmp_path: Path) -> None:
    text = BASE.replace("[垃圾, 气死,", "[垃圾, 垃圾, 不,").replace("[ask_human]", "[a, a]")
    lines = error_of(write(tmp_path, text)).splitlines()
    assert [line.split(":")[1] for line in lines] == ["4", "12", "12"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "the file is empty"),
        ("# only a comment\n", "the file is empty"),
        ("- version: 1\n", "1: must hold keys such as 'version: 1'"),
        ("version: 1\n---\nversion: 1\n", "2: YAML syntax error: but found another document"),
    ],
)
def test_unusable_files(tmp_path: Path, content: str, expected: str) -> None:
    path = write(tmp_path, content)
    assert error_of(path).startswith(f"{path}:"), error_of(path)
    assert expected in error_of(path)


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    assert error_of(tmp_path / "nope.yml") == f"{tmp_path / 'nope.yml'}: file not found"
    latin = tmp_path / "latin.yml"
    latin.write_bytes("version: 1\n# caf\xe9\n".encode("latin-1"))
    assert error_of(latin).startswith(f"{latin}:2: not valid UTF-8 (invalid continuation byte)")
    assert error_of(tmp_path).startswith(f"{tmp_path}: cannot read the file")


def test_files_inside_the_project_are_named_relative_to_it() -> None:
    folder = PROJECT_ROOT / "var" / "test-handoff-policy"
    folder.mkdir(parents=True, exist_ok=True)
    path = write(folder, edited("count: 2", "count: 0"))
    try:
        assert error_of(path).startswith("var/test-handoff-policy/handoff.yml:6: ")
    finally:
        path.unlink()
        folder.rmdir()


def test_negations_may_be_left_out(tmp_path: Path) -> None:
    text = edited('    negations:\n      zh: [不, 没有]\n      en: [not, "n\'t", "no"]\n', "")
    policy = load_handoff_policy(write(tmp_path, text))
    assert policy.triggers.negative_sentiment.negations is None
    assert is_negative("不失望", policy)
    assert is_negative("not angry", policy)


# --- negative words ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "negative"),
    [
        # Chinese words match anywhere in the text.
        ("垃圾", True),
        ("这是什么垃圾东西", True),
        ("我都快气死了！！", True),
        ("服务太差", True),
        # Full-width and case do not matter.
        ("ＴＥＲＲＩＢＬＥ service", True),
        # English words match whole words only, case-insensitive.
        ("This is TERRIBLE.", True),
        ("Terribleness", False),
        ("I'm angry!", True),
        ("angrybird", False),
        ("we are fed   up", True),
        ("a total rip-off", True),
        ("我很angry", True),
        # A Chinese negation up to 2 characters before cancels the word...
        ("不失望", False),
        ("我不会失望的", False),
        ("没有太失望", False),
        ("不会再失望", False),
        # ...but not from further away or across punctuation.
        ("不想说了真的太失望", True),
        ("不，失望", True),
        ("不好，太差了", True),
        ("不 失望", True),
        # A word that begins with a negation is itself negative.
        ("你们真不靠谱", True),
        # An English negation is the word right before.
        ("I am not angry", False),
        ("NOT terrible at all", False),
        ("it isn't terrible", False),
        ("it isn\u2019t terrible", False),
        ("no rip-off here", False),
        ("not really angry", True),
        ("knot terrible", True),
        ("not, terrible", True),
        # A later word that is not negated still counts.
        ("not angry, just terrible", True),
        ("不失望，但是太差了", True),
        ("", False),
        ("你好", False),
        ("order KF202611200001", False),
    ],
)
def test_is_negative(small: HandoffPolicy, text: str, negative: bool) -> None:
    assert is_negative(text, small) is negative


@pytest.mark.parametrize(
    ("texts", "streak"),
    [
        ([], 0),
        (["你好"], 0),
        (["垃圾"], 1),
        (["垃圾", "太差", "气死"], 3),
        (["垃圾", "太差", "气死", "terrible"], 4),
        (["垃圾", "好的", "太差", "气死"], 2),
        (["垃圾", "太差", "好的"], 0),
        (["垃圾", "不失望"], 0),
        (["ok", "terrible", "I am not angry", "angry"], 1),
    ],
)
def test_negative_streak(small: HandoffPolicy, texts: list[str], streak: int) -> None:
    assert negative_streak(texts, small) == streak


def test_streak_reaches_the_policy_limit(shipped: HandoffPolicy) -> None:
    texts = ["我的订单怎么还没到", "太差了", "什么垃圾服务", "气死我了"]
    assert negative_streak(texts, shipped) >= shipped.negative_streak_limit
    assert negative_streak(texts[:-1], shipped) < shipped.negative_streak_limit
