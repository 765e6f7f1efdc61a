"""The chat benchmark's targets and its printed table: Kefu, bare, Kefu/bare, target, met."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """`numerator / denominator`, None when either is missing or the denominator is not > 0."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


@dataclass(frozen=True)
class Target:
    """A bound a measured value must keep: `<= value` or `>= value`."""

    op: Literal["<=", ">="]
    value: float
    unit: str = "x"

    def met(self, measured: float | None) -> bool:
        """True when `measured` exists and keeps the bound (the bound itself counts as met)."""
        if measured is None:
            return False
        return measured <= self.value if self.op == "<=" else measured >= self.value

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}{self.unit}"


TARGETS: dict[str, Target] = {
    "sequential_p50_ratio": Target("<=", 1.5),
    "throughput_ratio": Target(">=", 1.0),
    "turn_growth_kefu": Target("<=", 1.25),
    "instances_throughput_ratio": Target(">=", 1.5),
    "soak_errors": Target("<=", 0, ""),
    "soak_lost_messages": Target("<=", 0, ""),
    "deploy_worst_wait_s": Target("<=", 1.0, " s"),
}
"""Issue 21's targets, by the result key they judge (Kefu/bare unless named otherwise)."""


# ------------------------------------------------------------------ the table


@dataclass(frozen=True)
class Row:
    """A line of the printed table."""

    metric: str
    kefu: str
    bare: str = ""
    ratio: str = ""
    target: str = ""
    met: str = ""


HEADER = Row("metric", "Kefu", "bare", "Kefu/bare", "target", "met")


def _fmt(value: float | None, digits: int = 1, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{suffix}"


def _mark(key: str, value: float | None) -> tuple[str, str]:
    target = TARGETS[key]
    return str(target), "yes" if target.met(value) else "NO"


def comparison_rows(
    kefu: Mapping[str, Any], bare: Mapping[str, Any], ratios: Mapping[str, float | None]
) -> list[Row]:
    """Kefu, bare and Kefu/bare with the targets, one row per figure."""
    rounds = len(kefu.get("concurrent_rounds_per_s") or [1])
    return [
        Row(
            "sequential p50 (ms)",
            _fmt(kefu["sequential_p50_ms"]),
            _fmt(bare["sequential_p50_ms"]),
            _fmt(ratios["sequential_p50_ratio"], 2, "x"),
            *_mark("sequential_p50_ratio", ratios["sequential_p50_ratio"]),
        ),
        Row(
            "sequential p95 (ms)",
            _fmt(kefu["sequential_p95_ms"]),
            _fmt(bare["sequential_p95_ms"]),
            _fmt(ratio(kefu["sequential_p95_ms"], bare["sequential_p95_ms"]), 2, "x"),
        ),
        Row(
            f"20 concurrent: messages/s (median of {rounds})",
            _fmt(kefu["concurrent_messages_per_s"]),
            _fmt(bare["concurrent_messages_per_s"]),
            _fmt(ratios["throughput_ratio"], 2, "x"),
            *_mark("throughput_ratio", ratios["throughput_ratio"]),
        ),
        Row(
            "20 concurrent: p95 (ms)",
            _fmt(kefu["concurrent_p95_ms"]),
            _fmt(bare["concurrent_p95_ms"]),
        ),
        Row(
            "turns 1-20 median (ms)",
            _fmt(kefu["turns_1_20_median_ms"]),
            _fmt(bare["turns_1_20_median_ms"]),
        ),
        Row(
            "turns 101-120 median (ms)",
            _fmt(kefu["turns_101_120_median_ms"]),
            _fmt(bare["turns_101_120_median_ms"]),
        ),
        Row(
            "growth 101-120 / 1-20",
            _fmt(kefu["turn_growth"], 2, "x"),
            _fmt(bare["turn_growth"], 2, "x"),
            _fmt(ratios["turn_growth_ratio"], 2, "x"),
            *_mark("turn_growth_kefu", ratios["turn_growth_kefu"]),
        ),
        Row(
            "messages without a reply",
            str(kefu["errors"]),
            str(bare["errors"]),
            "",
            "0",
            "yes" if kefu["errors"] == 0 else "NO",
        ),
    ]


def extra_rows(results: Mapping[str, Any]) -> list[Row]:
    """Rows of the optional parts: instances, soak, deploy (those that ran)."""
    rows: list[Row] = []
    if scale := results.get("instances"):
        key, count = "instances_throughput_ratio", scale["instances"]
        rates = scale["messages_per_s"]
        rows += [
            Row("scale-out, 1 instance: messages/s", _fmt(rates.get("1"))),
            Row(
                f"scale-out, {count} instances: messages/s",
                _fmt(rates.get(str(count))),
                "",
                _fmt(scale[key], 2, "x"),
                *_mark(key, scale[key]),
            ),
        ]
    if soak := results.get("soak"):
        label = f"soak {soak['conversations']} conv. {soak['seconds']:.0f} s"
        rows += [
            Row(f"{label}: messages", str(soak["messages"])),
            Row(f"{label}: messages/s", _fmt(soak.get("messages_per_s"))),
            Row(f"{label}: p95 (ms)", _fmt(soak["p95_ms"])),
            Row(
                f"{label}: errors",
                str(soak["errors"]),
                "",
                "",
                *_mark("soak_errors", soak["errors"]),
            ),
            Row(
                f"{label}: lost messages",
                str(soak["lost_messages"]),
                "",
                "",
                *_mark("soak_lost_messages", soak["lost_messages"]),
            ),
            Row(f"{label}: duplicated", str(soak["duplicated_messages"])),
        ]
    if error := results.get("instances_error"):
        rows.append(Row("instances: not measured", error[:60]))
    if deploy := results.get("deploy"):
        worst = deploy.get("worst_wait_seconds")
        rows.append(
            Row(
                f"deploys under load: worst wait (s), {deploy.get('failed')} failed",
                _fmt(worst, 2),
                "",
                "",
                *_mark("deploy_worst_wait_s", worst),
            )
        )
    return rows


def render(rows: Sequence[Row]) -> str:
    """Rows as aligned text under the header."""
    table = [HEADER, *rows]
    widths = [max(len(getattr(r, f)) for r in table) for f in Row.__dataclass_fields__]

    def line(row: Row) -> str:
        cells = [getattr(row, f) for f in Row.__dataclass_fields__]
        first = f"{cells[0]:<{widths[0]}}"
        rest = [f"{c:>{w}}" for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    return "\n".join([line(HEADER), "-" * len(line(HEADER)), *map(line, rows)])
