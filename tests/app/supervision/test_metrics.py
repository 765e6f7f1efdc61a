"""The figures: every expected value is worked out by hand from figures_data.build_day."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from bot.core.db import (
    Conversation,
    Ticket,
    TicketStatus,
    UrgencyTier,
    make_engine,
    session_factory,
    upgrade,
)
from bot.service.policy import ServicePolicy, load_policy
from bot.supervision.errors import QaError
from bot.supervision.metrics import (
    DRILLDOWN,
    ConversationFilter,
    conversation_rows,
    day_bounds,
    day_metrics,
    drilldown_query,
    live_overview,
    period_metrics,
    write_csv,
)
from bot.supervision.tallies import percentile, sla_state, target_table
from tests.app.postgres import postgres_server, postgres_url  # noqa: F401
from tests.app.supervision.figures_data import DAY, build_day, record, z

LATER = z("2026-12-08T00:00")
"""Long after the day: its SLA states are still taken as of its end."""


@pytest.fixture(scope="module")
def policy() -> ServicePolicy:
    return load_policy()


@pytest.fixture
def day(engine: Engine) -> dict[str, Any]:
    return build_day(engine)


@pytest.fixture
def metrics(engine: Engine, policy: ServicePolicy, day: dict[str, Any]) -> dict[str, Any]:
    return day_metrics(engine, policy, DAY, now=LATER)


def test_day_bounds_are_the_policy_zone_midnights(policy: ServicePolicy) -> None:
    assert policy.timezone == "Asia/Shanghai"
    assert day_bounds(policy, DAY) == (z("2026-12-05T16:00"), z("2026-12-06T16:00"))


def test_percentile_is_linear_between_ranks() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.9) == 7.0
    assert percentile([50.0, 10.0, 30.0, 20.0, 40.0], 0.5) == 30.0
    assert percentile([10.0, 20.0, 30.0, 40.0, 50.0], 0.9) == pytest.approx(46.0)


def test_conversation_counts_outcomes_and_rates(metrics: dict[str, Any]) -> None:
    assert metrics["date"] == "2026-12-06"
    assert metrics["conversations"] == 9  # the two just outside the day are not counted
    assert metrics["ended_conversations"] == 8
    assert metrics["conversations_by_channel"] == {"wechat": 6, "socketio": 2, "telegram": 1}
    assert metrics["conversations_by_language"] == {"zh": 7, "en": 2}
    assert metrics["outcomes"] == {
        "self_service": 2, "ticket": 1, "handoff": 3, "unresolved": 1, "abandoned": 1, "open": 1,
    }  # fmt: skip
    assert metrics["self_service_rate"] == 0.25  # 2 of 8 ended
    assert metrics["handoff_rate"] == 0.375
    assert metrics["ticket_rate"] == 0.125


def test_hourly_counts_use_the_policy_zone(metrics: dict[str, Any]) -> None:
    busy = {
        h["hour"]: (h["conversations"], h["handoffs"])
        for h in metrics["hourly"]
        if h["conversations"]
    }
    assert busy == {
        10: (2, 0),
        11: (1, 1),
        14: (2, 2),
        20: (1, 0),
        21: (1, 0),
        22: (1, 0),
        23: (1, 0),
    }
    assert len(metrics["hourly"]) == 24


def test_first_response_of_handoffs_by_tier(metrics: dict[str, Any]) -> None:
    # 30 s (urgent), 90 s and 150 s (normal)
    assert metrics["first_response_p50_seconds"] == 90.0
    assert metrics["first_response_p90_seconds"] == 138.0  # 90 + 0.8 * 60
    tiers = metrics["first_response_by_tier"]
    assert tiers["urgent"] == {"count": 1, "p50_seconds": 30.0, "p90_seconds": 30.0}
    assert tiers["normal"] == {"count": 2, "p50_seconds": 120.0, "p90_seconds": 144.0}
    assert tiers["consultation"] == {"count": 0, "p50_seconds": None, "p90_seconds": None}


def test_ticket_first_response_and_resolution(metrics: dict[str, Any]) -> None:
    # answered by the day's end: t1 600 s, t2 16800 s, t3 600 s (t5 answered after it)
    assert metrics["ticket_first_response_p50_seconds"] == 600.0
    assert metrics["ticket_first_response_p90_seconds"] == 13560.0  # 600 + 0.8 * 16200
    normal = metrics["ticket_first_response_by_tier"]["normal"]
    assert normal == {"count": 2, "p50_seconds": 8700.0, "p90_seconds": 15180.0}
    # resolved in the day: t1 after 2 h (urgent), the day-old ticket after 24 h (normal)
    assert metrics["tickets_resolved"] == 2
    assert metrics["resolution_p50_hours"] == 13.0
    assert metrics["resolution_p90_hours"] == 21.8
    assert metrics["resolution_by_tier"]["urgent"] == {
        "count": 1,
        "p50_hours": 2.0,
        "p90_hours": 2.0,
    }
    assert metrics["resolution_by_tier"]["normal"]["p50_hours"] == 24.0


def test_sla_hit_missed_pending_by_tier_and_grade(metrics: dict[str, Any]) -> None:
    # t1 hit; t2 answered late; t3 unresolved past its resolution deadline; t4 pending;
    # t5 unanswered past its response deadline at the day's end (answered later)
    assert metrics["tickets_created"] == 5
    assert metrics["sla"] == {"tickets": 5, "hit": 1, "missed": 3, "pending": 1, "rate": 0.25}
    assert metrics["sla_hit_rate"] == 0.25
    tiers = metrics["sla_by_tier"]
    assert tiers["urgent"] == {"tickets": 2, "hit": 1, "missed": 1, "pending": 0, "rate": 0.5}
    assert tiers["normal"] == {"tickets": 2, "hit": 0, "missed": 2, "pending": 0, "rate": 0.0}
    assert tiers["consultation"] == {
        "tickets": 1,
        "hit": 0,
        "missed": 0,
        "pending": 1,
        "rate": None,
    }
    grades = metrics["sla_by_complaint_grade"]
    assert grades["general"] == {"tickets": 1, "hit": 0, "missed": 1, "pending": 0, "rate": 0.0}
    assert grades["major"] == {"tickets": 1, "hit": 0, "missed": 1, "pending": 0, "rate": 0.0}


def test_a_day_not_over_takes_sla_states_as_of_now(
    engine: Engine, policy: ServicePolicy, day: dict[str, Any]
) -> None:
    figures = day_metrics(engine, policy, DAY, now=z("2026-12-06T15:20"))
    # t5's response is due at 15:30: pending, not missed yet
    assert figures["sla_by_tier"]["urgent"] == {
        "tickets": 2, "hit": 1, "missed": 0, "pending": 1, "rate": 1.0,
    }  # fmt: skip


def test_sla_state_rules() -> None:
    due, now = z("2026-12-06T10:00"), z("2026-12-06T12:00")
    base = {"due_at": due, "resolution_due_at": None, "resolved_at": None, "as_of": now}
    assert sla_state(response_due_at=due, first_responded_at=due, **base) == "hit"
    assert sla_state(response_due_at=due, first_responded_at=now, **base) == "missed"
    assert sla_state(response_due_at=due, first_responded_at=None, **base) == "missed"
    later = {**base, "as_of": z("2026-12-06T09:00")}
    assert sla_state(response_due_at=due, first_responded_at=None, **later) == "pending"
    # no response deadline on an older ticket: its due_at is used while unanswered
    assert sla_state(response_due_at=None, first_responded_at=None, **base) == "missed"
    assert sla_state(response_due_at=None, first_responded_at=now, **base) == "hit"
    resolved_late = {**base, "resolution_due_at": due, "resolved_at": now}
    assert sla_state(response_due_at=due, first_responded_at=due, **resolved_late) == "missed"


def test_csat(metrics: dict[str, Any]) -> None:
    # c3 rated 5 in the chat, c4's ticket was rated 2; rateable: c3, c4, c5 (handoffs), c8 (ticket)
    assert metrics["csat_distribution"] == {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1}
    assert metrics["csat_average"] == 3.5
    assert metrics["csat_response_rate"] == 0.5


def test_qa_per_agent_the_bot_and_red_cards(metrics: dict[str, Any], day: dict[str, Any]) -> None:
    assert metrics["qa_bot_average"] == 84.0  # 100, 90, 100, 80, 50
    assert metrics["qa_bot"] == {"conversations": 5, "average": 84.0, "findings": 6, "red_cards": 1}
    assert metrics["qa_agents"] == [
        {"agent": "li.na", "name": "李娜", "conversations": 1, "average": 95.0, "findings": 1,
         "red_cards": 0},
        {"agent": "wang.lei", "name": "王磊", "conversations": 1, "average": 40.0, "findings": 2,
         "red_cards": 1},
    ]  # fmt: skip
    assert metrics["qa_pass_rate"] == 0.7143  # 5 of 7 scored subjects
    assert metrics["red_card_count"] == 2
    c5, c6 = day["c5"], day["c6"]
    assert metrics["red_cards"] == [
        {"conversation_pk": c5, "link": f"/desk/conversations/{c5}", "subject": "agent:wang.lei",
         "agent": "wang.lei", "score": 40.0, "rule_id": "forbidden_words",
         "title": "禁用语 Forbidden words", "detail": "说了“滚”"},
        {"conversation_pk": c6, "link": f"/desk/conversations/{c6}", "subject": "bot",
         "agent": None, "score": 50.0, "rule_id": None,
         "title": "总分低于红线 Score below the red line",
         "detail": "得分 score 50: 答案被否 KB answer rejected −20"},
    ]  # fmt: skip


def test_top_unanswered_groups_wordings_and_counts_a_customer_once(
    metrics: dict[str, Any],
) -> None:
    # c6's customer asked the KB and the conversation ended unresolved on it: once;
    # "好" is too short; the day before does not count
    assert metrics["top_unanswered"] == [
        {"question": "能开发票吗", "key": "能开发票吗", "count": 2},
        {"question": "退货运费谁出", "key": "退货运费谁出", "count": 1},
    ]


def test_targets_with_actual_values(metrics: dict[str, Any]) -> None:
    targets = metrics["targets"]
    assert set(targets) == {
        "need_accuracy", "record_completeness", "self_service_rate", "answer_accuracy",
        "sla_hit_rate", "csat_response_rate", "satisfaction", "qa_pass_rate", "complaint_rate",
    }  # fmt: skip
    assert targets["need_accuracy"] == {"target": 0.95, "actual": 0.5, "met": False}
    assert targets["record_completeness"]["actual"] == 0.6667
    assert targets["answer_accuracy"]["actual"] == 0.6667  # 3 answered, 1 rejected
    assert targets["self_service_rate"] == {"target": 0.7, "actual": 0.25, "met": False}
    assert targets["satisfaction"] == {"target": 4.5, "actual": 3.5, "met": False}
    assert targets["complaint_rate"] == {"target": 0.05, "actual": 0.2222, "met": False}
    assert targets["qa_pass_rate"]["actual"] == 0.7143


def test_target_table_lower_is_better_for_complaints(policy: ServicePolicy) -> None:
    table = target_table(
        policy, {"complaint_rate": 0.01, "sla_hit_rate": 0.99, "satisfaction": None}
    )
    assert table["complaint_rate"]["met"] is True
    assert table["sla_hit_rate"]["met"] is True
    assert table["satisfaction"] == {"target": 4.5, "actual": None, "met": None}


def test_metrics_are_json_and_empty_days_have_none_rates(
    engine: Engine, policy: ServicePolicy, metrics: dict[str, Any]
) -> None:
    json.dumps(metrics)
    empty = day_metrics(engine, policy, date(2026, 1, 1))
    assert empty["conversations"] == 0
    assert empty["self_service_rate"] is None and empty["sla_hit_rate"] is None
    assert empty["csat_average"] is None and empty["qa_agents"] == []
    with pytest.raises(ValueError, match="aware"):
        period_metrics(engine, policy, datetime(2026, 1, 1), datetime(2026, 1, 2))


def test_live_overview(engine: Engine, policy: ServicePolicy, day: dict[str, Any]) -> None:
    live = live_overview(engine, policy, z("2026-12-06T15:20"))
    assert live["date"] == "2026-12-06"  # 23:20 in Shanghai
    assert live["open_tickets"] == 4  # t2, t3, t4, t5
    assert live["at_risk"] == 1  # t5
    assert live["overdue"] == 1  # t3 (due 12:00)
    assert live["unattended"] == 1
    assert live["agents_online"] == 1  # li.na (2 min ago); wang.lei 10 min; old is inactive
    assert live["pending_appeals"] == 1
    assert live["open_alerts"] == 1
    today = live["today"]
    assert today["conversations"] == 9
    assert today["open_conversations"] == 1
    assert today["self_service_rate"] == 0.25
    assert today["handoff_rate"] == 0.375
    assert today["red_cards"] == 2
    assert today["csat_average"] == 3.5
    assert today["first_response_p50_seconds"] == 90.0
    assert today["sla_hit_rate"] == 0.3333  # t1 hit; t2, t3 missed; t4, t5 pending
    assert sum(hour["conversations"] for hour in today["hourly"]) == 9


# ----------------------------------------------------------------------------- drill-down
def total(engine: Engine, policy: ServicePolicy, **values: Any) -> int:
    values.setdefault("start", DAY)
    values.setdefault("end", DAY)
    count, _ = conversation_rows(engine, policy, ConversationFilter(**values), now=LATER)
    return count


FILTER_CASES: list[tuple[dict[str, Any], int]] = [
    ({}, 9),
    ({"outcome": "handoff"}, 3),
    ({"outcome": "open"}, 1),
    ({"handoff": True}, 3),
    ({"handoff": False}, 6),
    ({"agent": "li.na"}, 2),
    ({"agent": "wang.lei"}, 2),
    ({"agent": "li.n"}, 0),
    ({"agent": "li_na"}, 0),
    ({"tier": "normal"}, 2),
    ({"sla_missed": True}, 2),  # c4 (t2), c5 (t3)
    ({"sla_missed": False}, 7),
    ({"complaint": True}, 1),
    ({"rating": 2}, 1),
    ({"rated": True}, 2),
    ({"rule_id": "no_greeting"}, 1),  # li.na's was overturned
    ({"rule_id": "forbidden_words"}, 1),
    ({"red_card": True}, 2),
    ({"hour": 14}, 2),
    ({"question": "发票"}, 1),
    ({"channel": "socketio", "outcome": "abandoned"}, 1),
    ({"has_ticket": True}, 4),
    ({"source": "generated"}, 0),
]
"""Filters of the hand-built day and how many conversations each finds."""


@pytest.mark.parametrize(("values", "expected"), FILTER_CASES)
def test_conversation_filters(
    engine: Engine,
    policy: ServicePolicy,
    day: dict[str, Any],
    values: dict[str, Any],
    expected: int,
) -> None:
    assert total(engine, policy, **values) == expected


def test_every_figure_drills_down_to_its_conversations(
    engine: Engine, policy: ServicePolicy, metrics: dict[str, Any]
) -> None:
    meta = {"date", "start", "end", "as_of", "timezone", "targets"}
    assert set(metrics) - meta <= {name for name in DRILLDOWN if "." not in name}
    assert {name for name in DRILLDOWN if "." not in name} <= set(metrics)
    assert {name.split(".")[1] for name in DRILLDOWN if "." in name} == set(metrics["targets"])
    for figure in ("conversations_by_channel", "conversations_by_language", "outcomes"):
        for key, value in metrics[figure].items():
            query = drilldown_query(figure, DAY, key)
            assert total(engine, policy, **_filter(query)) == value, (figure, key)
    for hour in metrics["hourly"]:
        query = drilldown_query("hourly", DAY, hour["hour"])
        assert total(engine, policy, **_filter(query)) == hour["conversations"]
    for key, value in metrics["csat_distribution"].items():
        assert (
            total(engine, policy, **_filter(drilldown_query("csat_distribution", DAY, key)))
            == value
        )
    assert total(engine, policy, **_filter(drilldown_query("red_card_count", DAY))) == 2
    assert drilldown_query("sla_by_tier", DAY, "urgent") == {
        "date": "2026-12-06", "tier": "urgent", "sla_missed": "true",
    }  # fmt: skip


def _filter(query: dict[str, str]) -> dict[str, Any]:
    flt = ConversationFilter.from_query(query)
    return {name: value for name, value in vars(flt).items() if value is not None}


def test_rows_are_paged_newest_first(
    engine: Engine, policy: ServicePolicy, day: dict[str, Any]
) -> None:
    flt = ConversationFilter(start=DAY, end=DAY)
    count, rows = conversation_rows(engine, policy, flt, limit=2, now=LATER)
    assert count == 9 and [row["pk"] for row in rows] == [day["c9"], day["c8"]]
    _, page = conversation_rows(engine, policy, flt, limit=2, offset=2, now=LATER)
    assert [row["pk"] for row in page] == [day["c7"], day["c6"]]
    _, [c4] = conversation_rows(engine, policy, ConversationFilter(start=DAY, end=DAY, rating=2))
    assert c4["ticket"].startswith("TK") and c4["tier"] == "normal" and c4["rating"] == 2
    assert c4["agent"] == "wang.lei" and c4["agents"] == ["li.na", "wang.lei"]
    assert c4["link"] == f"/desk/conversations/{day['c4']}"
    with pytest.raises(QaError):
        conversation_rows(engine, policy, flt, limit=0)


def test_filter_from_query_refuses_bad_input() -> None:
    flt = ConversationFilter.from_query(
        {"date": "2026-12-06", "handoff": "true", "page": "3", "tier": ""}
    )
    assert flt == ConversationFilter(start=DAY, end=DAY, handoff=True)
    assert ConversationFilter.from_query(flt.as_query()) == flt
    for bad in (
        {"bogus": "1"},
        {"rating": "x"},
        {"rating": "9"},
        {"hour": "14"},
        {"date": "2026-13-01"},
        {"handoff": "maybe"},
        {"outcome": "nope"},
        {"start": "2026-12-06", "end": "2026-12-01"},
        {"start": "2020-01-01", "end": "2026-01-01"},
        {"channel": "x" * 201},
    ):
        with pytest.raises(QaError):
            ConversationFilter.from_query(bad)


def test_csv_export(engine: Engine, policy: ServicePolicy, day: dict[str, Any]) -> None:
    stream = io.StringIO()
    written = write_csv(engine, policy, ConversationFilter(start=DAY, end=DAY), stream, now=LATER)
    text = stream.getvalue()
    assert written == 9 and text.startswith("\ufeffpk,conversation_id,")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert [int(row["pk"]) for row in rows] == sorted(int(row["pk"]) for row in rows)
    c4 = next(row for row in rows if int(row["pk"]) == day["c4"])
    assert c4["agents"] == "li.na wang.lei" and c4["rating"] == "2" and c4["outcome"] == "handoff"


# ----------------------------------------------------------------------------- speed
def _bulk_day(engine: Engine, day: date, n: int, tickets_every: int = 5) -> None:
    """`n` light conversations spread over `day` (Shanghai), every few with a ticket."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=8)
    with session_factory(engine).begin() as session:
        first = record(session).id
        session.execute(
            insert(Ticket),
            [
                {"number": f"TK{day:%Y%m%d}{i:05d}", "record_id": first, "customer_id": f"b{i}",
                 "channel": "wechat", "language": "zh", "status": TicketStatus.resolved,
                 "urgency": UrgencyTier.normal, "due_at": start, "created_at": start,
                 "updated_at": start, "summary": "s", "resolved_at": start + timedelta(hours=3),
                 "response_due_at": start + timedelta(hours=4),
                 "first_responded_at": start + timedelta(hours=1), "satisfaction": 1 + i % 5}
                for i in range(0, 1)
            ],
        )  # fmt: skip
        outcomes = ("self_service", "self_service", "handoff", "ticket", "unresolved")
        session.execute(
            insert(Conversation),
            [
                {"conversation_id": f"b{day}-{i}", "channel": ("wechat", "socketio")[i % 2],
                 "language": "zh", "source": "generated",
                 "started_at": start + timedelta(seconds=i * 86400 // n),
                 "last_message_at": start + timedelta(seconds=i * 86400 // n + 60),
                 "ended_at": start + timedelta(seconds=i * 86400 // n + 60),
                 "outcome": outcomes[i % 5], "agents": [], "first_question": f"问题{i % 40}",
                 "first_response_seconds": float(i % 300) if i % 5 == 2 else None,
                 "rating": 1 + i % 5 if i % 5 == 2 else None}
                for i in range(n)
            ],
        )  # fmt: skip


def test_day_metrics_of_ten_thousand_conversations_take_seconds(
    engine: Engine, policy: ServicePolicy
) -> None:
    _bulk_day(engine, DAY, 10_000)
    began = time.perf_counter()
    figures = day_metrics(engine, policy, DAY, now=LATER)
    elapsed = time.perf_counter() - began
    assert figures["conversations"] == 10_000
    assert elapsed < 5, f"day_metrics took {elapsed:.2f} s"


def test_live_overview_reads_only_today(engine: Engine, policy: ServicePolicy) -> None:
    for offset in range(30):  # a month of 3,000 a day
        _bulk_day(engine, DAY - timedelta(days=offset), 3_000)
    live_overview(engine, policy, z("2026-12-06T10:00"))
    timings = []
    for _ in range(5):
        began = time.perf_counter()
        live = live_overview(engine, policy, z("2026-12-06T10:00"))
        timings.append(time.perf_counter() - began)
    assert live["today"]["conversations"] > 2_000
    assert sorted(timings)[2] < 0.5, f"live_overview took {sorted(timings)[2] * 1000:.0f} ms"


def test_the_same_figures_on_postgresql(
    engine: Engine,
    policy: ServicePolicy,
    postgres_url: str,  # noqa: F811
) -> None:
    upgrade(postgres_url)
    pg = make_engine(postgres_url)
    try:
        build_day(engine)
        build_day(pg)
        assert day_metrics(pg, policy, DAY, now=LATER) == day_metrics(
            engine, policy, DAY, now=LATER
        )
        moment = z("2026-12-06T15:20")
        assert live_overview(pg, policy, moment) == live_overview(engine, policy, moment)
        for values, expected in FILTER_CASES:
            assert total(pg, policy, **values) == expected, values
        stream = io.StringIO()
        assert write_csv(pg, policy, ConversationFilter(start=DAY, end=DAY), stream) == 9
    finally:
        pg.dispose()
