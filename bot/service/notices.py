"""What the service loop says: the texts of every notice, to customers and to staff.

Pure functions of their arguments (and the loaded policy for due times): the desk's case work
(`bot.casework`), the scheduler (`bot.followups`) and the handoff desk build their messages
here, so one ticket's messages read alike whoever sends them. Customer texts come in Chinese
and English (`language == "en"` gives English, anything else Chinese); staff texts are
bilingual in one string (alerts and emails go to the desk, whose agents read both). The kind
constants name `Notice.kind` values; `rating_buttons` are the 1-5 satisfaction buttons whose
payloads the bot's rating flow understands.
"""

from __future__ import annotations

from datetime import datetime

from bot.core.db.models import TicketStatus
from bot.service.policy import ServicePolicy
from bot.service.sla import format_due

PROGRESS_UPDATE = "progress_update"
"""An agent's customer-visible update."""
PROGRESS_NOTICE = "progress_notice"
"""The automatic notice every `progress_every_days` while a ticket is open."""
RESULT = "result"
CSAT = "csat"
CSAT_REMINDER = "csat_reminder"
SECOND_FOLLOWUP = "second_followup"
VIP_CHECKIN = "vip_checkin"
UNCONFIRMED_NEED = "unconfirmed_need"
"""The need confirmation of a customer who left before confirming (the ticket is opened)."""
ACKNOWLEDGEMENT = "acknowledgement"
TICKET_STATUS = "ticket_status"
SLA_AT_RISK = "sla_at_risk"
SLA_BREACH = "sla_breach"
FOLLOWUP_TASK = "followup_task"

CUSTOMER_KINDS = frozenset(
    {
        PROGRESS_UPDATE,
        PROGRESS_NOTICE,
        RESULT,
        CSAT,
        CSAT_REMINDER,
        SECOND_FOLLOWUP,
        VIP_CHECKIN,
        UNCONFIRMED_NEED,
        ACKNOWLEDGEMENT,
        TICKET_STATUS,
    }
)
"""Kinds sent to the customer's conversation."""
STAFF_KINDS = frozenset({SLA_AT_RISK, SLA_BREACH, FOLLOWUP_TASK})
"""Kinds sent to agents and supervisors (desk alert and email)."""

_S = TicketStatus
STATUS_LABELS: dict[TicketStatus, tuple[str, str]] = {
    _S.open: ("已受理", "received"),
    _S.pending_agent: ("等待客服接手", "waiting for an agent"),
    _S.in_progress: ("处理中", "in progress"),
    _S.waiting_customer: ("等待您补充信息", "waiting for your information"),
    _S.resolved: ("已解决", "resolved"),
    _S.closed: ("已关闭", "closed"),
}
"""How a status is named to the customer (zh, en)."""

NEXT_STEPS: dict[TicketStatus, tuple[str, str]] = {
    _S.open: ("等待客服接手", "waiting for an agent to take it"),
    _S.pending_agent: ("等待客服接手", "waiting for an agent to take it"),
    _S.in_progress: ("客服处理中", "an agent is working on it"),
    _S.waiting_customer: ("等您补充信息", "we need more information from you"),
    _S.resolved: (
        "请确认是否解决（7 天内可重新打开）",
        "please confirm it is fixed (you can reopen it within 7 days)",
    ),
    _S.closed: ("已关闭", "closed"),
}
"""The next step of a ticket in each status, as the customer reads it (zh, en)."""


def _en(language: str) -> bool:
    return language == "en"


def _pick(pair: tuple[str, str], language: str) -> str:
    return pair[1] if _en(language) else pair[0]


def _days(days: float) -> str:
    return f"{days:g}"


def rating_buttons(language: str) -> list[dict[str, str]]:
    """Five buttons, 5 (very satisfied) first; their payloads carry the score."""
    titles_zh = {5: "5 非常满意", 4: "4 满意", 3: "3 一般", 2: "2 不满意", 1: "1 非常不满意"}
    titles_en = {
        5: "5 very satisfied",
        4: "4 satisfied",
        3: "3 okay",
        2: "2 unsatisfied",
        1: "1 very unsatisfied",
    }
    titles = titles_en if _en(language) else titles_zh
    return [
        {"title": titles[score], "payload": f'/rate_service{{"score": {score}}}'}
        for score in (5, 4, 3, 2, 1)
    ]


def status_label(status: TicketStatus, language: str) -> str:
    """The status as the customer reads it ("处理中" / "in progress")."""
    return _pick(STATUS_LABELS[status], language)


def next_step(status: TicketStatus, language: str) -> str:
    """What happens next for a ticket in this status ("客服处理中" / "an agent is on it")."""
    return _pick(NEXT_STEPS[status], language)


# ---------------------------------------------------------------------------- to customers


def progress_update(number: str, text: str, language: str) -> str:
    """An agent's update as sent: "工单 TK… 进展：<text>"."""
    if _en(language):
        return f"Update on ticket {number}: {text}"
    return f"工单 {number} 进展：{text}"


def progress_notice(
    policy: ServicePolicy,
    *,
    number: str,
    status: TicketStatus,
    due_at: datetime,
    language: str,
    latest_update: str | None = None,
) -> str:
    """The automatic progress notice.

    The latest agent update since the last notice if there is one, else "still being
    handled", the next step and the due time.
    """
    if latest_update:
        if _en(language):
            return f"Ticket {number}, latest progress: {latest_update}"
        return f"工单 {number} 最新进展：{latest_update}"
    due = format_due(policy, due_at, language)
    if _en(language):
        return (
            f"Ticket {number} is still being handled. Next step: {next_step(status, language)}; "
            f'we aim to finish by {due}. Send "my tickets" any time to check it.'
        )
    return (
        f"工单 {number} 仍在处理中。下一步：{next_step(status, language)}；"
        f"预计 {due} 前处理完毕。发“我的工单”随时查看进度。"
    )


def result(
    number: str,
    result_text: str,
    improvement: str | None,
    language: str,
    reopen_within_days: float = 7,
) -> str:
    """The result notice: what was done, the improvement measure, how to reopen."""
    days = _days(reopen_within_days)
    if _en(language):
        lines = [f"Ticket {number} is resolved. What we did: {result_text}"]
        if improvement:
            lines.append(f"What we changed so it does not happen again: {improvement}")
        lines.append(f'Not fixed? Reply "reopen" within {days} days and we will pick it up again.')
        return "\n".join(lines)
    lines = [f"工单 {number} 已处理完毕。处理结果：{result_text}"]
    if improvement:
        lines.append(f"改进措施：{improvement}")
    lines.append(f"如问题仍未解决，{days} 天内回复“重新打开”，我们会继续跟进。")
    return "\n".join(lines)


def csat_question(number: str, language: str) -> str:
    """The satisfaction question (sent with `rating_buttons`)."""
    if _en(language):
        return (
            f"How satisfied are you with how we handled ticket {number}? Tap a score from 1 to 5."
        )
    return f"您对工单 {number} 的处理满意吗？请点选 1-5 分。"


def csat_reminder(number: str, language: str) -> str:
    """The one reminder of an unanswered satisfaction question."""
    if _en(language):
        return (
            f"A quick reminder: how satisfied are you with ticket {number}? "
            "Your score (1 to 5) helps us improve."
        )
    return f"打扰一下：您对工单 {number} 的处理还满意吗？您的评分（1-5 分）能帮我们做得更好。"


def second_followup(number: str, language: str, hours: float = 48) -> str:
    """To an unhappy customer: a supervisor will contact them within `hours`."""
    within = _days(hours)
    if _en(language):
        return (
            f"We are sorry ticket {number} did not go well. A supervisor will contact you "
            f"within {within} hours to put it right."
        )
    return f"很抱歉工单 {number} 的处理没有让您满意。主管会在 {within} 小时内联系您，继续跟进。"


def vip_checkin(language: str, advisor_name: str | None, customer_name: str | None = None) -> str:
    """The monthly VIP check-in from the customer's advisor."""
    if _en(language):
        greeting = f"Hello {customer_name}" if customer_name else "Hello"
        who = (
            f"this is {advisor_name}, your dedicated advisor"
            if advisor_name
            else "this is your dedicated advisor"
        )
        return (
            f"{greeting}, {who}. How are your products working for you? "
            "If anything needs attention, just reply here."
        )
    greeting = f"{customer_name}您好" if customer_name else "您好"
    who = f"我是您的专属顾问{advisor_name}" if advisor_name else "我是您的专属顾问"
    return f"{greeting}，{who}。最近产品使用还顺利吗？有任何需要，直接在这里回复我就好。"


def unconfirmed_need(
    policy: ServicePolicy, *, number: str, summary: str, due_at: datetime, language: str
) -> str:
    """To a customer who left before confirming their need: what was registered, and when."""
    due = format_due(policy, due_at, language)
    if _en(language):
        return (
            f"We did not hear back from you, so we registered your request as we understood it, "
            f"ticket {number}: {summary}. We aim to handle it by {due}. If anything is wrong, "
            'reply "add information" and tell us; send "my tickets" to follow it.'
        )
    return (
        f"没等到您的确认，我们已按理解为您登记工单 {number}：{summary}。预计 {due} 前处理。"
        "如有不符，回复“补充信息”告诉我们；发“我的工单”随时查看进度。"
    )


def acknowledgement(policy: ServicePolicy, *, number: str, due_at: datetime, language: str) -> str:
    """To a customer waiting for an agent: the message is on the ticket, when to expect help."""
    due = format_due(policy, due_at, language)
    if _en(language):
        return (
            f"Got it, added to ticket {number}. An agent will take it first thing when online "
            f'(expected before {due}). Send "my tickets" any time to check progress.'
        )
    return (
        f"收到，已记入工单 {number}，客服上线后优先处理（预计 {due} 前）；"
        "发“我的工单”随时查看进度。"
    )


def status_line(
    policy: ServicePolicy,
    *,
    number: str,
    status: TicketStatus,
    due_at: datetime,
    summary: str,
    language: str,
) -> str:
    """One ticket in "我的工单": number, status, next step, due time (unfinished), summary."""
    label = status_label(status, language)
    step = next_step(status, language)
    finished = status in (_S.resolved, _S.closed)
    due = "" if finished else format_due(policy, due_at, language)
    if _en(language):
        line = f"{number} · {label} · next: {step}"
        line += f" · due {due}" if due else ""
    else:
        line = f"{number} · {label} · 下一步：{step}"
        line += f" · 预计 {due} 前" if due else ""
    return f"{line}\n{summary}" if summary else line


# ---------------------------------------------------------------------------- to staff


def sla_at_risk(
    policy: ServicePolicy, *, number: str, due_at: datetime, summary: str, responded: bool
) -> str:
    """Desk alert / email: the ticket's window is mostly used up."""
    what_zh, what_en = ("处理", "resolution") if responded else ("首次响应", "first response")
    return (
        f"SLA 即将超时：工单 {number} 的{what_zh}时限为 {format_due(policy, due_at, 'zh')}。"
        f" / At risk: ticket {number} {what_en} due {format_due(policy, due_at, 'en')}."
        f"\n{summary}"
    )


def sla_breach(
    policy: ServicePolicy,
    *,
    number: str,
    due_at: datetime,
    summary: str,
    responded: bool,
    escalated_to: str | None = None,
) -> str:
    """Desk alert / email: the ticket is past its due time (and to whom it was escalated)."""
    what_zh, what_en = ("处理", "resolution") if responded else ("首次响应", "first response")
    text = (
        f"SLA 已超时：工单 {number} 的{what_zh}时限 {format_due(policy, due_at, 'zh')} 已过。"
        f" / Breached: ticket {number} {what_en} was due {format_due(policy, due_at, 'en')}."
    )
    if escalated_to:
        text += f" 已升级至 {escalated_to} / escalated to {escalated_to}."
    return f"{text}\n{summary}"


def followup_task(
    policy: ServicePolicy, *, number: str, score: int, due_at: datetime, summary: str
) -> str:
    """Desk alert / email to the supervisor: a second follow-up is due."""
    return (
        f"二次回访：工单 {number} 满意度 {score}/5，"
        f"请在 {format_due(policy, due_at, 'zh')} 前联系客户。"
        f" / Second follow-up: ticket {number} was rated {score}/5; contact the customer "
        f"by {format_due(policy, due_at, 'en')}.\n{summary}"
    )
