"""The charts of the daily report and the dashboard, drawn by matplotlib from `metrics.json`.

`render_all(metrics)` gives each chart as SVG text (its words stay text: `svg.fonttype`
none, CJK-capable fonts first), `render_png(metrics)` the same charts as PNG bytes (emails:
mail programs do not show SVG). Charts are `Figure` objects (no pyplot state); matplotlib's
settings are changed only inside a lock-guarded `rc_context`, so threads may call these.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

CHARTS = ("hourly", "outcomes", "first_response", "sla", "csat", "qa_agents")
"""Chart names, in the report's order (`<name>.svg`)."""
FONTS = ["Noto Sans CJK SC", "WenQuanYi Zen Hei", "Source Han Sans SC", "DejaVu Sans"]
"""Font families, first found first: Debian's fonts-noto-cjk draws the Chinese labels."""

INK, MUTED, GRID = "#1f2933", "#616e7c", "#e4e7eb"
BLUE, ORANGE, GREEN, RED, AMBER, GREY = (
    "#2f6fba", "#e8833a", "#2e9b5f", "#d64545", "#e0a630", "#b8c0c8",
)  # fmt: skip
OUTCOME_LABELS = {
    "self_service": "机器人解决 Self-service",
    "ticket": "转工单 Ticket",
    "handoff": "转人工 Handoff",
    "unresolved": "未解决 Unresolved",
    "abandoned": "无回复 Abandoned",
    "open": "进行中 Open",
}
OUTCOME_COLOURS = {
    "self_service": GREEN,
    "ticket": BLUE,
    "handoff": ORANGE,
    "unresolved": RED,
    "abandoned": GREY,
    "open": "#8fb3de",
}
TIER_LABELS = {"urgent": "紧急 Urgent", "normal": "普通 Normal", "consultation": "咨询 Consult"}
GRADE_LABELS = {"general": "一般投诉 General", "major": "重大投诉 Major"}

_lock = threading.Lock()


@contextmanager
def _style() -> Iterator[None]:
    """Matplotlib settings of every chart, for the duration of one rendering (one at a time)."""
    import matplotlib  # Figure objects draw without pyplot or a chosen backend

    with (
        _lock,
        matplotlib.rc_context(
            {
                "svg.fonttype": "none",
                "svg.hashsalt": "kefu",
                "font.family": "sans-serif",
                "font.sans-serif": FONTS,
                "font.size": 9,
                "axes.unicode_minus": False,
                "axes.edgecolor": GRID,
                "axes.labelcolor": MUTED,
                "axes.titlesize": 10,
                "axes.titleweight": "bold",
                "axes.titlecolor": INK,
                "axes.titlelocation": "left",
                "axes.spines.top": False,
                "axes.spines.right": False,
                "xtick.color": MUTED,
                "ytick.color": MUTED,
                "legend.frameon": False,
                "legend.fontsize": 8,
            }
        ),
    ):
        yield


FULL, HALF = 10.2, 5.0
"""Chart widths in inches: the report's full width and a half column (1 in = 96 px)."""


def _figure(width: float = HALF, height: float = 2.8) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.add_subplot()


def _no_data(axes: Axes) -> None:
    axes.text(
        0.5, 0.5, "无数据 No data", ha="center", va="center", color=MUTED,
        transform=axes.transAxes,
    )  # fmt: skip
    axes.set_xticks([])
    axes.set_yticks([])


def _grid(axes: Axes, axis: Literal["x", "y"] = "y", counts: bool = True) -> None:
    """Light grid lines on `axis`; whole-number ticks when it shows counts."""
    from matplotlib.ticker import MaxNLocator

    axes.grid(axis=axis, color=GRID, linewidth=0.8)
    axes.set_axisbelow(True)
    if counts:
        (axes.yaxis if axis == "y" else axes.xaxis).set_major_locator(MaxNLocator(integer=True))


def _hourly(metrics: dict[str, Any]) -> Figure:
    figure, axes = _figure(FULL, 2.6)
    axes.set_title("每小时会话 Conversations per hour")
    hours: Sequence[dict[str, Any]] = metrics.get("hourly") or []
    if not any(hour["conversations"] for hour in hours):
        _no_data(axes)
        return figure
    x = [hour["hour"] for hour in hours]
    axes.bar(x, [h["conversations"] for h in hours], color=BLUE, label="会话 Conversations")
    axes.bar(x, [h["handoffs"] for h in hours], color=ORANGE, width=0.5, label="转人工 Handoffs")
    axes.set_xticks(range(0, 24, 2), [f"{h:02d}" for h in range(0, 24, 2)])
    axes.set_xlim(-0.6, 23.6)
    axes.set_xlabel(f"时 Hour ({metrics.get('timezone', '')})")
    axes.legend(loc="upper left")
    _grid(axes)
    return figure


def _outcomes(metrics: dict[str, Any]) -> Figure:
    figure, axes = _figure()
    axes.set_title("会话结果 Outcomes")
    counts = {name: n for name, n in (metrics.get("outcomes") or {}).items() if n}
    if not counts:
        _no_data(axes)
        return figure
    names = [name for name in OUTCOME_LABELS if name in counts][::-1]
    values = [counts[name] for name in names]
    ended = sum(n for name, n in counts.items() if name != "open")
    bars = axes.barh(
        [OUTCOME_LABELS[name] for name in names],
        values,
        color=[OUTCOME_COLOURS[name] for name in names],
    )
    notes = [
        f"{n}  ({n / ended:.0%})" if name != "open" and ended else str(n)
        for name, n in zip(names, values, strict=True)
    ]
    axes.bar_label(bars, notes, padding=3, color=INK)
    axes.set_xlim(0, max(values) * 1.3)
    _grid(axes, "x")
    return figure


def _first_response(metrics: dict[str, Any]) -> Figure:
    figure, axes = _figure()
    tiers = metrics.get("first_response_by_tier") or {}
    rows = [(TIER_LABELS.get(tier, tier), v) for tier, v in tiers.items() if v.get("count")]
    if not rows:
        axes.set_title("人工首次响应 Agent first response")
        _no_data(axes)
        return figure
    longest = max(v["p90_seconds"] or 0 for _, v in rows)
    scale, unit = (60.0, "分钟 min") if longest >= 180 else (1.0, "秒 s")
    axes.set_title(f"人工首次响应 Agent first response ({unit})")
    x = range(len(rows))
    p50 = [(v["p50_seconds"] or 0) / scale for _, v in rows]
    p90 = [(v["p90_seconds"] or 0) / scale for _, v in rows]
    left = axes.bar([i - 0.2 for i in x], p50, width=0.4, color=BLUE, label="P50")
    right = axes.bar([i + 0.2 for i in x], p90, width=0.4, color="#8fb3de", label="P90")
    for bars in (left, right):
        axes.bar_label(bars, [f"{bar.get_height():.1f}" for bar in bars], padding=2, fontsize=8)
    axes.set_xticks(list(x), [f"{label}\nn={v['count']}" for label, v in rows])
    axes.set_ylim(0, max(p90) * 1.4 or 1)
    axes.legend(loc="upper left", ncols=2)
    _grid(axes, counts=False)
    return figure


def _sla(metrics: dict[str, Any]) -> Figure:
    figure, axes = _figure(height=3.0)
    axes.set_title("SLA 达成 SLA by tier and complaint grade")
    groups = [
        (TIER_LABELS.get(name, name), bucket)
        for name, bucket in (metrics.get("sla_by_tier") or {}).items()
    ] + [
        (GRADE_LABELS.get(name, name), bucket)
        for name, bucket in (metrics.get("sla_by_complaint_grade") or {}).items()
    ]
    groups = [(label, bucket) for label, bucket in groups if bucket.get("tickets")][::-1]
    if not groups:
        _no_data(axes)
        return figure
    labels = [label for label, _ in groups]
    left = [0.0] * len(groups)
    for state, colour, name in (
        ("hit", GREEN, "达成 Hit"),
        ("missed", RED, "超时 Missed"),
        ("pending", GREY, "未到期 Pending"),
    ):
        values = [bucket[state] for _, bucket in groups]
        axes.barh(labels, values, left=left, color=colour, label=name, height=0.6)
        left = [a + b for a, b in zip(left, values, strict=True)]
    for row, (_, bucket) in enumerate(groups):
        text = f"{bucket['rate']:.0%}" if bucket.get("rate") is not None else "—"
        axes.text(left[row], row, f"  {text}", va="center", color=INK, fontsize=8)
    axes.set_xlim(0, max(left) * 1.25)
    figure.legend(loc="outside lower center", ncols=3)
    _grid(axes, "x")
    return figure


def _csat(metrics: dict[str, Any]) -> Figure:
    figure, axes = _figure()
    average = metrics.get("csat_average")
    suffix = f" · 平均 avg {average:.2f}" if average is not None else ""
    axes.set_title(f"满意度 CSAT{suffix}")
    spread = metrics.get("csat_distribution") or {}
    values = [int(spread.get(str(score), 0)) for score in range(1, 6)]
    if not any(values):
        _no_data(axes)
        return figure
    colours = [RED, "#ea7a4b", AMBER, "#7fbf6a", GREEN]
    bars = axes.bar([f"{score}★" for score in range(1, 6)], values, color=colours)
    axes.bar_label(bars, [str(value) for value in values], padding=2, fontsize=8)
    axes.set_ylim(0, max(values) * 1.25)
    _grid(axes)
    return figure


def _qa_agents(metrics: dict[str, Any]) -> Figure:
    rows: list[tuple[str, dict[str, Any]]] = []
    bot = metrics.get("qa_bot") or {}
    if bot.get("average") is not None:
        rows.append(("机器人 Bot", bot))
    rows += [(f"{a['name']} ({a['agent']})", a) for a in metrics.get("qa_agents") or []]
    rows = [(label, row) for label, row in rows if row.get("average") is not None]
    figure, axes = _figure(height=max(2.4, 0.9 + 0.34 * len(rows)))
    axes.set_title("质检平均分 QA average score")
    if not rows:
        _no_data(axes)
        return figure
    rows.sort(key=lambda item: item[1]["average"], reverse=True)
    rows.reverse()
    scores = [row["average"] for _, row in rows]
    colours = [GREEN if s >= 90 else AMBER if s >= 75 else RED for s in scores]
    bars = axes.barh([label for label, _ in rows], scores, color=colours, height=0.6)
    notes = [
        f"{row['average']:.1f}  · {row['findings']} 项 findings"
        + (f" · {row['red_cards']} 红牌 red" if row.get("red_cards") else "")
        for _, row in rows
    ]
    axes.bar_label(bars, notes, padding=3, fontsize=8, color=INK)
    axes.set_xlim(0, 150)
    axes.set_xticks([0, 25, 50, 75, 100])
    _grid(axes, "x", counts=False)
    return figure


_DRAW: dict[str, Callable[[dict[str, Any]], Figure]] = {
    "hourly": _hourly,
    "outcomes": _outcomes,
    "first_response": _first_response,
    "sla": _sla,
    "csat": _csat,
    "qa_agents": _qa_agents,
}


def _render(metrics: dict[str, Any], fmt: str, names: Sequence[str]) -> dict[str, bytes]:
    unknown = [name for name in names if name not in _DRAW]
    if unknown:
        raise KeyError(f"unknown chart {unknown[0]!r} (known: {', '.join(CHARTS)})")
    rendered: dict[str, bytes] = {}
    with _style():
        for name in names:
            figure = _DRAW[name](metrics)
            buffer = io.BytesIO()
            metadata = {"Date": None} if fmt == "svg" else {}
            figure.savefig(buffer, format=fmt, dpi=144, metadata=metadata, facecolor="white")
            rendered[name] = buffer.getvalue()
    return rendered


def render_all(metrics: dict[str, Any], names: Sequence[str] = CHARTS) -> dict[str, str]:
    """Each chart (`CHARTS`, or `names`) of `metrics` as SVG text; missing data: "No data".

    Raises:
        KeyError: A name not in `CHARTS`.
    """
    return {name: svg.decode("utf-8") for name, svg in _render(metrics, "svg", names).items()}


def render_png(metrics: dict[str, Any], names: Sequence[str] = CHARTS) -> dict[str, bytes]:
    """The same charts as PNG images (for email)."""
    return _render(metrics, "png", names)
