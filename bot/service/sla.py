"""Due times: when a need must be handled and confirmed, counted in clock or business hours."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from bot.core.db.models import ComplaintGrade, UrgencyTier
from bot.service.classification import Classification
from bot.service.policy import BusinessHours, ServicePolicy, Window

_UTC = timezone.utc
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone; pass an aware datetime")
    return moment.astimezone(_UTC)


def _add_business_time(
    hours: BusinessHours, zone: ZoneInfo, start: datetime, span: timedelta
) -> datetime:
    """`start` plus `span` counted only while the service team works."""
    cursor, remaining = start, span
    day = start.astimezone(zone).date()
    while True:  # ends: some weekday is open, holidays are finite, every open day has time
        if hours.is_open_on(day):
            opens = datetime.combine(day, hours.start, tzinfo=zone).astimezone(_UTC)
            closes = datetime.combine(day, hours.end, tzinfo=zone).astimezone(_UTC)
            cursor = max(cursor, opens)
            if cursor < closes:
                if remaining <= closes - cursor:
                    return cursor + remaining
                remaining -= closes - cursor
        day += timedelta(days=1)


def next_open_moment(policy: ServicePolicy, moment: datetime) -> datetime:
    """`moment` if the service team works then, else when it next starts work (UTC)."""
    start = _as_utc(moment)
    if policy.business_hours is None:
        return start
    return _add_business_time(policy.business_hours, policy.zone, start, timedelta(0))


def due_at(policy: ServicePolicy, classification: Classification, created_at: datetime) -> datetime:
    """When the need must be handled (UTC): the complaint grade's window, else the tier's."""
    start = _as_utc(created_at)
    window: Window = (
        policy.complaint_grades.window(classification.complaint_grade)
        if classification.complaint_grade is not None
        else policy.tiers.window(classification.tier)
    )
    span = timedelta(hours=window.hours)
    if window.business_hours_only and policy.business_hours is not None:
        return _add_business_time(policy.business_hours, policy.zone, start, span)
    return start + span


def confirmation_due_at(policy: ServicePolicy, created_at: datetime) -> datetime:
    """When the understood need must be confirmed to the customer (UTC, clock hours)."""
    return _as_utc(created_at) + timedelta(hours=policy.confirmation_window_hours)


def format_due(policy: ServicePolicy, due: datetime, language: str) -> str:
    """A due time in the policy zone: "11月22日 15:30" or "Nov 22, 15:30 (UTC+08:00)"."""
    local = _as_utc(due).astimezone(policy.zone)
    if language.lower().startswith("zh"):
        return f"{local.month}月{local.day}日 {local:%H:%M}"
    offset = local.utcoffset() or timedelta()
    minutes = abs(int(offset.total_seconds())) // 60
    sign = "-" if offset < timedelta() else "+"
    zone = f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    return f"{_MONTHS[local.month - 1]} {local.day}, {local:%H:%M} ({zone})"


def resolution_due_at(
    policy: ServicePolicy,
    tier: UrgencyTier,
    grade: ComplaintGrade | None,
    created_at: datetime,
    response_due: datetime,
) -> datetime:
    """When the case must be resolved (UTC, clock hours), never before its response is due."""
    hours = policy.service_loop.resolution_hours.hours(tier, grade)
    return max(_as_utc(created_at) + timedelta(hours=hours), _as_utc(response_due))


def at_risk_moment(policy: ServicePolicy, start: datetime, due: datetime) -> datetime:
    """When the policy's share (`at_risk_share`, default 80 %) of the window has passed."""
    start, due = _as_utc(start), _as_utc(due)
    return start + (due - start) * policy.service_loop.at_risk_share


def next_quiet_end(policy: ServicePolicy, moment: datetime) -> datetime | None:
    """The end of the quiet hours `moment` falls in (UTC), or None when it is not quiet."""
    quiet = policy.service_loop.quiet_hours
    local = _as_utc(moment).astimezone(policy.zone)
    if quiet is None or not quiet.contains(local.timetz().replace(tzinfo=None)):
        return None
    end = datetime.combine(local.date(), quiet.end, tzinfo=policy.zone)
    if end <= local:
        end += timedelta(days=1)
    return end.astimezone(_UTC)
