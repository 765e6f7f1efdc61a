"""The canned replies (话术库): the shipped library, the API shape, search and file mistakes."""

from __future__ import annotations

import json
import re
from functools import partial
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli.main import main as cli
from bot.core.settings import PROJECT_ROOT
from bot.handoff.canned import (
    LEVELS,
    TEXT_MAX_CHARS,
    TITLE_MAX_CHARS,
    CannedLibrary,
    CannedRepliesError,
    ReplyEntry,
    as_api,
    default_canned_path,
    load_canned_replies,
    search,
)
from tests.app.conftest import edited_text, load_error, write_yaml

# A small library; the line numbers in the error tests below refer to it.
BASE = """\
version: 1
levels:
  basic:
    title: {zh: 基础话术, en: Basic}
    categories:
      greeting:
        title: {zh: 问候, en: Greeting}
        replies:
          hello:
            title: {zh: 问候, en: Hello}
            zh: 您好，很高兴为您服务。
            en: Hello, glad to help.
          bye:
            title: {zh: 告别, en: Goodbye}
            zh: 再见。
            en: Goodbye.
  advanced:
    title: {zh: 进阶话术, en: Advanced}
    categories:
      refund:
        title: {zh: 退款, en: Refunds}
        replies:
          timeline:
            title: {zh: 到账时间, en: Timeline}
            zh: 退款 1-3 个工作日原路退回。
            en: The refund is back within 1-3 working days.
  special:
    title: {zh: 特殊场景, en: Special}
    categories:
      safety:
        title: {zh: 安全, en: Safety}
        replies:
          stop:
            title: {zh: 停止使用, en: Stop using it}
            zh: |
              请立即停止使用，
              并拔掉电源。
            en: Please stop using it now.
"""

CATEGORIES = {
    "basic": {"greeting", "hold", "apology", "closing"},
    "advanced": {"soothing", "policy", "refund", "logistics", "payment"},
    "special": {"complaint_escalation", "safety", "vip", "media_legal", "outage"},
}
CJK = re.compile(r"[\u4e00-\u9fff]")


write = partial(write_yaml, name="canned_replies.yml")
edited = partial(edited_text, BASE)
error_of = partial(load_error, load_canned_replies, CannedRepliesError)


@pytest.fixture(scope="module")
def shipped() -> CannedLibrary:
    return load_canned_replies()


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> CannedLibrary:
    return load_canned_replies(write(tmp_path_factory.mktemp("canned"), BASE))


# --- the shipped library -----------------------------------------------------------------------


def test_shipped_library_has_the_three_levels(shipped: CannedLibrary) -> None:
    assert default_canned_path() == PROJECT_ROOT / "data" / "service" / "canned_replies.yml"
    api = as_api(shipped)
    assert [level["key"] for level in api["levels"]] == list(LEVELS)
    assert [level["title"] for level in api["levels"]] == [
        "基础话术 Basic",
        "进阶话术 Advanced",
        "特殊场景 Special",
    ]
    for level in api["levels"]:
        assert {category["key"] for category in level["categories"]} == CATEGORIES[level["key"]]
        for category in level["categories"]:
            assert 4 <= len(category["replies"]) <= 8, category["key"]


def test_shipped_replies_are_written_in_both_languages(shipped: CannedLibrary) -> None:
    ids = []
    for reply_id, reply in shipped.replies():
        ids.append(reply_id)
        assert re.fullmatch(r"[a-z]+\.[a-z_]+\.[a-z0-9_]+", reply_id)
        assert CJK.search(reply.zh) and CJK.search(reply.title.zh), reply_id
        assert not CJK.search(reply.en) and not CJK.search(reply.title.en), reply_id
        for text in (reply.zh, reply.en):
            assert "{" not in text and "}" not in text, reply_id
            assert text == text.strip() and len(text) <= TEXT_MAX_CHARS
        assert reply.text("zh") == reply.zh and reply.text("en-US") == reply.en
    assert len(ids) == len(set(ids)) >= 15 * 4


def test_shipped_library_through_the_check_command() -> None:
    result = CliRunner().invoke(cli, ["service", "check", "--canned", str(default_canned_path())])
    assert result.exit_code == 0, result.output
    assert "service canned replies: OK" in result.output


def test_the_check_command_names_the_mistake(tmp_path: Path) -> None:
    path = write(tmp_path, edited("bye:", "hello:"))
    result = CliRunner().invoke(cli, ["service", "check", "--canned", str(path)])
    assert result.exit_code == 1
    assert (
        f"{path}:13: duplicate key 'hello': each name may appear only once in the same mapping"
        in result.output
    )
    assert "service handoff: OK" in result.output


# --- the API shape -----------------------------------------------------------------------------


def test_as_api_gives_exactly_the_contract_shape(small: CannedLibrary) -> None:
    api = as_api(small)
    assert api == {
        "levels": [
            {
                "key": "basic",
                "title": "基础话术 Basic",
                "categories": [
                    {
                        "key": "greeting",
                        "title": "问候 Greeting",
                        "replies": [
                            {
                                "id": "basic.greeting.hello",
                                "title": "问候 Hello",
                                "zh": "您好，很高兴为您服务。",
                                "en": "Hello, glad to help.",
                            },
                            {
                                "id": "basic.greeting.bye",
                                "title": "告别 Goodbye",
                                "zh": "再见。",
                                "en": "Goodbye.",
                            },
                        ],
                    }
                ],
            },
            {
                "key": "advanced",
                "title": "进阶话术 Advanced",
                "categories": [
                    {
                        "key": "refund",
                        "title": "退款 Refunds",
                        "replies": [
                            {
                                "id": "advanced.refund.timeline",
                                "title": "到账时间 Timeline",
                                "zh": "退款 1-3 个工作日原路退回。",
                                "en": "The refund is back within 1-3 working days.",
                            }
                        ],
                    }
                ],
            },
            {
                "key": "special",
                "title": "特殊场景 Special",
                "categories": [
                    {
                        "key": "safety",
                        "title": "安全 Safety",
                        "replies": [
                            {
                                "id": "special.safety.stop",
                                "title": "停止使用 Stop using it",
                                "zh": "请立即停止使用，\n并拔掉电源。",
                                "en": "Please stop using it now.",
                            }
                        ],
                    }
                ],
            },
        ]
    }
    assert json.loads(json.dumps(api, ensure_ascii=False)) == api


def test_levels_keep_their_order_whatever_the_file_says(
    tmp_path: Path, small: CannedLibrary
) -> None:
    special_at = BASE.index("  special:")
    advanced_at = BASE.index("  advanced:")
    reordered = BASE[:advanced_at] + BASE[special_at:] + BASE[advanced_at:special_at]
    library = load_canned_replies(write(tmp_path, reordered))
    assert [level["key"] for level in as_api(library)["levels"]] == list(LEVELS)
    assert as_api(library) == as_api(small)


def test_get_a_reply_by_id(small: CannedLibrary) -> None:
    reply = small.get("basic.greeting.bye")
    assert reply is not None and reply.en == "Goodbye."
    assert small.get("basic.greeting.nope") is None
    assert small.get("nope") is None


# --- search ------------------------------------------------------------------------------------


def ids(found: list[ReplyEntry]) -> list[str]:
    return [entry["id"] for entry in found]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("goodbye", ["basic.greeting.bye"]),
        ("GOODBYE", ["basic.greeting.bye"]),
        ("  Goodbye ", ["basic.greeting.bye"]),
        ("ＧＯＯＤＢＹＥ", ["basic.greeting.bye"]),
        ("告别", ["basic.greeting.bye"]),
        ("timeline", ["advanced.refund.timeline"]),
        ("原路退回", ["advanced.refund.timeline"]),
        ("working days", ["advanced.refund.timeline"]),
        ("电源", ["special.safety.stop"]),
        ("glad", ["basic.greeting.hello"]),
        ("您", ["basic.greeting.hello"]),
        ("o", ["basic.greeting.hello", "basic.greeting.bye", "advanced.refund.timeline",
               "special.safety.stop"]),
        ("", ["basic.greeting.hello", "basic.greeting.bye", "advanced.refund.timeline",
              "special.safety.stop"]),
        ("refunds", []),  # category titles are not searched
        ("basic", []),  # ids are not searched
        ("nothing like this", []),
    ],
)  # fmt: skip
def test_search(small: CannedLibrary, query: str, expected: list[str]) -> None:
    assert ids(search(small, query)) == expected


def test_search_gives_replies_as_the_api_does(small: CannedLibrary) -> None:
    (found,) = search(small, "goodbye")
    assert found == as_api(small)["levels"][0]["categories"][0]["replies"][1]


def test_search_the_shipped_library(shipped: CannedLibrary) -> None:
    assert ids(search(shipped, "REFUND")) == ids(search(shipped, "refund"))
    assert "advanced.refund.refund_timeline" in ids(search(shipped, "退款"))
    assert ids(search(shipped, "")) == [reply_id for reply_id, _ in shipped.replies()]


# --- validation: every mistake with its file and line -----------------------------------------

TOO_LONG_TEXT = "长" * (TEXT_MAX_CHARS + 1)
TOO_LONG_TITLE = "x" * (TITLE_MAX_CHARS + 1)
HELLO = "levels.basic.categories.greeting.replies.hello"
BYE = "levels.basic.categories.greeting.replies.bye"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "            en: Hello, glad to help.\n",
            "",
            f"9: {HELLO}.en: is required but missing",
        ),
        ("en: Hello, glad to help.", "en: ''", f"12: {HELLO}.en: must not be empty"),
        ("en: Hello, glad to help.", "en: '   '", f"12: {HELLO}.en: must not be empty"),
        ("en: Hello, glad to help.", "en:", f"12: {HELLO}.en: must be a valid string"),
        ("en: Hello, glad to help.", "en: 42", f"12: {HELLO}.en: must be a valid string (got 42)"),
        (
            "zh: 再见。",
            f"zh: {TOO_LONG_TEXT}",
            f"15: {BYE}.zh: is {TEXT_MAX_CHARS + 1} characters long;"
            f" keep it to at most {TEXT_MAX_CHARS}",
        ),
        (
            "en: Hello}",
            f"en: {TOO_LONG_TITLE}}}",
            f"10: {HELLO}.title.en: is {TITLE_MAX_CHARS + 1} characters long;"
            f" keep it to at most {TITLE_MAX_CHARS}",
        ),
        (
            "title: {zh: 问候, en: Hello}",
            "title: {zh: 问候}",
            f"10: {HELLO}.title.en: is required but missing",
        ),
        (
            "zh: 再见。",
            "zh: 再见，{customer_name}。",
            f"15: {BYE}.zh: '{{customer_name}}' looks like a placeholder; placeholders are not"
            " filled in, write the text as it is sent",
        ),
        (
            "en: Goodbye.",
            "en: Goodbye {{name}}.",
            f"16: {BYE}.en: '{{{{name}}}}' looks like a placeholder",
        ),
        (
            "bye:",
            "hello:",
            "13: duplicate key 'hello': each name may appear only once in the same mapping",
        ),
        (
            "bye:",
            "Bye:",
            "13: levels.basic.categories.greeting.replies.Bye: invalid name 'Bye': use lower-case"
            " letters, digits and '_', starting with a letter",
        ),
        (
            "greeting:",
            "greeting-1:",
            "6: levels.basic.categories.greeting-1: invalid name 'greeting-1'",
        ),
        (
            "title: {zh: 告别, en: Goodbye}",
            "title: {zh: 问候, en: Goodbye}",
            f"14: {BYE}.title.zh: the same title as basic.greeting.hello; titles in a category"
            " must differ",
        ),
        (
            "title: {zh: 告别, en: Goodbye}",
            "title: {zh: 告别, en: HELLO}",
            f"14: {BYE}.title.en: the same title as basic.greeting.hello",
        ),
        (
            "zh: 再见。",
            "zh: 您好，很高兴为您服务。",
            f"15: {BYE}.zh: the same text as basic.greeting.hello",
        ),
        (
            "en: Please stop using it now.",
            "en: goodbye.",
            "38: levels.special.categories.safety.replies.stop.en: the same text as"
            " basic.greeting.bye",
        ),
        ("  special:", "  expert:", "27: levels: unknown key 'expert' (allowed here: basic,"),
        (
            "  special:",
            "  specal:",
            "27: levels: unknown key 'specal' (did you mean 'special'?)",
        ),
        (
            "            zh: 再见。\n",
            "            zh: 再见。\n            text: x\n",
            f"16: {BYE}: unknown key 'text' (allowed here: title, zh, en)",
        ),
        (
            "        replies:\n          timeline:",
            "        replys:\n          timeline:",
            "22: levels.advanced.categories.refund: unknown key 'replys' (did you mean 'replies'?)",
        ),
        (
            "      refund:\n        title: {zh: 退款, en: Refunds}\n        replies:\n"
            "          timeline:\n            title: {zh: 到账时间, en: Timeline}\n"
            "            zh: 退款 1-3 个工作日原路退回。\n"
            "            en: The refund is back within 1-3 working days.\n",
            "      refund:\n        title: {zh: 退款, en: Refunds}\n        replies: {}\n",
            "22: levels.advanced.categories.refund.replies: add at least one reply",
        ),
        (
            "  special:\n    title: {zh: 特殊场景, en: Special}\n    categories:\n",
            "  special:\n    title: {zh: 特殊场景, en: Special}\n    categories: {}\n    old:\n",
            "30: levels.special: unknown key 'old'",
        ),
        ("version: 1", "version: 2", "1: version: must be 1 (got 2)"),
        (
            "title: {zh: 基础话术, en: Basic}",
            "title: 基础话术",
            "4: levels.basic.title: must be a mapping (key: value lines)",
        ),
        (
            "      refund:\n        title: {zh: 退款, en: Refunds}\n        replies:\n"
            "          timeline:\n            title: {zh: 到账时间, en: Timeline}\n"
            "            zh: 退款 1-3 个工作日原路退回。\n"
            "            en: The refund is back within 1-3 working days.\n",
            "      refund:\n        title: {zh: 退款, en: Refunds}\n        replies: [timeline]\n",
            "22: levels.advanced.categories.refund.replies: must be a mapping (key: value lines)",
        ),
        (
            "en: Hello, glad to help.",
            "en: Hello: glad to help.",
            "12: YAML syntax error: mapping values are not allowed here (put a text that contains"
            ' ": " in quotes)',
        ),
    ],
)
def test_invalid_library_names_file_line_and_place(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    path = write(tmp_path, edited(old, new))
    message = error_of(path)
    assert any(line.startswith(f"{path}:{expected}") for line in message.splitlines()), message


def test_a_missing_level_is_named(tmp_path: Path) -> None:
    text = BASE[: BASE.index("  special:")]
    message = error_of(write(tmp_path, text))
    assert message.endswith(":2: levels.special: is required but missing")


def test_every_mistake_is_listed_in_file_order(tmp_path: Path) -> None:
    text = (
        BASE.replace("en: Goodbye.", "en: ''")
        .replace("version: 1", "version: 0")
        .replace("title: {zh: 到账时间, en: Timeline}", "title: {zh: 到账时间}")
    )
    lines = error_of(write(tmp_path, text)).splitlines()
    assert [line.split(":")[1] for line in lines] == ["1", "16", "24"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", ": the file is empty"),
        ("[basic, advanced]\n", ":1: must hold keys such as 'version: 1'"),
        ("version: 1\nlevels: {\n", ":3: YAML syntax error:"),
    ],
)
def test_unusable_files(tmp_path: Path, content: str, expected: str) -> None:
    path = write(tmp_path, content)
    assert error_of(path).startswith(f"{path}{expected}")


def test_a_missing_file(tmp_path: Path) -> None:
    assert error_of(tmp_path / "nope.yml") == f"{tmp_path / 'nope.yml'}: file not found"
