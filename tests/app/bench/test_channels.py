"""The channel benchmark's pure helpers: attribution, duplicate counting, results, table."""

from __future__ import annotations

import pytest

from bot.bench.channels import (
    Copy,
    Secrets,
    Sent,
    TrackerCounts,
    attribute,
    retries_processed,
    rows,
    telegram_results,
    wechat_results,
)


def passive(seconds: float, text: str = "您好") -> Copy:
    return Copy(seconds, 200, text)


def success(seconds: float) -> Copy:
    return Copy(seconds, 200, None)


def test_attribute_groups_items_per_window_and_ignores_earlier_ones() -> None:
    items = [(at, f"t{at}") for at in (5.0, 10.0, 19.9, 20.0, 31.0, 99.0)]
    assert attribute([10.0, 20.0, 30.0], items) == [
        ["t10.0", "t19.9"],
        ["t20.0"],
        ["t31.0", "t99.0"],
    ]
    assert attribute([], [(1.0, "x")]) == []


def test_tracker_counts_user_and_bot_events() -> None:
    events = [
        {"event": "action", "name": "action_session_start"},
        {"event": "session_started"},
        {"event": "user", "text": "hello"},
        {"event": "bot", "text": "hi"},
        {"event": "bot", "text": "how can I help?"},
        {"event": "user", "text": "bye"},
    ]
    assert TrackerCounts.of(events) == TrackerCounts(user=2, bot=2)


def test_sent_slowest_copy_and_passive_copies() -> None:
    item = Sent("u", 1, 0.0, [success(0.01), passive(0.8), Copy(0.02, 200, None)])
    assert item.slowest == 0.8
    assert item.passive == [item.copies[1]]
    assert Sent("u", 2, 0.0, [passive(0.1), Copy(None, error="timeout")]).slowest is None


def test_retries_processed_counts_user_messages_beyond_distinct_ids() -> None:
    sent = [Sent("a", 1, 0.0), Sent("a", 2, 1.0), Sent("b", 3, 0.0)]
    trackers = {"a": TrackerCounts(user=3, bot=3), "b": TrackerCounts(user=1, bot=1)}
    assert retries_processed(sent, trackers) == 1
    assert retries_processed(sent, {"a": TrackerCounts(user=1, bot=0)}) == 0


def test_wechat_results_clean_run() -> None:
    sent = [
        Sent("a", 1, 0.0, [passive(0.3)]),
        Sent("a", 2, 2.0, [success(4.0), success(0.01), success(0.01)], text="发票"),
        Sent("a", 3, 10.0, [passive(0.5)]),
    ]
    pushes = {"a": [(7.0, "发票在订单页申请")]}  # message 2's answer, 5 s after it was sent
    trackers = {"a": TrackerCounts(user=3, bot=3)}
    results = wechat_results(sent, pushes, trackers, wall=12.0)
    assert results["messages"] == 3
    assert results["requests"] == 5
    assert results["retry_copies"] == 2
    assert results["acknowledged_within_5s_percent"] == 100.0
    assert results["ack_max_ms"] == 4000.0
    assert results["answered_passively"] == 2
    assert results["answered_via_customer_service_api"] == 1
    assert results["unanswered"] == 0
    assert results["answer_max_ms"] == 5000.0
    assert results["duplicate_answers"] == 0
    assert results["retries_processed"] == 0
    assert results["errors"] == 0
    assert results["target_met"] is False  # the 4 s acknowledgement misses p95 <= 1 s
    assert results["answer_samples"] == {"": "您好", "发票": "发票在订单页申请"}


def test_wechat_results_count_duplicates_late_acks_and_errors() -> None:
    sent = [
        # Two copies of one MsgId both carried the answer: one duplicate.
        Sent("a", 1, 0.0, [passive(0.2), passive(0.3), success(0.01)]),
        # Answered passively and pushed again through the customer-service API: one more.
        Sent("a", 2, 5.0, [passive(0.4, "您好")]),
        # A long passive answer continued through the API, once: no duplicate.
        Sent("a", 5, 10.0, [passive(0.4, "第一段")]),
        # Acknowledged too late, then never answered.
        Sent("b", 3, 0.0, [success(5.5)]),
        # No response at all.
        Sent("b", 4, 20.0, [Copy(None, error="ReadTimeout: timed out")]),
    ]
    pushes = {"a": [(5.6, "您好"), (10.5, "第二段")], "b": []}
    trackers = {"a": TrackerCounts(user=4, bot=4), "b": TrackerCounts(user=2, bot=1)}
    results = wechat_results(sent, pushes, trackers, wall=30.0)
    assert results["requests"] == 7
    assert results["acknowledged_within_5s_percent"] == pytest.approx(71.43)
    assert results["duplicate_answers"] == 2
    assert results["answered_passively"] == 3
    assert results["retries_processed"] == 1  # user a: 4 user messages for 3 MsgIds
    assert results["unanswered"] == 2
    assert results["errors"] == 1
    assert results["error_samples"] == ["ReadTimeout: timed out"]
    assert results["target_met"] is False


def test_wechat_results_meet_the_targets() -> None:
    sent = [Sent("a", n, float(n), [passive(0.2)]) for n in range(20)]
    results = wechat_results(sent, {}, {"a": TrackerCounts(20, 20)}, wall=20.0)
    assert results["passive_percent"] == 100.0
    assert results["ack_p95_ms"] == pytest.approx(200.0)
    assert results["target_met"] is True


def test_telegram_results() -> None:
    sent = [
        Sent("42", 1, 0.0, [success(0.1)]),
        Sent("42", 2, 1.0, [success(0.3), success(0.02), success(0.02)]),
        Sent("43", 3, 0.0, [success(0.2)]),
        Sent("43", 4, 1.0, [Copy(0.01, 403, error="HTTP 403")]),
    ]
    replies = {"42": 3, "43": 1}
    trackers = {"42": TrackerCounts(user=2, bot=2), "43": TrackerCounts(user=1, bot=2)}
    results = telegram_results(sent, replies, trackers, wall=2.0)
    assert results["updates"] == 4
    assert results["requests"] == 6
    assert results["updates_handled"] == 3
    assert results["updates_per_s"] == 1.5
    assert results["max_ms"] == 300.0
    assert results["replies"] == 4
    assert results["extra_replies"] == 1
    assert results["missing_replies"] == 1
    assert results["retries_processed"] == 0
    assert results["errors"] == 1
    assert results["duplicates_ok"] is False


def test_rows_cover_the_phases_that_ran() -> None:
    wechat = wechat_results([Sent("a", 1, 0.0, [passive(0.2)])], {}, {}, wall=1.0)
    telegram = telegram_results([Sent("1", 1, 0.0, [success(0.1)])], {"1": 1}, {}, wall=1.0)
    both = rows({"wechat": wechat, "telegram": telegram})
    metrics = [metric for metric, _, _ in both]
    assert "WeChat acked within 5 s" in metrics
    assert "Telegram updates/s handled" in metrics
    assert ("WeChat ack p95 (ms)", "200.0", "<= 1000") in both
    assert all(not m.startswith("Telegram") for m, _, _ in rows({"wechat": wechat}))
    assert rows({}) == []


def test_generated_secrets_have_the_platforms_formats() -> None:
    keys = Secrets.generate()
    assert len(keys.encoding_aes_key) == 43 and keys.encoding_aes_key.isalnum()
    assert keys.app_id.startswith("wx")
    bot_id, _, rest = keys.telegram_token.partition(":")
    assert bot_id.isdigit() and rest
    assert Secrets.generate() != keys
