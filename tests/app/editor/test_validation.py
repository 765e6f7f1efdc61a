"""`kefu validate`: every check on tmp copies of the data, and the CLI."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bot.cli.validate import validate
from bot.core.settings import PROJECT_ROOT, Settings, get_settings
from bot.editor.text import normalize_text
from bot.editor.validation.dialogue import check_dialogue
from bot.editor.validation.findings import Finding, summary
from bot.editor.validation.knowledge import check_knowledge
from bot.editor.validation.nlu import (
    check_duplicate_examples,
    check_entity_spans,
    check_examples_per_language,
)
from bot.editor.validation.runner import run_rasa_validate, validate_project
from bot.editor.validation.yaml_syntax import check_yaml_syntax
from knowledge_index import HashingEncoder


class AliasEncoder:
    """Texts with the same alias get the same vector (cosine 1); all others are orthogonal."""

    name = "alias"
    dimension = 4096

    def __init__(self, aliases: dict[str, str] | None = None) -> None:
        self.aliases = aliases or {}
        self.slots: dict[str, int] = {}

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            key = self.aliases.get(text, text)
            slot = self.slots.setdefault(key, len(self.slots) % self.dimension)
            vectors[row, slot] = 1.0
        return vectors


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A tmp copy of the project's data/."""
    return Path(shutil.copytree(PROJECT_ROOT / "data", tmp_path / "data"))


@pytest.fixture
def settings(data_dir: Path, tmp_path: Path) -> Settings:
    return Settings(data_dir=data_dir, var_dir=tmp_path / "var")


@pytest.fixture
def cli_env(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """`get_settings()` reads the tmp data copy."""
    monkeypatch.setenv("KEFU_DATA_DIR", str(data_dir))
    monkeypatch.setenv("KEFU_VAR_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield data_dir
    get_settings.cache_clear()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def line_of(path: Path, needle: str, start: int = 1) -> int:
    """The 1-based line of the first line at or after `start` containing `needle`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(n for n in range(start, len(lines) + 1) if needle in lines[n - 1])


def replace_line(path: Path, old: str, new: str) -> int:
    """Replaces the first line containing `old` by `old -> new` and returns its number."""
    number = line_of(path, old)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[number - 1] = lines[number - 1].replace(old, new)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return number


def errors(findings: Sequence[Finding]) -> list[Finding]:
    return [finding for finding in findings if finding.severity == "error"]


def nlu_file(tmp_path: Path, body: str) -> Path:
    text = 'version: "3.1"\nnlu:\n' + textwrap.dedent(body).lstrip("\n")
    return write(tmp_path / "nlu" / "test.yml", text)


# --- 1. YAML syntax -------------------------------------------------------------------------


def test_broken_yaml_names_file_and_line_and_the_other_files_are_still_checked(
    settings: Settings, data_dir: Path
) -> None:
    stories = data_dir / "stories" / "orders.yml"
    broken = replace_line(stories, "- action: action_order_status", "- action: x: y")
    rules = data_dir / "rules" / "orders.yml"
    typo = replace_line(rules, "- intent: order_status", "- intent: order_stauts")

    findings = validate_project(settings, encoder=HashingEncoder(), run_rasa=False)

    in_broken = [f for f in findings if f.path == "data/stories/orders.yml"]
    assert len(in_broken) == 1
    assert in_broken[0].severity == "error"
    assert in_broken[0].line == broken
    assert "YAML syntax error: mapping values are not allowed" in in_broken[0].message
    assert in_broken[0].format().startswith(f"data/stories/orders.yml:{broken}: error: YAML")
    assert "\n  fix: " in in_broken[0].format()
    assert any(f.path == "data/rules/orders.yml" and f.line == typo for f in findings)


def test_duplicate_key_and_domain_syntax_errors_are_reported(tmp_path: Path) -> None:
    twice = write(tmp_path / "a.yml", "version: '3.1'\nnlu: []\nversion: '3.1'\n")
    tabs = write(tmp_path / "b.yml", "nlu:\n\t- intent: greet\n")
    fine = write(tmp_path / "c.yml", "nlu: []\n")

    findings = check_yaml_syntax([twice, tabs, fine], roots=[tmp_path])

    assert [(f.path, f.line) for f in findings] == [("a.yml", 3), ("b.yml", 2)]
    assert "duplicate key 'version'" in findings[0].message
    assert "tabs" in findings[1].fix


# --- 2. stories and rules -------------------------------------------------------------------


def test_unknown_intent_in_a_story_is_an_error_at_its_line_with_the_closest_name(
    settings: Settings, data_dir: Path
) -> None:
    story = data_dir / "stories" / "orders.yml"
    number = replace_line(story, "- intent: greet", "- intent: greetings")

    findings = validate_project(settings, encoder=HashingEncoder(), run_rasa=False)

    assert errors(findings) == [
        Finding(
            "error",
            "data/stories/orders.yml",
            number,
            "unknown intent 'greetings' (not in domain.yml)",
            "did you mean 'greet'?",
        )
    ]


def test_unknown_action_form_slot_and_or_intent_in_rules(data_dir: Path) -> None:
    rules = write(
        data_dir / "rules" / "extra.yml",
        """
        version: "3.1"
        rules:
          - rule: typos
            condition:
              - active_loop: spin_from
            steps:
              - or:
                  - intent: affirm
                  - intent: thnak
              - action: action_order_statsu
              - slot_was_set:
                  - order_numbr: KF202611200001
              - action: action_listen
              - action: utter_greet
        """,
    )
    findings = check_dialogue(
        [rules],
        domain_path=PROJECT_ROOT / "domain.yml",
        nlu_paths=sorted((data_dir / "nlu").glob("*.yml")),
        roots=[data_dir.parent],
    )

    got = {(f.line, f.message, f.fix) for f in findings}
    assert got == {
        (5, "unknown form 'spin_from' in active_loop", "did you mean 'spin_form'?"),
        (9, "unknown intent 'thnak' (not in domain.yml)", "did you mean 'thank'?"),
        (
            10,
            "unknown action 'action_order_statsu' (not in domain.yml)",
            "did you mean 'action_order_status'?",
        ),
        (12, "unknown slot 'order_numbr'", "did you mean 'order_number'?"),
    }
    assert {f.path for f in findings} == {"data/rules/extra.yml"}


def test_domain_intent_without_examples_is_an_error_unless_a_button_sends_it(
    tmp_path: Path,
) -> None:
    domain = write(
        tmp_path / "domain.yml",
        """
        version: "3.1"
        intents: [greet, choose, forgotten]
        responses:
          utter_greet:
            - text: hi
              buttons:
                - title: yes
                  payload: '/choose{"choice": "yes"}'
        """,
    )
    nlu = nlu_file(tmp_path, "- intent: greet\n  examples: |\n    - hi\n")
    story = write(
        tmp_path / "stories.yml",
        """
        stories:
          - story: s
            steps:
              - intent: greet
              - action: utter_greet
              - intent: choose
              - action: utter_greet
              - intent: forgotten
              - action: utter_greet
              - intent: nlu_fallback
        """,
    )
    findings = check_dialogue([story], domain_path=domain, nlu_paths=[nlu], roots=[tmp_path])

    assert [(f.line, f.message) for f in findings] == [
        (8, "intent 'forgotten' has no NLU examples and no button sends it")
    ]


def test_nlu_intent_missing_from_the_domain_is_an_error(tmp_path: Path) -> None:
    domain = write(tmp_path / "domain.yml", "intents: [greet]\n")
    nlu = nlu_file(
        tmp_path,
        """
        - intent: greet
          examples: |
            - hi
        - intent: gret
          examples: |
            - hello
        """,
    )
    findings = check_dialogue([], domain_path=domain, nlu_paths=[nlu], roots=[tmp_path])

    assert [(f.path, f.line, f.fix) for f in findings] == [
        ("nlu/test.yml", 6, "rename it to 'greet'")
    ]


# --- 3. entity spans ------------------------------------------------------------------------


def test_entity_span_inside_a_jieba_token_is_a_warning_with_a_fix(tmp_path: Path) -> None:
    nlu = nlu_file(
        tmp_path,
        """
        - intent: order_status
          examples: |
            - 订单[KF202611200001](order_number)到哪了
            - [订](product)单到哪了
            - where is my [ord]{"entity": "product"}er
            - 查一下[KF202611200002](order_number)
        """,
    )
    findings = check_entity_spans(
        [nlu], PROJECT_ROOT / "data" / "jieba" / "kefu.txt", roots=[tmp_path, PROJECT_ROOT]
    )

    assert [(f.severity, f.path, f.line) for f in findings] == [
        ("warning", "nlu/test.yml", 6),
        ("warning", "nlu/test.yml", 7),
    ]
    assert "entity '订' (product)" in findings[0].message
    assert findings[0].fix == "add '订' to data/jieba/kefu.txt, or widen the span to '订单'"
    assert findings[1].fix == "widen the span to 'order'"


def test_entity_spans_of_the_real_data_align(data_dir: Path) -> None:
    nlu = sorted((data_dir / "nlu").glob("*.yml"))
    assert check_entity_spans(nlu, data_dir / "jieba" / "kefu.txt") == []
    # the shop's dictionary makes 退货运费险 one token (plain jieba: 退 / 货运费 / 险)
    example = nlu_file(
        data_dir,
        """
        - intent: return_refund
          examples: |
            - 我买了退[货运费](fee)险吗
        """,
    )
    with_dictionary = check_entity_spans(
        [example], data_dir / "jieba" / "kefu.txt", roots=[data_dir.parent]
    )
    assert [f.fix for f in with_dictionary] == [
        "add '货运费' to data/jieba/kefu.txt, or widen the span to '退货运费险'"
    ]
    assert check_entity_spans([example], None) == []


# --- 4. examples under two intents ----------------------------------------------------------


def test_identical_example_under_two_intents_is_an_error_naming_both_places(
    tmp_path: Path,
) -> None:
    nlu = nlu_file(
        tmp_path,
        """
        - intent: order_status
          examples: |
            - 我的订单到哪了
            - Where is my order?
        - intent: complain
          examples: |
            - 我的订单 到哪了？
            - where is my ORDER
        - intent: inform
          examples: |
            - 订单[KF202611200001](order_number)
        - intent: order_status
          examples: |
            - 订单KF202611200001
            - 我的订单到哪了
        """,
    )
    findings = check_duplicate_examples([nlu], encoder=None, roots=[tmp_path])

    assert [(f.severity, f.line) for f in findings] == [("error", 9), ("error", 10), ("error", 16)]
    assert findings[0].message == (
        "'我的订单 到哪了？' is an example of 'complain' here and of 'order_status' "
        "at nlu/test.yml:5"
    )
    assert "keep it under one intent" in findings[0].fix
    assert "'inform' at nlu/test.yml:13" in findings[2].message


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("退款要多久👍", "退款要多久"),  # symbols (emoji) used to count for the validator
        ("price + tax?", "price tax"),  # so did math symbols
        ("我的 订单 到哪了", "我的订单到哪了"),  # blanks next to Chinese used to count for review
        ("STRASSE", "straße"),  # the validator lowercased, review casefolded
        ("ＷＨＥＲＥ　is my order？", "where is my order"),  # full width, both agreed
    ],
)
def test_one_normaliser_decides_when_two_questions_are_the_same(a: str, b: str) -> None:
    assert normalize_text(a) == normalize_text(b)


def test_normaliser_keeps_what_changes_the_question() -> None:
    assert normalize_text("where is my order") == "where is my order"  # English words stay apart
    assert normalize_text("where is my order") != normalize_text("whereis my order")
    assert normalize_text("订单 KF2026 到哪了") == "订单kf2026到哪了"
    assert normalize_text("订单1") != normalize_text("订单2")


def test_examples_equal_but_for_symbols_or_case_folding_are_duplicates(tmp_path: Path) -> None:
    nlu = nlu_file(
        tmp_path,
        """
        - intent: refund
          examples: |
            - 退款要多久
            - STRASSE
        - intent: complain
          examples: |
            - 退款要多久👍
            - straße
        """,
    )
    findings = check_duplicate_examples([nlu], encoder=None, roots=[tmp_path])

    assert [(f.severity, f.line) for f in findings] == [("error", 9), ("error", 10)]
    assert findings[0].message == (
        "'退款要多久👍' is an example of 'complain' here and of 'refund' at nlu/test.yml:5"
    )


def test_near_identical_examples_under_different_intents_are_a_warning(tmp_path: Path) -> None:
    nlu = nlu_file(
        tmp_path,
        """
        - intent: order_status
          examples: |
            - 查订单
            - 看看订单
        - intent: complain
          examples: |
            - 我要投诉
            - 帮我看下订单
        """,
    )
    encoder = AliasEncoder({"帮我看下订单": "查订单", "看看订单": "查订单"})

    findings = check_duplicate_examples([nlu], encoder=encoder, threshold=0.95, roots=[tmp_path])

    # 看看订单 ~ 查订单 share an intent: not reported; 帮我看下订单 is under another intent
    assert len(findings) == 2
    assert {(f.severity, f.line) for f in findings} == {("warning", 10)}
    assert "'帮我看下订单' (complain) is nearly identical to '查订单' (order_status)" in (
        findings[0].message
    )
    assert "at nlu/test.yml:5 (cosine 1.00)" in findings[0].message
    assert findings[0].fix == "keep it under one intent (or rephrase)"
    assert check_duplicate_examples([nlu], encoder=AliasEncoder(), roots=[tmp_path]) == []


def test_near_duplicate_search_handles_two_thousand_examples_quickly(tmp_path: Path) -> None:
    import time

    body = "".join(
        f"- intent: intent_{i}\n  examples: |\n"
        + "".join(f"    - example {i} number {j}\n" for j in range(100))
        for i in range(20)
    )
    nlu = nlu_file(tmp_path, body)
    started = time.perf_counter()
    findings = check_duplicate_examples([nlu], encoder=AliasEncoder(), roots=[tmp_path])
    assert findings == []
    assert time.perf_counter() - started < 10


# --- 5. examples per language ---------------------------------------------------------------


def test_intents_with_too_few_examples_per_language(tmp_path: Path) -> None:
    nlu = nlu_file(
        tmp_path,
        """
        - intent: few
          examples: |
            - 你好
            - 您好
            - 早上好
            - hi
            - hello
        - intent: zh_only
          examples: |
            - 一
            - 二
            - 三
            - 四
            - 五
        - intent: en_only
          examples: |
            - one
            - two
            - three
            - four
            - five
        """,
    )
    default = check_examples_per_language([nlu], roots=[tmp_path])
    strict = check_examples_per_language([nlu], required_languages=("zh", "en"), roots=[tmp_path])

    assert [(f.line, f.message, f.fix) for f in default] == [
        (
            3,
            "intent 'few' has 3 zh examples (at least 5 wanted)",
            "add at least 2 more zh examples",
        ),
        (
            3,
            "intent 'few' has 2 en examples (at least 5 wanted)",
            "add at least 3 more en examples",
        ),
        (
            17,
            "intent 'en_only' has 0 zh examples (at least 5 wanted)",
            "add at least 5 more zh examples",
        ),
    ]
    assert [(f.line, f.message) for f in strict[2:]] == [
        (10, "intent 'zh_only' has 0 en examples (at least 5 wanted)"),
        (17, "intent 'en_only' has 0 zh examples (at least 5 wanted)"),
    ]
    assert {f.severity for f in strict} == {"warning"}
    assert check_examples_per_language([nlu], min_examples=2, roots=[tmp_path])[0].line == 17


# --- 6. knowledge base ----------------------------------------------------------------------


KB = """
topic: test
entries:
  - id: a
    question: 怎么退货？
    alt_questions:
      - 退货流程
    answer: 在订单页申请。
  - id: b
    question: 退货运费谁出
    alt_questions:
      - 怎么退货?
    answer: 质量问题由我们承担。
  - id: c
    question: How do I return an item?
    answer: Open the order page.
  - id: d
    question: 退换货运费谁承担
    answer: 质量问题由我们承担。
"""


def test_the_same_kb_question_in_two_entries_is_an_error_naming_both(tmp_path: Path) -> None:
    source = write(tmp_path / "knowledge" / "test.yml", KB)

    findings = check_knowledge(source.parent, roots=[tmp_path])

    assert findings == [
        Finding(
            "error",
            "knowledge/test.yml",
            11,
            "question '怎么退货?' of entry 'b' is also a question of entry 'a' at "
            "knowledge/test.yml:4",
            "keep it in one entry only: merge the two entries, or remove the question from one "
            "of them",
        )
    ]


def test_near_identical_kb_questions_with_different_answers_conflict(tmp_path: Path) -> None:
    source = write(tmp_path / "knowledge" / "test.yml", KB)
    encoder = AliasEncoder(
        {
            "退货流程": "return",  # a, answer 1
            "退货运费谁出": "fee",  # b, answer 2
            "退换货运费谁承担": "fee",  # d, same answer as b: no conflict
            "How do I return an item?": "return",  # c, English: another language
            "怎么退货？": "how",
            "怎么退货?": "how",
        }
    )
    encoder.aliases["退货运费谁出"] = "return"

    findings = check_knowledge(source.parent, encoder=encoder, roots=[tmp_path])

    warnings = [f for f in findings if f.severity == "warning"]
    assert [(f.line, f.fix) for f in warnings] == [
        (9, "merge them into one entry (keep one answer) or make the questions distinct")
    ]
    assert "conflicting answers: '退货运费谁出' (entry 'b') and '退货流程' (entry 'a' at " in (
        warnings[0].message
    )
    assert "knowledge/test.yml:6" in warnings[0].message


def test_invalid_kb_entries_and_duplicate_ids_become_findings(tmp_path: Path) -> None:
    folder = tmp_path / "knowledge"
    write(folder / "a.yml", "topic: a\nentries:\n  - id: x\n    question: 问题\n    answer: 答\n")
    write(folder / "b.yml", "topic: b\nentries:\n  - id: y\n    question: 另一个\n    anser: 答\n")
    write(folder / "c.yml", "topic: c\nentries:\n  - id: x\n    question: 第三\n    answer: 答\n")
    write(folder / "d.yml", "topic: d\nentries: [\n")

    findings = check_knowledge(folder, roots=[tmp_path])

    assert [(f.path, f.line, f.severity) for f in findings] == [
        ("knowledge/b.yml", 5, "error"),
        ("knowledge/c.yml", 3, "error"),
    ]
    assert findings[0].message == "unknown field 'anser'"
    assert "'x' is used twice (first at knowledge/a.yml:3)" in findings[1].message


# --- the whole project, Rasa and the CLI ----------------------------------------------------


def test_the_real_data_has_no_errors() -> None:
    settings = Settings(data_dir=PROJECT_ROOT / "data")
    findings = validate_project(settings, encoder=HashingEncoder(), run_rasa=False)
    assert errors(findings) == []


def test_rasa_failure_is_one_error_pointing_at_its_log(settings: Settings, tmp_path: Path) -> None:
    fake = write(
        tmp_path / "bin" / "rasa",
        """
        #!/bin/sh
        echo "INFO loading"
        echo "ERROR rasa.validator - story conflict between a and b"
        exit 1
        """,
    )
    fake.chmod(0o755)
    settings.rasa_bin = fake

    findings = run_rasa_validate(settings)

    assert findings == [
        Finding(
            "error",
            str(settings.var_dir / "logs" / "validate.log"),
            2,
            "rasa data validate failed (exit 1): ERROR rasa.validator - story conflict "
            "between a and b",
            f"read {settings.var_dir / 'logs' / 'validate.log'}, fix what Rasa names and run "
            "the check again",
        )
    ]
    settings.rasa_bin = tmp_path / "missing"
    assert "Rasa runtime is missing" in run_rasa_validate(settings)[0].message


def test_rasa_runs_only_when_the_files_and_stories_are_sound(
    settings: Settings, data_dir: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    fake = write(tmp_path / "bin" / "rasa", f"#!/bin/sh\ntouch {marker}\nexit 0\n")
    fake.chmod(0o755)
    settings.rasa_bin = fake

    assert errors(validate_project(settings, encoder=HashingEncoder())) == []
    assert marker.exists()
    marker.unlink()
    replace_line(data_dir / "stories" / "spin.yml", "- intent: complain", "- intent: complian")
    assert len(errors(validate_project(settings, encoder=HashingEncoder()))) == 1
    assert not marker.exists()


def test_cli_exit_codes_text_and_json(cli_env: Path) -> None:
    runner = CliRunner()
    options = ["--skip-rasa", "--encoder", "hashing"]

    clean = runner.invoke(validate, options)
    assert clean.exit_code == 0, clean.output
    assert clean.stdout.splitlines()[-1].startswith("0 errors, ")

    number = replace_line(
        cli_env / "stories" / "spin.yml", "- action: spin_form", "- action: spin_fomr"
    )
    broken = runner.invoke(validate, options)
    assert broken.exit_code == 1
    assert f"data/stories/spin.yml:{number}: error: unknown action 'spin_fomr'" in broken.stdout
    assert "  fix: did you mean 'spin_form'?" in broken.stdout
    assert broken.stdout.splitlines()[-1].startswith("1 errors, ")

    as_json = runner.invoke(validate, [*options, "--json"])
    assert as_json.exit_code == 1
    payload = json.loads(as_json.stdout)
    assert [item for item in payload if item["severity"] == "error"] == [
        {
            "severity": "error",
            "path": "data/stories/spin.yml",
            "line": number,
            "message": "unknown action 'spin_fomr' (not in domain.yml)",
            "fix": "did you mean 'spin_form'?",
        }
    ]


def test_cli_options_reach_the_checks(cli_env: Path) -> None:
    runner = CliRunner()
    options = ["--skip-rasa", "--encoder", "hashing", "--json"]
    strict = runner.invoke(validate, [*options, "--min-examples", "30"])
    assert strict.exit_code == 0
    few = [item["message"] for item in json.loads(strict.stdout)]
    assert "intent 'invoice' has 16 en examples (at least 30 wanted)" in few
    refused = runner.invoke(validate, [*options, "--require-languages", "zh,fr"])
    assert refused.exit_code == 2
    assert "fr" in refused.output


def test_summary_counts_errors_and_warnings() -> None:
    findings = [Finding("error", "a", 1, "m"), Finding("warning", "b", None, "n", "f")]
    assert summary(findings) == "1 errors, 1 warnings"
    assert findings[1].format() == "b: warning: n\n  fix: f"


@pytest.mark.slow
def test_real_rasa_data_validate_passes_on_the_project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEFU_DATA_DIR", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(validate, ["--encoder", "hashing"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "running rasa data validate" in result.output
    assert result.stdout.splitlines()[-1].startswith("0 errors, ")
    assert (get_settings().var_dir / "logs" / "validate.log").read_text().strip()
