from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner

from bot.cli.kb import kb
from bot.cli.main import main
from knowledge_index import LabelledQuery, QueryFileError, evaluate, load_queries


class _StubIndex:
    """Returns fixed rankings so every metric is known by hand."""

    entry_index: ClassVar[dict[str, int]] = {"a": 0, "b": 1, "c": 2}
    rankings: ClassVar[dict[str, list[tuple[str, float]]]] = {
        "qa": [("a", 0.9), ("b", 0.1)],  # right at rank 1, answered
        "qb": [("a", 0.8), ("b", 0.3)],  # right at rank 2, answered wrongly
        "qc": [("c", 0.2)],  # right at rank 1, not answered
        "qn1": [("a", 0.7)],  # unanswerable, answered (wrong)
        "qn2": [("b", 0.1)],  # unanswerable, not answered (right)
    }

    def search(
        self, query: str, k: int = 5, mode: str = "hybrid", *, language: str | None = None
    ) -> list[dict[str, Any]]:
        return [
            {"entry_id": entry, "confidence": confidence}
            for entry, confidence in self.rankings.get(query, [])
        ][:k]


def test_metrics_on_a_hand_made_case() -> None:
    queries = [
        LabelledQuery("qa", "a"),
        LabelledQuery("qb", "b"),
        LabelledQuery("qc", "c"),
        LabelledQuery("qn1", None),
        LabelledQuery("qn2", None),
    ]
    result = evaluate(_StubIndex(), queries, answer_threshold=0.5, modes=("hybrid",))  # type: ignore[arg-type]
    metrics = result["hybrid"].to_dict()
    assert metrics["hit@1"] == pytest.approx(2 / 3, abs=1e-4)
    assert metrics["hit@5"] == 1.0
    assert metrics["mrr"] == pytest.approx((1 + 0.5 + 1) / 3, abs=1e-4)
    assert metrics["answer_rate"] == pytest.approx(3 / 5)
    assert metrics["answered_precision"] == pytest.approx(1 / 3, abs=1e-4)
    assert metrics["no_answer_recall"] == 0.5
    assert metrics["p95_ms"] is not None and metrics["p95_ms"] >= metrics["p50_ms"] >= 0


def test_unknown_expected_id_is_refused() -> None:
    with pytest.raises(ValueError, match="missing from the KB"):
        evaluate(_StubIndex(), [LabelledQuery("q", "zzz")], answer_threshold=0.5)  # type: ignore[arg-type]


def test_query_language_is_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    lines = ['{"query": "a", "expected_id": null, "language": "en"}', '{"query": "b"}']
    path.write_text("\n".join(lines), "utf-8")
    assert [q.language for q in load_queries(path)] == ["en", None]
    path.write_text('{"query": "a", "expected_id": null, "language": "fr"}\n', "utf-8")
    with pytest.raises(QueryFileError, match="'language'"):
        load_queries(path)


def test_bad_query_file(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"query": "ok", "expected_id": null}\n{"expected_id": "a"}\n', "utf-8")
    with pytest.raises(QueryFileError, match=r"q\.jsonl:2"):
        load_queries(path)


@pytest.mark.parametrize("command", [("eval", "kb"), ("kb", "eval")], ids=["new", "old-name"])
def test_cli_eval_prints_one_json_object(
    tmp_path: Path, kb_dir: Path, monkeypatch: pytest.MonkeyPatch, command: tuple[str, str]
) -> None:
    queries = tmp_path / "queries.jsonl"
    lines = [
        {"query": "退款几天到", "expected_id": "returns-refund-time"},
        {"query": "包邮吗", "expected_id": "shipping-fee"},
        {"query": "今天天气怎么样", "expected_id": None},
    ]
    queries.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines), "utf-8")
    monkeypatch.setenv("KEFU_KB_MODEL", "hashing")
    monkeypatch.setenv("KEFU_KB_CALIBRATION_QUERIES", "100")
    result = CliRunner().invoke(main, [*command, "--kb", str(kb_dir), "--queries", str(queries)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n_queries"] == 3 and report["n_unanswerable"] == 1
    for mode in ("hybrid", "dense", "lexical"):
        assert set(report[mode]) == {
            "hit@1",
            "hit@5",
            "mrr",
            "answer_rate",
            "answered_precision",
            "no_answer_recall",
            "suggestion_rate",
            "suggestion_hit_rate",
            "p50_ms",
            "p95_ms",
        }


def test_cli_build_refuses_bad_sources(
    tmp_path: Path, kb_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (kb_dir / "bad.yml").write_bytes(b"topic: t\nentries:\n  - id: a\n    question: \xff\n")
    monkeypatch.setenv("KEFU_KB_MODEL", "hashing")
    monkeypatch.setenv("KEFU_KB_VAR_DIR", str(tmp_path / "var"))
    result = CliRunner().invoke(kb, ["build", "--source", str(kb_dir)])
    assert result.exit_code == 1
    assert "bad.yml:4" in result.output and "previous index stays" in result.output
