"""The editor's evaluation (split, scores, report) and the gate's verdicts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bot.core.settings import PROJECT_ROOT, Settings
from bot.editor.cross_validation import IntentScores
from bot.editor.evaluation import (
    Evaluation,
    Miss,
    draw_confusion,
    evaluate,
    evaluation_key,
    load_evaluation,
    score,
    stable_split,
    write_report,
)
from bot.editor.gate import judge, passed_gate, save_verdict


def make_evaluation(key: str, f1: dict[str, float]) -> Evaluation:
    """An evaluation whose macro-F1 is the mean of the given per-intent F1."""
    intents = [IntentScores(name, value, value, value, 10) for name, value in f1.items()]
    macro = round(sum(f1.values()) / len(f1), 4)
    return Evaluation(key, macro, macro, 0.0, intents, [], 100, 20)


BASE = {"greet": 0.95, "order_status": 0.9, "return_refund": 0.9, "deny": 0.85}


def test_an_unchanged_candidate_passes() -> None:
    verdict = judge(make_evaluation("new", BASE), make_evaluation("old", BASE), 0.01, 0.7)
    assert verdict.passed and verdict.reasons == [] and verdict.worse == []


def test_a_drop_of_more_than_one_point_is_refused_naming_the_intents() -> None:
    worse = {**BASE, "order_status": 0.8, "deny": 0.83}  # macro -3 points
    verdict = judge(make_evaluation("new", worse), make_evaluation("old", BASE), 0.01, 0.7)
    assert not verdict.passed
    assert "macro-F1 dropped 3.0 points" in verdict.reasons[0]
    assert [(c.intent, round(c.delta, 3)) for c in verdict.worse] == [
        ("order_status", -0.1),
        ("deny", -0.02),
    ]
    text = verdict.text()
    assert "REFUSED" in text and "order_status" in text and "-10.0 points" in text


def test_a_drop_within_one_point_passes_but_lists_the_worse_intent() -> None:
    slightly = {**BASE, "deny": 0.82}  # macro -0.75 points
    verdict = judge(make_evaluation("new", slightly), make_evaluation("old", BASE), 0.01, 0.7)
    assert verdict.passed
    assert [c.intent for c in verdict.worse] == ["deny"]


def test_an_intent_below_its_floor_is_refused_even_without_a_deployed_model() -> None:
    low = {**BASE, "deny": 0.6}
    verdict = judge(make_evaluation("new", low), None, 0.01, 0.7)
    assert not verdict.passed
    assert verdict.below_floor == [("deny", 0.6, 0.7)]
    assert "nothing deployed yet" in verdict.text()


def test_per_intent_floors_replace_the_default() -> None:
    verdict = judge(make_evaluation("new", BASE), None, 0.01, 0.7, {"greet": 0.99})
    assert not verdict.passed and verdict.below_floor == [("greet", 0.95, 0.99)]
    assert judge(make_evaluation("new", BASE), None, 0.01, 0.7, {"deny": 0.5}).passed


def test_a_removed_intent_is_listed_as_worse() -> None:
    fewer = {k: v for k, v in BASE.items() if k != "deny"}
    verdict = judge(make_evaluation("new", fewer), make_evaluation("old", BASE), 0.5, 0.7)
    assert [(c.intent, c.candidate) for c in verdict.worse] == [("deny", None)]


def test_the_verdict_is_saved_beside_the_evaluation(tmp_path: Path) -> None:
    verdict = judge(make_evaluation("new", BASE), None, 0.01, 0.7)
    save_verdict(verdict, tmp_path)
    assert passed_gate(tmp_path)
    assert json.loads((tmp_path / "gate.json").read_text())["candidate_key"] == "new"
    assert not passed_gate(tmp_path / "missing")


def test_the_split_is_stable_when_one_example_is_added() -> None:
    examples = [(f"例子 {n}", "a") for n in range(20)] + [(f"sample {n}", "b") for n in range(10)]
    train, held_out = stable_split(examples)
    assert len(held_out) == 4 + 2 and not set(train) & set(held_out)
    _, held_out_after = stable_split([*examples, ("又一个例子", "a")])
    assert len(set(held_out) ^ set(held_out_after)) <= 2


def test_intents_with_fewer_than_three_examples_are_only_trained_on() -> None:
    train, held_out = stable_split([("x", "a"), ("y", "a"), ("z", "b"), ("z", "b")])
    assert held_out == [] and sorted(train) == [("x", "a"), ("y", "a"), ("z", "b")]


def test_scores_count_a_fallback_as_a_miss() -> None:
    rows = [
        {"intent": "a", "predicted": "a"},
        {"intent": "a", "predicted": "nlu_fallback"},
        {"intent": "b", "predicted": "b"},
        {"intent": "b", "predicted": "a"},
    ]
    macro, accuracy, intents = score(rows)
    assert accuracy == 0.5
    by_name = {r.intent: r for r in intents}
    assert by_name["a"].precision == 0.5 and by_name["a"].recall == 0.5
    assert by_name["b"].precision == 1.0 and by_name["b"].recall == 0.5
    assert macro == round((0.5 + 2 / 3) / 2, 4)
    assert "nlu_fallback" not in by_name


def test_the_report_has_the_worst_intents_the_misses_and_the_matrix(tmp_path: Path) -> None:
    rows = [
        {"intent": "greet", "predicted": "greet"},
        {"intent": "deny", "predicted": "nlu_fallback"},
        {"intent": "deny", "predicted": "deny"},
    ]
    macro, accuracy, intents = score(rows)
    evaluation = Evaluation(
        "k", macro, accuracy, 0.33, intents, [Miss("不要 <b>", "deny", "nlu_fallback", 0.3)], 9, 3
    )
    draw_confusion(rows, tmp_path / "confusion.png")
    markdown, page = write_report(evaluation, tmp_path)
    assert (tmp_path / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = markdown.read_text()
    assert text.index("| deny |") < text.index("| greet |")
    assert "| 不要 <b> | deny | nlu_fallback | 0.30 |" in text
    assert "不要 &lt;b&gt;" in page.read_text() and 'src="confusion.png"' in page.read_text()
    saved = json.loads((tmp_path / "misclassified.jsonl").read_text().splitlines()[0])
    assert saved == {
        "text": "不要 <b>",
        "intent": "deny",
        "predicted": "nlu_fallback",
        "confidence": 0.3,
    }


def test_the_evaluation_key_follows_the_nlu_data(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(PROJECT_ROOT / "data" / "nlu", data / "nlu")
    shutil.copytree(PROJECT_ROOT / "data" / "jieba", data / "jieba")
    settings = Settings(data_dir=data, var_dir=tmp_path / "var")
    before = evaluation_key(settings)
    (data / "knowledge").mkdir()  # knowledge sources do not change the NLU evaluation
    assert evaluation_key(settings) == before
    with (data / "nlu" / "orders.yml").open("a") as handle:
        handle.write("    - 帮我看看快递\n")
    assert evaluation_key(settings) != before


def test_a_saved_evaluation_is_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=PROJECT_ROOT / "data", var_dir=tmp_path / "var")
    folder = tmp_path / "eval"
    folder.mkdir()
    saved = make_evaluation(evaluation_key(settings), BASE)
    (folder / "evaluation.json").write_text(json.dumps(saved.to_dict()))
    assert evaluate(settings, out=folder) == load_evaluation(folder / "evaluation.json")


# ------------------------------------------------------------- the real pipeline (slow)


def _damage(nlu: Path) -> None:
    """Relabels most `order_status` examples as `logistics_issue`: a careless bulk edit."""
    path = nlu / "orders.yml"
    text = path.read_text()
    assert "- intent: order_status" in text
    lines = text.splitlines()
    start = lines.index("- intent: order_status")
    block = [i for i in range(start + 2, len(lines)) if lines[i].startswith("    - ")]
    end = next(i for i in range(start + 2, len(lines)) if not lines[i].startswith("    "))
    block = [i for i in block if i < end]
    moved = [lines[i] for i in block[: len(block) * 2 // 3]]
    kept = [line for i, line in enumerate(lines) if i not in set(block[: len(block) * 2 // 3])]
    extra = ["- intent: logistics_issue", "  examples: |", *moved]
    path.write_text("\n".join(kept + extra) + "\n")


@pytest.mark.slow
def test_the_gate_refuses_a_damaged_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real training twice: the demo data (baseline, deployed) and a damaged copy."""
    from bot.cli.editor import gate_command
    from bot.core.settings import get_settings
    from bot.editor.deployment import Deployment, DeploymentLog

    data = tmp_path / "data"
    shutil.copytree(PROJECT_ROOT / "data", data)
    var = tmp_path / "var"
    settings = Settings(data_dir=data, var_dir=var)
    baseline = evaluate(settings)
    assert baseline.macro_f1 > 0.85
    DeploymentLog.of(settings).write(
        [Deployment("/models/kefu-old.tar.gz", None, baseline.folder, "2026-11-22T00:00:00+00:00")]
    )
    monkeypatch.setenv("KEFU_DATA_DIR", str(data))
    monkeypatch.setenv("KEFU_VAR_DIR", str(var))
    get_settings.cache_clear()
    try:
        passed = CliRunner().invoke(gate_command, [])
        assert passed.exit_code == 0, passed.output
        assert "PASSED" in passed.output

        _damage(data / "nlu")
        refused = CliRunner().invoke(gate_command, [])
    finally:
        get_settings.cache_clear()
    assert refused.exit_code == 1, refused.output
    assert "REFUSED" in refused.output and "macro-F1 dropped" in refused.output
    worse = refused.output.split("intents that got worse")[1]
    assert "order_status" in worse and "logistics_issue" in worse


def _run_cli(command: object, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Result:
    """Runs a `kefu` command with settings read from `env`."""
    from bot.core.settings import get_settings

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(command, [])  # type: ignore[arg-type]
    finally:
        get_settings.cache_clear()


def test_evaluate_refuses_broken_yaml_naming_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.cli.editor import evaluate_command

    data = tmp_path / "data"
    shutil.copytree(PROJECT_ROOT / "data", data)
    (data / "nlu" / "zz.yml").write_text("nlu:\n- intent: x\n  examples: [unclosed\n")
    env = {"KEFU_DATA_DIR": str(data), "KEFU_VAR_DIR": str(tmp_path / "var")}
    result = _run_cli(evaluate_command, env, monkeypatch)
    assert result.exit_code == 1
    assert "data/nlu/zz.yml:4: error: YAML syntax error" in result.output
    assert not (tmp_path / "var" / "eval").exists()


def test_deploy_says_so_when_the_bot_is_not_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.bench.common import free_port
    from bot.cli.editor import deploy_command

    env = {"KEFU_VAR_DIR": str(tmp_path / "var"), "KEFU_RASA_PORT": str(free_port())}
    result = _run_cli(deploy_command, env, monkeypatch)
    assert result.exit_code == 1
    assert "Rasa is not reachable" in result.output and "nothing was deployed" in result.output
    assert not (tmp_path / "var" / "deployments.json").exists()
