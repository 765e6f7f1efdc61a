"""Static checks of the domain and the training data that Rasa's validator does not make."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text())
INTENTS = [i if isinstance(i, str) else next(iter(i)) for i in DOMAIN["intents"]]
HAN = re.compile(r"[\u4e00-\u9fff]")


def examples_by_intent() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "data/nlu").glob("*.yml")):
        for item in yaml.safe_load(path.read_text())["nlu"]:
            if "intent" in item:
                lines = [
                    line[2:] for line in item["examples"].splitlines() if line.startswith("- ")
                ]
                found.setdefault(item["intent"], []).extend(lines)
    return found


@pytest.mark.parametrize("name", sorted(DOMAIN["responses"]))
def test_every_response_has_a_chinese_and_an_english_variation(name: str) -> None:
    languages = sorted(
        condition["value"]
        for variation in DOMAIN["responses"][name]
        for condition in variation.get("condition", [])
        if condition.get("name") == "language"
    )
    assert languages == ["en", "zh"], name


# unreadable_input, punctuation: rasa_addons/nlu/input_guard.py;
# kb_select, choose: button payloads only
INTENTS_SET_BY_COMPONENTS = {"unreadable_input", "punctuation", "kb_select", "choose"}


@pytest.mark.parametrize("intent", sorted(set(INTENTS) - INTENTS_SET_BY_COMPONENTS))
def test_every_intent_has_enough_examples_in_both_languages(intent: str) -> None:
    examples = examples_by_intent()[intent]
    chinese = [e for e in examples if HAN.search(e)]
    assert len(chinese) >= 25, intent
    assert len(examples) - len(chinese) >= 10, intent


def test_there_are_at_least_18_intents_and_no_duplicate_examples() -> None:
    examples = examples_by_intent()
    assert len(examples) >= 18
    flat = [e.lower() for lines in examples.values() for e in lines]
    assert len(flat) == len(set(flat))


def test_variables_in_both_variations_match() -> None:
    for name, variations in DOMAIN["responses"].items():
        names = {frozenset(re.findall(r"{(\w+)}", v["text"])) for v in variations}
        assert len(names) == 1, name
