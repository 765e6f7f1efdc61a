"""The QA rules file: the shipped one loads, every mistake is named with its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.service.reading import normalise
from bot.supervision.rules import (
    CHECK_TYPES,
    QaRulesError,
    WordMatcher,
    default_rules_path,
    load_qa_rules,
)

HEADER = "version: 1\nred_card_below: 60\nrules:\n"

GREETING = """\
  - id: no_greeting
    title: {zh: 未使用问候语, en: No greeting}
    subject: agent
    check: no_greeting
    words:
      zh: [您好]
    points: 3
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "qa_rules.yml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(QaRulesError) as caught:
        load_qa_rules(write(tmp_path, text))
    return str(caught.value)


def test_the_shipped_rules_load_and_cover_every_check_type() -> None:
    rules = load_qa_rules()
    assert default_rules_path().name == "qa_rules.yml"
    assert rules.red_card_below == 60
    assert {rule.check for rule in rules.rules} == set(CHECK_TYPES)
    assert len({rule.id for rule in rules.rules}) == len(rules.rules)
    fatal = [rule for rule in rules.enabled if rule.red_card]
    assert fatal and all(rule.severity == "fatal" for rule in fatal)
    assert not all(rule.enabled for rule in rules.rules)  # the file shows how to switch one off


def test_a_good_file(tmp_path: Path) -> None:
    rules = load_qa_rules(write(tmp_path, HEADER + GREETING))
    [rule] = rules.rules
    assert (rule.id, rule.subject, rule.points, rule.severity, rule.red_card) == (
        "no_greeting",
        "agent",
        3,
        "minor",
        False,
    )
    assert rule.title_text == "未使用问候语 · No greeting"
    assert rule.about("agent:li.na") and not rule.about("bot")


def test_an_unknown_check_type_names_its_line_and_the_closest_type(tmp_path: Path) -> None:
    text = HEADER + GREETING.replace("check: no_greeting", "check: no_greting")
    message = error_of(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'qa_rules.yml'}:7: rules[0].check: ")
    assert "unknown check type 'no_greting' (did you mean 'no_greeting'?)" in message


def test_a_parameter_of_another_check_type_is_refused_on_its_line(tmp_path: Path) -> None:
    text = HEADER + GREETING + "    within_seconds: 900\n"
    message = error_of(tmp_path, text)
    assert ":11: rules[0]: unknown key 'within_seconds'" in message
    assert "within_seconds is a parameter of wait_not_kept" in message
    typo = HEADER + GREETING.replace("    words:", "    wrods:")
    assert "unknown key 'wrods' (did you mean 'words'?)" in error_of(tmp_path, typo)


def test_a_missing_parameter_and_bad_values_are_named(tmp_path: Path) -> None:
    wait = """\
  - id: wait
    title: {zh: 稍等, en: Wait}
    subject: agent
    check: wait_not_kept
    words: {zh: [稍等]}
    points: -1
    severity: deadly
"""
    message = error_of(tmp_path, HEADER + wait)
    lines = message.splitlines()
    assert any(":4: rules[0].within_seconds: is required but missing" in line for line in lines)
    assert any(":9: rules[0].points: must be greater than or equal to 0" in line for line in lines)
    assert any(":10: rules[0].severity:" in line for line in lines)


def test_duplicate_ids_subjects_and_red_cards_are_checked(tmp_path: Path) -> None:
    fallback = """\
  - id: no_greeting
    title: {zh: 机器人多次未理解, en: Fallbacks}
    subject: agent
    check: bot_fallbacks_over
    max: 2
    points: 10
    red_card: true
"""
    message = error_of(tmp_path, HEADER + GREETING + fallback)
    assert ":11: rules[1].id: 'no_greeting' is used twice (also rules[0])" in message
    assert (
        ":13: rules[1].subject: bot_fallbacks_over cannot be about 'agent' (allowed: bot)"
        in message
    )
    assert ":17: rules[1].red_card: a red card is a fatal item" in message


def test_bad_yaml_and_missing_checks_name_the_line(tmp_path: Path) -> None:
    broken = HEADER + GREETING.replace("subject: agent", "subject: [agent")
    assert ":7: YAML syntax error: expected ',' or ']'" in error_of(tmp_path, broken)
    duplicate_key = HEADER + GREETING + "    points: 4\n"
    assert ":11: duplicate key 'points'" in error_of(tmp_path, duplicate_key)
    no_check = HEADER + GREETING.replace("    check: no_greeting\n", "")
    assert ":4: rules[0]: check is required" in error_of(tmp_path, no_check)
    with pytest.raises(QaRulesError, match="file not found"):
        load_qa_rules(tmp_path / "missing.yml")
    assert ":1: version:" in error_of(tmp_path, "version: 2\nrules: []\n")


def test_words_match_like_the_service_policy() -> None:
    matcher = WordMatcher.of(["说过了", "我刚说过了", "I told you", "apolog", "hi"])
    assert matcher.find(normalise("我刚说过了！！")) == ["我刚说过了"]  # the longest wins
    assert matcher.find(normalise("ＩＴＯＬＤ you")) == []
    assert matcher.find(normalise("I TOLD YOU twice")) == ["I told you"]
    assert matcher.matches(normalise("My apologies"))
    assert not matcher.matches(normalise("this is it"))  # "hi" must begin a word
    assert WordMatcher.of([]).find("anything") == []
