"""`python -m nlu_bench` end to end: a tiny model, one JSON object, clear errors (exit 2)."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]

slow = pytest.mark.slow
"""Trains a tiny Rasa model (TensorFlow); still part of `make test-unit`."""

# Relative to the project root: the bench must chdir there itself.
CONFIG = """\
recipe: default.v1
language: zh
assistant_id: nlu-bench-test
pipeline:
  - name: rasa_addons.nlu.tokenizer.KefuJiebaTokenizer
    dictionary_path: data/jieba
  - name: rasa_addons.nlu.use_featurizer.UniversalSentenceEncoderFeaturizer
  - name: DIETClassifier
    epochs: 5
    learning_rate: 0.01
    constrain_similarities: true
    number_of_transformer_layers: 0
    entity_recognition: false
    random_seed: 42
  - name: FallbackClassifier
    threshold: 0.3
policies: []
"""

TRAIN = {
    "order_status": ["我的订单到哪了", "我的快递什么时候到", "查一下物流", "where is my order"],
    "refund": ["我要退款", "怎么退货", "i want a refund", "how do i return this"],
    "greet": ["你好", "早上好", "hello", "good morning"],
}
TEST = [
    ("订单到哪里了", "order_status"),
    ("where's my parcel", "order_status"),
    ("我想退货", "refund"),
    ("give me my money back", "refund"),
    ("您好", "greet"),
    ("hi there", "greet"),
]
OUT_OF_SCOPE = [("今天天气怎么样", "oos"), ("play some music", "oos")]

KEYS = {
    "accuracy",
    "macro_f1",
    "fallback_rate",
    "train_examples",
    "test_examples",
    "intents",
    "train_seconds",
    "parse_p50_ms",
    "parse_p95_ms",
    "model_mb",
}
FRACTIONS = {"accuracy", "macro_f1", "fallback_rate", "in_scope_accuracy", "oos_recall"}
OPEN_SET_KEYS = {"in_scope_accuracy", "oos_recall"}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def training_rows() -> list[dict[str, Any]]:
    return [{"text": t, "intent": i} for i, texts in TRAIN.items() for t in texts]


def bench(cwd: Path, *arguments: str | Path) -> subprocess.CompletedProcess[str]:
    """Runs `python -m nlu_bench` in `cwd` (not the project) with the Rasa runtime."""
    assert not cwd.resolve().is_relative_to(ROOT)
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "RASA_TELEMETRY_ENABLED": "false"}
    return subprocess.run(
        [sys.executable, "-m", "nlu_bench", *map(str, arguments)],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )


def result_of(process: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The one JSON object on stdout of a successful run."""
    assert process.returncode == 0, process.stderr[-3000:]
    lines = process.stdout.strip().splitlines()
    assert len(lines) == 1, process.stdout
    result = json.loads(lines[0])
    assert isinstance(result, dict)
    return result


def check_values(result: dict[str, Any], test_examples: int) -> None:
    for key in FRACTIONS & result.keys():
        assert 0.0 <= result[key] <= 1.0, key
    assert result["train_examples"] == sum(len(texts) for texts in TRAIN.values())
    assert result["test_examples"] == test_examples
    assert result["intents"] == len(TRAIN)
    assert result["train_seconds"] > 0
    assert 0 < result["parse_p50_ms"] <= result["parse_p95_ms"]
    assert result["model_mb"] > 0


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """tmp_path with train.jsonl and config.yml (the bench runs from here)."""
    write_jsonl(tmp_path / "train.jsonl", training_rows())
    (tmp_path / "config.yml").write_text(CONFIG, encoding="utf-8")
    return tmp_path


@slow
def test_closed_set_run(files: Path) -> None:
    write_jsonl(files / "test.jsonl", [{"text": t, "intent": i} for t, i in TEST])
    result = result_of(
        bench(
            files,
            "--train",
            "train.jsonl",
            "--test",
            "test.jsonl",
            "--config",
            files / "config.yml",
        )
    )
    assert result.keys() == KEYS
    check_values(result, len(TEST))
    # Closed set: the best intent counts even when the fallback would have answered.
    assert result["accuracy"] >= 0.5


@slow
def test_open_set_run_with_oos_in_the_test_file(files: Path) -> None:
    rows = [{"text": t, "label": i} for t, i in TEST + OUT_OF_SCOPE]
    write_jsonl(files / "test.jsonl", rows)
    result = result_of(
        bench(
            files,
            "--train",
            "train.jsonl",
            "--test",
            "test.jsonl",
            "--config",
            files / "config.yml",
        )
    )
    assert result.keys() == KEYS | OPEN_SET_KEYS
    check_values(result, len(rows))
    # Every test example is either in scope or out of scope.
    overall = result["in_scope_accuracy"] * len(TEST) + result["oos_recall"] * len(OUT_OF_SCOPE)
    assert result["accuracy"] == pytest.approx(overall / len(rows), abs=1e-3)


@slow
def test_a_relative_config_path_is_relative_to_the_callers_directory(files: Path) -> None:
    write_jsonl(files / "test.jsonl", [{"text": t, "intent": i} for t, i in TEST])
    (files / "config.yml").unlink()
    (files / "tiny.yml").write_text(CONFIG, encoding="utf-8")
    process = bench(files, "--train", "train.jsonl", "--test", "test.jsonl", "--config", "tiny.yml")
    assert result_of(process).keys() == KEYS


def error_line(process: subprocess.CompletedProcess[str]) -> str:
    """The `error:` line of a run refused for bad input."""
    assert process.returncode == 2, process.stderr[-3000:]
    assert process.stdout == ""
    assert "Traceback" not in process.stderr
    errors = [line for line in process.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, process.stderr
    return errors[0]


def bench_with_test_file(files: Path, test_lines: list[str]) -> subprocess.CompletedProcess[str]:
    (files / "test.jsonl").write_text("\n".join(test_lines) + "\n", encoding="utf-8")
    return bench(files, "--train", "train.jsonl", "--test", "test.jsonl", "--config", "config.yml")


GOOD_LINE = json.dumps({"text": "我想退货", "intent": "refund"}, ensure_ascii=False)


@pytest.mark.parametrize("role", ["train", "test"])
def test_a_missing_file(files: Path, role: str) -> None:
    (files / "test.jsonl").write_text(GOOD_LINE + "\n", encoding="utf-8")
    paths = {"train": "train.jsonl", "test": "test.jsonl", role: "missing.jsonl"}
    process = bench(
        files, "--train", paths["train"], "--test", paths["test"], "--config", "config.yml"
    )
    line = error_line(process)
    assert "missing.jsonl" in line
    assert "no such file" in line


def test_a_line_that_is_not_json(files: Path) -> None:
    line = error_line(bench_with_test_file(files, [GOOD_LINE, GOOD_LINE, "{not json"]))
    assert "test.jsonl:3" in line


def test_a_line_without_an_intent(files: Path) -> None:
    line = error_line(bench_with_test_file(files, [GOOD_LINE, '{"text": "hello"}']))
    assert "test.jsonl:2" in line


def test_a_bad_line_in_the_training_file(files: Path) -> None:
    rows = [json.dumps(row, ensure_ascii=False) for row in training_rows()]
    rows.insert(4, '["hello", "greet"]')
    (files / "train.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    line = error_line(bench_with_test_file(files, [GOOD_LINE]))
    assert "train.jsonl:5" in line


def test_a_training_file_with_one_intent(files: Path) -> None:
    write_jsonl(files / "train.jsonl", [{"text": t, "intent": "greet"} for t in TRAIN["greet"]])
    line = error_line(bench_with_test_file(files, [GOOD_LINE]))
    assert "train.jsonl" in line
    assert "two intents" in line


def test_a_missing_config(files: Path) -> None:
    (files / "test.jsonl").write_text(GOOD_LINE + "\n", encoding="utf-8")
    process = bench(
        files, "--train", "train.jsonl", "--test", "test.jsonl", "--config", "nothing.yml"
    )
    assert "nothing.yml" in error_line(process)
