"""The service loop's texts: language, content and the rating buttons."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.core.db import TicketStatus
from bot.service import notices
from bot.service.policy import ServicePolicy, load_policy

DUE = datetime(2026, 11, 25, 7, 30, tzinfo=UTC)  # 15:30 in Shanghai


@pytest.fixture(scope="module")
def policy() -> ServicePolicy:
    return load_policy()


def test_rating_buttons_carry_the_score() -> None:
    zh, en = notices.rating_buttons("zh"), notices.rating_buttons("en")
    assert [b["payload"] for b in zh] == [f'/rate_service{{"score": {n}}}' for n in (5, 4, 3, 2, 1)]
    assert zh[0]["title"] == "5 非常满意" and en[-1]["title"] == "1 very unsatisfied"


def test_progress_update_is_prefixed_with_the_ticket() -> None:
    assert notices.progress_update("TK1", "已寄出新耳机", "zh") == "工单 TK1 进展：已寄出新耳机"
    assert notices.progress_update("TK1", "shipped", "en").startswith("Update on ticket TK1")


def test_progress_notice_prefers_the_latest_update(policy: ServicePolicy) -> None:
    args = {"number": "TK1", "status": TicketStatus.in_progress, "due_at": DUE}
    latest = notices.progress_notice(policy, language="zh", latest_update="已联系仓库", **args)
    assert "已联系仓库" in latest and "仍在处理" not in latest
    still = notices.progress_notice(policy, language="zh", **args)
    assert "仍在处理中" in still and "客服处理中" in still and "11月25日 15:30" in still
    english = notices.progress_notice(policy, language="en", **args)
    assert "still being handled" in english and "Nov 25, 15:30" in english


def test_result_has_the_measure_and_the_reopen_window() -> None:
    text = notices.result("TK1", "已换新", "加强出厂检测", "zh", 7)
    assert "已换新" in text and "改进措施：加强出厂检测" in text and "7 天内回复“重新打开”" in text
    english = notices.result("TK1", "replaced", None, "en", 7)
    assert "replaced" in english and "changed" not in english and "within 7 days" in english


def test_acknowledgement_promises_a_time(policy: ServicePolicy) -> None:
    text = notices.acknowledgement(policy, number="TK1", due_at=DUE, language="zh")
    assert text.startswith("收到，已记入工单 TK1") and "预计 11月25日 15:30 前" in text
    assert "我的工单" in text


@pytest.mark.parametrize(
    ("status", "step"),
    [(TicketStatus.open, "等待客服接手"), (TicketStatus.pending_agent, "等待客服接手"),
     (TicketStatus.in_progress, "客服处理中"), (TicketStatus.waiting_customer, "等您补充信息"),
     (TicketStatus.resolved, "请确认是否解决（7 天内可重新打开）"),
     (TicketStatus.closed, "已关闭")],
)  # fmt: skip
def test_next_steps(status: TicketStatus, step: str) -> None:
    assert notices.next_step(status, "zh") == step
    assert notices.next_step(status, "en") != step


def test_status_line_hides_the_due_time_of_finished_tickets(policy: ServicePolicy) -> None:
    common = {"number": "TK1", "due_at": DUE, "summary": "耳机", "language": "zh"}
    open_line = notices.status_line(policy, status=TicketStatus.in_progress, **common)
    assert open_line == "TK1 · 处理中 · 下一步：客服处理中 · 预计 11月25日 15:30 前\n耳机"
    done = notices.status_line(policy, status=TicketStatus.resolved, **common)
    assert "预计" not in done and "已解决" in done


def test_other_customer_texts_speak_the_language() -> None:
    assert "TK1" in notices.csat_question("TK1", "zh") and "1-5" in notices.csat_question(
        "TK1", "zh"
    )
    assert "reminder" in notices.csat_reminder("TK1", "en")
    assert "48 小时内" in notices.second_followup("TK1", "zh", 48)
    assert "within 48 hours" in notices.second_followup("TK1", "en", 48)
    assert "专属顾问李娜" in notices.vip_checkin("zh", "李娜", "王先生")
    assert "Hello, this is your dedicated advisor" in notices.vip_checkin("en", None)


def test_staff_texts_are_bilingual(policy: ServicePolicy) -> None:
    risk = notices.sla_at_risk(policy, number="TK1", due_at=DUE, summary="s", responded=False)
    assert "SLA 即将超时" in risk and "At risk" in risk and "首次响应" in risk
    breach = notices.sla_breach(
        policy, number="TK1", due_at=DUE, summary="s", responded=True, escalated_to="supervisor"
    )
    assert "已超时" in breach and "escalated to supervisor" in breach
    task = notices.followup_task(policy, number="TK1", score=2, due_at=DUE, summary="s")
    assert "2/5" in task and "Second follow-up" in task
    assert notices.CUSTOMER_KINDS.isdisjoint(notices.STAFF_KINDS)
