from sqlalchemy import Engine

from bot.core.db import KbFeedback, KbOutcome
from bot.knowledge.query_log import KbLog


def record(log: KbLog, sender: str, outcome: KbOutcome, query: str = "q") -> int:
    return log.record(
        sender_id=sender,
        channel="rest",
        language="zh",
        query=query,
        outcome=outcome,
        entry_id="returns-7day" if outcome == KbOutcome.answered else None,
        confidence=0.9,
        top_hits=[{"entry_id": "returns-7day", "confidence": 0.9}],
        index_version="v1",
    )


def test_self_service_rate_counts_answered_and_not_rejected(engine: Engine) -> None:
    log = KbLog(engine)
    for sender in ("a", "b", "c"):
        record(log, sender, KbOutcome.answered)
    record(log, "d", KbOutcome.suggested)
    record(log, "e", KbOutcome.no_answer)
    assert log.record_feedback("a", KbFeedback.not_solved) is not None
    assert log.record_feedback("b", KbFeedback.solved) is not None
    report = log.self_service()
    assert (report.questions, report.answered, report.rejected) == (5, 3, 1)
    assert report.rate == 2 / 5
    assert report.as_dict()["self_service_rate"] == 0.4


def test_feedback_goes_to_the_latest_answer_of_that_customer(engine: Engine) -> None:
    log = KbLog(engine)
    first = record(log, "a", KbOutcome.answered, "first")
    second = record(log, "a", KbOutcome.answered, "second")
    assert log.record_feedback("a", KbFeedback.solved) == second != first
    assert log.record_feedback("nobody", KbFeedback.solved) is None


def test_misses_list_what_editors_should_review(engine: Engine) -> None:
    log = KbLog(engine)
    record(log, "a", KbOutcome.answered, "fine")
    record(log, "b", KbOutcome.answered, "rejected")
    log.record_feedback("b", KbFeedback.not_solved)
    record(log, "c", KbOutcome.no_answer, "unknown")
    assert [m.query for m in log.misses()] == ["unknown", "rejected"]


def test_empty_log_has_rate_zero(engine: Engine) -> None:
    assert KbLog(engine).self_service().rate == 0.0
