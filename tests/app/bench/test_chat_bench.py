"""The chat benchmark's pure parts: ratios, turn growth, lost messages, the table, the JSON."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.bench.chat import (
    TARGETS,
    Bot,
    ChatReport,
    Phase,
    Soak,
    assemble,
    attempt,
    bot_summary,
    comparison,
    comparison_rows,
    extra_rows,
    lost_messages,
    ratio,
    read_deploy,
    render,
    soak_results,
    turn_growth,
    turns_median,
    user_texts,
)
from bot.core.settings import Settings


def summary(p50: float, per_s: float, growth: float, errors: int = 0) -> dict[str, Any]:
    return {
        "sequential_p50_ms": p50,
        "sequential_p95_ms": p50 * 2,
        "concurrent_messages_per_s": per_s,
        "concurrent_p95_ms": 500.0,
        "turns_1_20_median_ms": 100.0,
        "turns_101_120_median_ms": 100.0 * growth,
        "turn_growth": growth,
        "errors": errors,
    }


def test_ratio_is_none_when_undefined() -> None:
    assert ratio(150.0, 100.0) == pytest.approx(1.5)
    assert ratio(1.0, 0.0) is None
    assert ratio(None, 1.0) is None
    assert ratio(1.0, None) is None


def test_turn_growth_compares_medians_of_turns_101_120_and_1_20() -> None:
    early = [0.1] * 10 + [0.3] * 10  # median of turns 1-20: 0.2
    middle = [9.0] * 80  # turns 21-100 never count
    late = [0.25] * 11 + [5.0] * 9  # median of turns 101-120: 0.25 (outliers do not move it)
    latencies: list[float | None] = [*early, *middle, *late]
    assert turns_median(latencies, 1, 20) == pytest.approx(0.2)
    assert turns_median(latencies, 101, 120) == pytest.approx(0.25)
    assert turn_growth(latencies) == pytest.approx(1.25)


def test_turn_growth_skips_failed_turns_and_needs_120_turns() -> None:
    latencies: list[float | None] = [0.1] * 120
    latencies[100:110] = [None] * 10
    latencies[110:120] = [0.3] * 10
    assert turn_growth(latencies) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="turn 120"):
        turn_growth([0.1] * 119)
    assert turn_growth([None] * 120) is None


def test_targets_count_the_bound_as_met() -> None:
    assert TARGETS["sequential_p50_ratio"].met(1.5)
    assert not TARGETS["sequential_p50_ratio"].met(1.51)
    assert TARGETS["throughput_ratio"].met(1.0)
    assert not TARGETS["throughput_ratio"].met(0.99)
    assert not TARGETS["throughput_ratio"].met(None)
    assert str(TARGETS["turn_growth_kefu"]) == "<= 1.25x"


def test_comparison_divides_kefu_by_bare() -> None:
    ratios = comparison(summary(120.0, 9.0, 1.1), summary(60.0, 12.0, 1.0))
    assert ratios["sequential_p50_ratio"] == pytest.approx(2.0)
    assert ratios["throughput_ratio"] == pytest.approx(0.75)
    assert ratios["turn_growth_kefu"] == pytest.approx(1.1)
    assert ratios["turn_growth_bare"] == pytest.approx(1.0)
    assert ratios["turn_growth_ratio"] == pytest.approx(1.1)


def test_bot_summary_counts_throughput_over_replies_only() -> None:
    concurrent = Phase([0.1, None, 0.3, 0.2], wall_s=2.0)
    long = Phase([0.1] * 20 + [0.5] * 80 + [0.2] * 20)
    result = bot_summary(Phase([0.1, 0.2, 0.3]), [concurrent], long)
    assert result["concurrent_messages"] == 4
    assert result["concurrent_messages_per_s"] == pytest.approx(1.5)  # 3 replies in 2 s
    assert result["sequential_p50_ms"] == pytest.approx(200.0)
    assert result["turn_growth"] == pytest.approx(2.0)
    assert result["errors"] == 1


def test_throughput_is_the_median_round_and_latencies_are_pooled() -> None:
    rounds = [
        Phase([0.1] * 10, wall_s=1.0),  # 10/s
        Phase([0.2] * 10, wall_s=5.0),  # 2/s: a burst of other work on the machine
        Phase([0.1] * 8, wall_s=1.0),  # 8/s
    ]
    result = bot_summary(Phase([0.1]), rounds, Phase([0.1] * 120))
    assert result["concurrent_messages_per_s"] == pytest.approx(8.0)
    assert result["concurrent_rounds_per_s"] == [10.0, 2.0, 8.0]
    assert result["concurrent_messages"] == 28
    assert result["concurrent_p95_ms"] == pytest.approx(200.0)


def test_user_texts_reads_only_customer_messages() -> None:
    events = [
        {"event": "action", "name": "action_session_start"},
        {"event": "user", "text": "你好"},
        {"event": "bot", "text": "您好"},
        {"event": "user", "text": "怎么退货"},
    ]
    assert user_texts(events) == ["你好", "怎么退货"]


def test_lost_messages_compares_multisets_per_conversation() -> None:
    sent = {"a": ["你好", "你好", "怎么退货"], "b": ["hi"], "c": ["x", "y"]}
    stored: dict[str, list[str] | None] = {
        "a": ["你好", "怎么退货"],  # one 你好 of two is missing
        "b": ["hi", "hi"],  # stored twice: a duplicate, not a loss
        "c": None,  # unreadable: both count as lost
    }
    count = lost_messages(sent, stored)
    assert (count.sent, count.lost, count.duplicated, count.unread_conversations) == (6, 3, 1, 1)


def test_lost_messages_of_a_conversation_never_read_back() -> None:
    count = lost_messages({"a": ["x"], "b": ["y"]}, {"a": ["x"]})
    assert (count.lost, count.unread_conversations) == (1, 1)
    assert lost_messages({"a": ["x"]}, {"a": ["x"]}).lost == 0


def test_soak_results_report_errors_and_losses() -> None:
    run = Soak({"s1": ["a", "b"], "s2": ["c"]}, Phase([0.1, None, 0.2], wall_s=3.0))
    result = soak_results(run, {"s1": ["a"], "s2": ["c"]}, 300.0)
    assert result["messages"] == 3
    assert result["errors"] == 1
    assert result["lost_messages"] == 1
    assert result["messages_per_s"] == pytest.approx(1.0)


def test_rows_and_table_show_ratios_and_verdicts() -> None:
    kefu, bare = summary(150.0, 10.0, 1.3), summary(100.0, 12.0, 1.0)
    rows = comparison_rows(kefu, bare, comparison(kefu, bare))
    by_metric = {row.metric: row for row in rows}
    p50 = by_metric["sequential p50 (ms)"]
    assert (p50.kefu, p50.bare, p50.ratio, p50.target, p50.met) == (
        "150.0", "100.0", "1.50x", "<= 1.5x", "yes"
    )  # fmt: skip
    assert by_metric["20 concurrent: messages/s (median of 1)"].met == "NO"  # 0.83x < 1.0x
    growth = by_metric["growth 101-120 / 1-20"]
    assert (growth.kefu, growth.met) == ("1.30x", "NO")  # judged on Kefu's own growth
    text = render(rows)
    lines = text.splitlines()
    assert lines[0].split() == ["metric", "Kefu", "bare", "Kefu/bare", "target", "met"]
    width = len("growth 101-120 / 1-20") + 2  # the longest metric, then the Kefu column
    kefu_ends = {
        line.index(row.kefu, width) + len(row.kefu)
        for line, row in zip(lines[2:], rows, strict=True)
    }
    assert len(kefu_ends) == 1  # right-aligned
    assert any(line.startswith("sequential p50 (ms)") and line.endswith("yes") for line in lines)


def test_missing_values_show_as_not_available() -> None:
    kefu = summary(150.0, 10.0, 1.0) | {"sequential_p50_ms": None}
    rows = comparison_rows(
        kefu, summary(100.0, 10.0, 1.0), comparison(kefu, summary(100.0, 10.0, 1.0))
    )
    assert (rows[0].kefu, rows[0].ratio, rows[0].met) == ("n/a", "n/a", "NO")


def test_assemble_judges_every_part_that_ran(tmp_path: Path) -> None:
    extra = {
        "instances": {
            "instances": 2,
            "messages_per_s": {"1": 10.0, "2": 14.0},
            "p95_ms": {"1": 1.0, "2": 1.0},
            "instances_throughput_ratio": 1.4,
        },
        "soak": {
            "conversations": 200,
            "seconds": 300.0,
            "messages": 6000,
            "p95_ms": 900.0,
            "errors": 0,
            "lost_messages": 2,
            "duplicated_messages": 0,
        },
        "deploy": {"worst_wait_seconds": 0.8, "failed": 0, "messages": 100},
    }
    results = assemble(
        summary(120.0, 12.0, 1.1), summary(100.0, 12.0, 1.0), {"start": [1.0]}, extra
    )
    assert results["met"] == {
        "sequential_p50_ratio": True,
        "throughput_ratio": True,
        "turn_growth_kefu": True,
        "instances_throughput_ratio": False,
        "soak_errors": True,
        "soak_lost_messages": False,
        "deploy_worst_wait_s": True,
    }
    assert results["all_met"] is False
    rows = {row.metric: row for row in extra_rows(results)}
    assert rows["scale-out, 1 instance: messages/s"].kefu == "10.0"
    two = rows["scale-out, 2 instances: messages/s"]
    assert (two.kefu, two.ratio, two.target, two.met) == ("14.0", "1.40x", ">= 1.5x", "NO")
    assert rows["soak 200 conv. 300 s: lost messages"].met == "NO"
    report = ChatReport("chat", results, tmp_path / "bench" / "chat.json")
    report.lines = extra_rows(results)
    report.write()
    written = json.loads(report.path.read_text("utf-8"))
    assert written["results"]["ratios"]["sequential_p50_ratio"] == pytest.approx(1.2)
    assert written["results"]["load_average"] == {"start": [1.0]}
    assert "load average (1, 5, 15 min) at start: [1.0]" in report.table()


def test_all_met_needs_every_kefu_message_answered() -> None:
    results = assemble(summary(100.0, 12.0, 1.0, errors=1), summary(100.0, 12.0, 1.0), {}, {})
    assert all(results["met"].values())
    assert results["all_met"] is False


def test_read_deploy_takes_the_worst_wait_of_both_deploys(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    assert read_deploy(settings) is None
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "deploy.json").write_text(
        json.dumps(
            {
                "measured_at": "t",
                "results": {"worst_wait_seconds": 0.4, "failed": 0, "messages": 50, "other": 1},
            }
        )
    )
    one = read_deploy(settings)
    assert one is not None
    assert (one["worst_wait_seconds"], one["failed"], one["messages"]) == (0.4, 0, 50)
    assert one["runs"]["deploy"]["measured_at"] == "t"
    (tmp_path / "bench" / "deploy-rolling.json").write_text(
        json.dumps({"users": 4, "messages": 333, "failed": 1, "worst_wait_seconds": 4.6})
    )  # a flat file, as deploy_load writes it
    both = read_deploy(settings)
    assert both is not None
    assert (both["worst_wait_seconds"], both["failed"], both["messages"]) == (4.6, 1, 383)
    assert set(both["runs"]) == {"deploy", "deploy-rolling"}
    assert not TARGETS["deploy_worst_wait_s"].met(both["worst_wait_seconds"])


def test_an_empty_answer_fails_only_a_bot_that_must_reply() -> None:
    def silent(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[])

    async def send(bot: Bot, phase: Phase) -> float | None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(silent)) as client:
            return await attempt(client, bot, "s1", "no", phase)

    kefu, bare = Phase(), Phase()
    assert asyncio.run(send(Bot("kefu", "http://kefu", ["hi"]), kefu)) is None
    assert asyncio.run(send(Bot("bare", "http://bare", ["hi"], must_reply=False), bare)) is not None
    assert (kefu.errors, bare.errors) == (1, 0)
    assert "no reply to 'no'" in kefu.error_samples[0]
