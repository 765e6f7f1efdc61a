"""`kefu bench nlu-split` with a fake Rasa runtime, and `kefu bench nlu`'s preparation and table."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import bot.bench.nlu as bench_nlu
from bot.bench.nlu import (
    embedding_floor,
    parse_only,
    prepare,
    rows,
    run_nlu_benchmark,
    table,
)
from bot.cli.main import main
from bot.core.nlu_runs import NluBenchError, run_nlu_bench
from bot.core.settings import PROJECT_ROOT, Settings, get_settings
from kefu_shared.nlu_data import labelled_examples, strip_entities

FAKE_PYTHON = f"""#!{sys.executable}
import json, os, sys
mode = os.environ.get("FAKE_NLU_MODE", "ok")
print("rasa: training the pipeline ...", file=sys.stderr)
if mode == "bad":
    print("error: data.jsonl:3: not JSON (Expecting value)", file=sys.stderr)
    sys.exit(2)
if mode == "crash":
    print("Traceback (most recent call last):\\nRuntimeError: out of memory", file=sys.stderr)
    sys.exit(1)
if mode == "noisy":
    print("a library printed this")
if mode != "nothing":
    print(json.dumps({{"accuracy": 0.9, "argv": sys.argv[1:], "cwd": os.getcwd(),
                      "telemetry": os.environ.get("RASA_TELEMETRY_ENABLED")}}))
"""

RESULT = {
    "accuracy": 0.95,
    "macro_f1": 0.9,
    "fallback_rate": 0.01,
    "train_examples": 100,
    "test_examples": 20,
    "intents": 3,
    "train_seconds": 12.0,
    "parse_p50_ms": 5.0,
    "parse_p95_ms": 9.0,
    "model_mb": 3.2,
}


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings whose Rasa runtime is a fake `python` script and whose var/ is temporary."""
    bin_dir = tmp_path / "rasa-venv" / "bin"
    bin_dir.mkdir(parents=True)
    python = bin_dir / "python"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    monkeypatch.setenv("KEFU_RASA_BIN", str(bin_dir / "rasa"))
    monkeypatch.setenv("KEFU_VAR_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    train, test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    train.write_text('{"text": "hi", "intent": "greet"}\n')
    test.write_text('{"text": "hello", "intent": "greet"}\n')
    return train, test


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize(
    "command", [("bench", "nlu-split"), ("nlu", "bench")], ids=["new", "old-name"]
)
def test_nlu_split_prints_the_runners_json_object(
    settings: Settings,
    files: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: tuple[str, str],
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke(*command, "--train", "train.jsonl", "--test", str(files[1]))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    payload = json.loads(lines[0])
    assert payload["accuracy"] == 0.9
    assert payload["argv"] == [
        "-m", "nlu_bench",
        "--train", str(files[0]), "--test", str(files[1]),  # absolute: the runner's cwd differs
        "--config", str(PROJECT_ROOT / "config.yml"), "--oos-label", "oos",
    ]  # fmt: skip
    assert payload["cwd"] == str(PROJECT_ROOT)
    assert payload["telemetry"] == "false"
    log = settings.var_dir / "logs" / "nlu-bench.log"
    assert "rasa: training the pipeline" in log.read_text()


def test_nlu_split_passes_config_oos_label_and_log(
    settings: Settings, files: tuple[Path, Path], tmp_path: Path
) -> None:
    config, log = tmp_path / "other.yml", tmp_path / "logs" / "mine.log"
    config.write_text("pipeline: []\n")
    result = invoke(
        "bench", "nlu-split", "--train", str(files[0]), "--test", str(files[1]),
        "--config", str(config), "--oos-label", "out_of_scope", "--log", str(log),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    argv = json.loads(result.stdout)["argv"]
    assert argv[-4:] == ["--config", str(config), "--oos-label", "out_of_scope"]
    assert "rasa: training" in log.read_text()


def test_a_bad_input_file_exits_2_with_the_runners_error(
    settings: Settings, files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NLU_MODE", "bad")
    result = invoke("bench", "nlu-split", "--train", str(files[0]), "--test", str(files[1]))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "error: data.jsonl:3: not JSON (Expecting value)" in result.stderr
    assert "rasa: training" not in result.stderr


def test_a_crash_shows_the_logs_last_lines_and_its_path(
    settings: Settings, files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NLU_MODE", "crash")
    result = invoke("bench", "nlu-split", "--train", str(files[0]), "--test", str(files[1]))
    assert result.exit_code == 1
    assert "RuntimeError: out of memory" in result.stderr
    assert str(settings.var_dir / "logs" / "nlu-bench.log") in result.stderr


def test_stray_stdout_goes_to_the_log_and_the_json_is_still_found(
    settings: Settings, files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NLU_MODE", "noisy")
    result = invoke("bench", "nlu-split", "--train", str(files[0]), "--test", str(files[1]))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["accuracy"] == 0.9
    log = settings.var_dir / "logs" / "nlu-bench.log"
    assert "a library printed this" in log.read_text()


def test_no_json_from_the_runner_is_an_error(
    settings: Settings, files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NLU_MODE", "nothing")
    with pytest.raises(NluBenchError, match="printed no JSON") as caught:
        run_nlu_bench(
            settings, *files, PROJECT_ROOT / "config.yml", "oos", Path(files[0]).parent / "x.log"
        )
    assert caught.value.exit_code == 1


def test_a_missing_rasa_runtime_is_a_clear_error(
    settings: Settings, files: tuple[Path, Path], tmp_path: Path
) -> None:
    missing = settings.model_copy(update={"rasa_bin": tmp_path / "nowhere" / "bin" / "rasa"})
    with pytest.raises(NluBenchError, match="make install-rasa"):
        run_nlu_bench(missing, *files, PROJECT_ROOT / "config.yml", "oos", tmp_path / "x.log")


@pytest.mark.parametrize(
    ("train", "test", "message"),
    [
        ("missing.jsonl", "test.jsonl", "does not exist"),
        ("train.jsonl", ".", "is a directory"),
    ],
)
def test_bad_paths_are_refused_before_starting(
    settings: Settings,
    files: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    train: str,
    test: str,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("bench", "nlu-split", "--train", train, "--test", test)
    assert result.exit_code == 2
    assert message in result.stderr
    assert not (settings.var_dir / "logs" / "nlu-bench.log").exists()


def test_train_and_test_are_required(settings: Settings) -> None:
    result = invoke("bench", "nlu-split")
    assert result.exit_code == 2
    assert "--train" in result.stderr


# ---------------------------------------------------------------- bot/bench/nlu.py


class FakeEncoder:
    """Known texts get fixed directions; anything else a direction of its own."""

    name = "fake"
    dimension = 4

    def __init__(self, vectors: dict[str, Sequence[float]] | None = None) -> None:
        self.vectors = vectors or {}

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        rows = np.array(
            [self.vectors.get(text, (0.0, 0.0, 0.0, 1.0)) for text in texts], dtype=np.float32
        )
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


class BrokenEncoder(FakeEncoder):
    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        raise AssertionError("the floor should come from the cache")


def test_parse_only() -> None:
    assert parse_only(None) == ["clinc150", "banking77", "smp2019", "cais", "demo"]
    assert parse_only(" demo, CLINC150 ") == ["clinc150", "demo"]
    with pytest.raises(ValueError, match="unknown dataset atis"):
        parse_only("demo,atis")


def test_strip_entities() -> None:
    assert strip_entities("订单[KF202611200010](order_number)帮我开发票") == (
        "订单KF202611200010帮我开发票"
    )
    assert strip_entities('call [13512345678]{"entity": "phone_number"} now') == (
        "call 13512345678 now"
    )
    assert strip_entities("[a](x:y) and [b](z)") == "a and b"


def test_read_rasa_nlu(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(
        'version: "3.1"\nnlu:\n'
        "- intent: order_status\n  examples: |\n"
        "    - 查订单[KF202611200001](order_number)\n    - where is my order\n"
        "- regex: order_number\n  examples: |\n    - KF\\d{12}\n"
        "- synonym: refund\n  examples: |\n    - money back\n",
        encoding="utf-8",
    )
    (tmp_path / "b.yml").write_text("nlu:\n- intent: greet\n  examples: |\n    - 你好\n")
    assert labelled_examples(tmp_path) == [
        ("查订单KF202611200001", "order_status"),
        ("where is my order", "order_status"),
        ("你好", "greet"),
    ]


def test_the_demo_data_has_every_intent_and_no_annotations() -> None:
    examples = labelled_examples(PROJECT_ROOT / "data" / "nlu")
    assert len({intent for _, intent in examples}) >= 18
    assert not any("](" in text or "]{" in text for text, _ in examples)


def make_datasets(root: Path) -> Path:
    """A tiny copy of the shared layout: CLINC150, BANKING77 and SMP2019 (no CAIS)."""
    (root / "clinc150").mkdir(parents=True)
    (root / "clinc150" / "data_full_train_val.json").write_text(
        json.dumps(
            {
                "train": [["alpha", "a"], ["beta", "b"]],
                "oos_train": [["noise", "oos"]],
                "val": [["alpha again", "a"], ["beta again", "b"]],
                "oos_val": [["gamma", "oos"]],
            }
        )
    )
    (root / "banking77").mkdir()
    lines = [f"{intent} question {i},{intent}" for intent in ("x", "y") for i in range(10)]
    (root / "banking77" / "train.csv").write_text("text,category\n" + "\n".join(lines) + "\n")
    (root / "smp2019").mkdir()
    for name, count in (("train", 4), ("dev", 2)):
        rows = [
            json.dumps({"text": f"{label} {i}", "label": label, "intent": "X"})
            for label in ("app.LAUNCH", "weather.QUERY")
            for i in range(count)
        ]
        (root / "smp2019" / f"{name}.jsonl").write_text("\n".join(rows) + "\n")
    return root


def test_prepare_reads_and_splits_every_dataset(tmp_path: Path) -> None:
    datasets, work = make_datasets(tmp_path / "datasets"), tmp_path / "work"
    clinc = prepare("clinc150", datasets, work)
    assert clinc.train_path == clinc.test_path
    assert [len(clinc.train), len(clinc.test)] == [3, 3]
    banking = prepare("banking77", datasets, work)
    assert (len(banking.train), len(banking.test)) == (18, 2)
    assert banking.test_path == work / "banking77-heldout.jsonl"
    assert banking.test_path.read_text().count("\n") == 2
    assert (work / "banking77-train.jsonl").read_text().count("\n") == 18
    smp = prepare("smp2019", datasets, work)
    assert smp.test_path.name == "dev.jsonl" and {i for _, i in smp.test} == {
        "app.LAUNCH",
        "weather.QUERY",
    }
    with pytest.raises(FileNotFoundError):
        prepare("cais", datasets, work)
    demo = prepare("demo", datasets, work)
    assert demo.train_path == work / "demo-train.jsonl"
    assert 0.15 < len(demo.test) / (len(demo.train) + len(demo.test)) < 0.25


def test_the_floor_is_one_nearest_neighbour_with_a_threshold_for_oos() -> None:
    encoder = FakeEncoder(
        {
            "alpha": (1, 0, 0, 0),
            "beta": (0, 1, 0, 0),
            "noise": (0, 0, 1, 0),  # oos training example: never indexed
            "alpha again": (1, 0.2, 0, 0),
            "beta again": (0.9, 1, 0, 0),  # nearest is beta, cosine ~0.74
            "near alpha": (1, 0, 0, 1.1),  # nearest is alpha, cosine ~0.67
            "gamma": (0, 0, 1, 0.1),  # nearest would be noise: not indexed, below threshold
        }
    )
    train = [("alpha", "a"), ("beta", "b"), ("noise", "oos")]
    test = [("alpha again", "a"), ("beta again", "b"), ("near alpha", "b"), ("gamma", "oos")]
    floor = embedding_floor(encoder, train, test)
    assert floor["indexed_examples"] == 2
    assert floor["accuracy"] == pytest.approx(2 / 3, abs=1e-4)  # closed set: in-scope examples only
    assert floor["threshold"] == 0.65
    assert floor["in_scope_accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert floor["oos_recall"] == 1.0
    assert floor["open_set_accuracy"] == 0.75
    closed = embedding_floor(encoder, train[:2], test[:3])
    assert "oos_recall" not in closed and closed["accuracy"] == pytest.approx(2 / 3, abs=1e-4)


def fake_run(values: dict[str, dict[str, Any]], calls: list[tuple[Path, Path]]) -> Any:
    def run(
        settings: Settings, train: Path, test: Path, config: Path, oos_label: str, log: Path
    ) -> dict[str, Any]:
        calls.append((train, test))
        assert oos_label == "oos" and config == PROJECT_ROOT / "config.yml"
        name = next(n for n in values if n in str(train))
        if "error" in values[name]:
            raise NluBenchError(values[name]["error"], 2)
        return {**RESULT, **values[name]}

    return run


def test_the_benchmark_compares_runs_with_floor_anchors_and_targets(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values: dict[str, dict[str, Any]] = {
        "clinc150": {
            "in_scope_accuracy": 0.97,
            "oos_recall": 0.55,
            "train_seconds": 300.0,
        },
        "banking77": {"accuracy": 0.94, "parse_p95_ms": 31.0},
        "smp2019": {"error": "error: smp2019/train.jsonl:1: not JSON"},
        "demo": {"accuracy": 0.92},
    }
    calls: list[tuple[Path, Path]] = []
    monkeypatch.setattr(bench_nlu, "run_nlu_bench", fake_run(values, calls))
    progress: list[str] = []
    report = run_nlu_benchmark(
        settings,
        make_datasets(tmp_path / "datasets"),
        encoder=FakeEncoder(),
        progress=progress.append,
    )
    assert [train.name for train, _ in calls] == [
        "data_full_train_val.json",
        "banking77-train.jsonl",
        "train.jsonl",
        "demo-train.jsonl",
    ]
    assert report.path == settings.var_dir / "bench" / "nlu.json"
    saved = json.loads(report.path.read_text())["results"]
    blocks = saved["datasets"]
    assert blocks["cais"] == {"skipped": f"{tmp_path / 'datasets' / 'cais'}: not found"}
    clinc = {t["metric"]: t["met"] for t in blocks["clinc150"]["targets"]}
    assert clinc == {
        "in_scope_accuracy": True,
        "oos_recall": False,
        "train_seconds": True,
        "parse_p95_ms": True,
    }
    assert blocks["clinc150"]["kefu"]["in_scope_accuracy"] == 0.97
    assert blocks["clinc150"]["floor"]["threshold"] == 0.65
    assert blocks["clinc150"]["anchors"]["oos_recall"]["BERT+250 oos"] == 0.592
    banking = {t["metric"]: t["met"] for t in blocks["banking77"]["targets"]}
    assert banking == {"accuracy": True, "parse_p95_ms": False}
    assert blocks["smp2019"]["error"].startswith("error: smp2019")
    assert {t["met"] for t in blocks["smp2019"]["targets"]} == {None}
    assert saved["all_targets_met"] is False
    assert any(line.startswith("clinc150: training on 3 examples") for line in progress)
    assert any("cais: skipped" in line for line in progress)

    text = report.table()
    header = text.splitlines()[0].split()
    assert header[:3] == ["dataset", "metric", "Kefu"]
    assert "BERT 96.90, BERT+250 oos 96.70, Rasa 2019 91.50" in text
    assert "BERT 93.66, USE+ConveRT 93.36" in text
    assert "none (own split)" in text
    assert "cais: skipped" in text
    assert "smp2019: failed: error: smp2019/train.jsonl:1: not JSON" in text
    assert "Targets: NOT all met." in text
    table_rows = {(r[0], r[1]): r for r in rows(saved)}
    assert table_rows[("clinc150", "oos recall %")][2:] == (
        "55.00",
        table_rows[("clinc150", "oos recall %")][3],
        "BERT 40.30, BERT+250 oos 59.20, Rasa 2019 45.30",
        ">= 60.00",
        "NO",
    )
    assert "no threshold" in table_rows[("clinc150", "in-scope accuracy %")][3]
    assert table_rows[("banking77", "parse p95 ms")][2:] == ("31.0", "", "", "<= 30", "NO")
    assert table_rows[("clinc150", "train s")][5:] == ("<= 900", "yes")
    assert table_rows[("demo", "examples train / test")][2] == "100 / 20, 3 intents"
    assert table(saved) == text

    # Floors are kept: a second run encodes nothing.
    assert (settings.var_dir / "bench" / "nlu" / "floors.json").is_file()
    again = run_nlu_benchmark(
        settings,
        tmp_path / "datasets",
        ["clinc150", "demo"],
        encoder=BrokenEncoder(),
        progress=progress.append,
    )
    assert again.results["datasets"]["clinc150"]["floor"] == blocks["clinc150"]["floor"]
    assert list(again.results["datasets"]) == ["clinc150", "demo"]


def test_bench_nlu_command(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Path, Path]] = []
    monkeypatch.setattr(bench_nlu, "run_nlu_bench", fake_run({"smp2019": {}}, calls))
    monkeypatch.setattr(bench_nlu, "load_encoder", lambda *args, **kwargs: FakeEncoder())
    datasets = make_datasets(tmp_path / "datasets")
    result = invoke("bench", "nlu", "--datasets", str(datasets), "--only", "smp2019")
    assert result.exit_code == 0, result.stderr
    assert len(calls) == 1
    assert "smp2019" in result.stdout and "Wrote" in result.stdout
    assert "smp2019: training on 8 examples" in result.stderr
    result = invoke("bench", "nlu", "--only", "atis")
    assert result.exit_code == 2
    assert "unknown dataset atis" in result.stderr
