"""The service policy file, its validation, classification, due times and the text readers.

What customers' words mean (complaint, urgency, impacts, outcomes) is read by the learned
readers (tests/app/understanding/test_understanding.py); classification here takes their findings.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from datetime import date, datetime, time, timezone
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from click.testing import CliRunner

from bot.cli.main import main as cli
from bot.core.db.models import ComplaintGrade, UrgencyTier
from bot.core.settings import PROJECT_ROOT
from bot.service.classification import Classification, classify
from bot.service.policy import PolicyError, ServicePolicy, default_policy_path, load_policy
from bot.service.reading import (
    FutureDate,
    is_generic_request,
    product_kind,
    read_amount_yuan,
    read_product,
    read_since,
    read_special_requests,
)
from bot.service.sla import confirmation_due_at, due_at, format_due
from tests.app.conftest import write_yaml

SHANGHAI = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 11, 22)  # a Sunday


@pytest.fixture(scope="module")
def policy() -> ServicePolicy:
    return load_policy()


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(default_policy_path().read_text(encoding="utf-8"))
    return data


def changed(raw: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data = copy.deepcopy(raw)
    change(data)
    return data


write = partial(write_yaml, name="policy.yml")


def policy_error(path: Path) -> str:
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    return str(caught.value)


def local(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    """A moment in Shanghai in November 2026, as UTC (as callers pass it)."""
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(timezone.utc)


# --- the policy file ---------------------------------------------------------------------------


def test_shipped_policy_follows_the_service_plan(policy: ServicePolicy) -> None:
    assert default_policy_path() == PROJECT_ROOT / "data" / "service" / "policy.yml"
    assert policy.zone == SHANGHAI
    assert policy.confirmation_window_hours == 2
    assert policy.tiers.urgent.hours == 1
    assert policy.tiers.normal.hours == 4
    assert policy.tiers.consultation.hours == 24
    assert policy.complaint_grades.general.hours == 1
    assert policy.complaint_grades.major.hours == 48
    assert policy.complaint_grades.major.departments
    assert policy.business_hours is not None
    assert policy.business_hours.start == time(9) and policy.business_hours.end == time(21)
    assert policy.impacts == ("money", "time", "safety", "business")


def test_shipped_policy_names_only_intents_of_the_domain(policy: ServicePolicy) -> None:
    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))
    known = {next(iter(i)) if isinstance(i, dict) else i for i in domain["intents"]}
    named = {
        *policy.urgency.urgent.intents,
        *policy.urgency.consultation.intents,
        *policy.urgency.neutral_intents,
        *policy.complaints.intents,
    }
    assert named <= known, named - known


def test_the_check_command(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["service", "check"])
    assert result.exit_code == 0 and "service policy: OK" in result.output
    result = runner.invoke(cli, ["service", "check", "--policy", str(tmp_path / "nope.yml")])
    assert result.exit_code == 1
    assert "file not found" in result.output


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["tiers"]["urgent"].update(hour=1),
            "tiers.urgent: unknown key 'hour' (did you mean 'hours'?)",
        ),
        (lambda d: d.update(tier={}), "unknown key 'tier' (did you mean 'tiers'?)"),
        (
            lambda d: d.update(impacts=["money", "time", "safety", "mood"]),
            "impacts: 'mood' cannot be read (the impact reader knows: money, time, safety,",
        ),
        (lambda d: d["tiers"]["urgent"].update(hours=-1), "tiers.urgent.hours: must be > 0"),
        (lambda d: d["complaint_grades"]["major"].update(hours=0), "major.hours: must be > 0"),
        (lambda d: d.update(confirmation_window_hours=0), "confirmation_window_hours: must be > 0"),
        (
            lambda d: d["tiers"]["normal"].update(hours="soon"),
            "tiers.normal.hours: must be a valid",
        ),
        (lambda d: d["tiers"].pop("normal"), "tiers.normal: is required but missing"),
        (lambda d: d["business_hours"].update(start="9am"), "business_hours.start: must be a time"),
        (lambda d: d["business_hours"].update(end="25:00"), "business_hours.end: must be a time"),
        (
            lambda d: d["business_hours"].update(start="21:00", end="09:00"),
            "business_hours: start (21:00) must be before end (09:00)",
        ),
        (
            lambda d: d["business_hours"].update(start="09:00", end="09:00"),
            "business_hours: start (09:00) must be before end (09:00)",
        ),
        (
            lambda d: d["business_hours"].update(days=["mon", "funday"]),
            "business_hours.days[1]: must be 'mon', 'tue',",
        ),
        (lambda d: d["business_hours"].update(days=[]), "business_hours.days:"),
        (
            lambda d: d["business_hours"].update(holidays=["2026-13-01"]),
            "business_hours.holidays[0]:",
        ),
        (
            lambda d: d["urgency"]["urgent"].update(impacts=["safty"]),
            "urgency.urgent.impacts: 'safty' is not defined under impacts (did you mean 'safety'?)",
        ),
        (
            lambda d: d["complaints"]["major"].update(impacts=["health"]),
            "complaints.major.impacts: 'health' is not defined under impacts",
        ),
        (lambda d: d.update(impacts=["money", "time"]), "impacts: must define 'safety'"),
        (lambda d: d["urgency"].update(default="critical"), "urgency.default: must be 'urgent'"),
        (lambda d: d.update(need_payoffs={}), "unknown key 'need_payoffs'"),
        (
            lambda d: d["products"].update(tablet={"zh": [], "en": []}),
            "products.tablet: list at least one keyword",
        ),
        (lambda d: d["products"]["earbuds"].update(zh=[""]), "products.earbuds.zh[0]:"),
        (
            lambda d: d["urgency"]["urgent"].update(keywords={"zh": ["急"]}),
            "urgency.urgent: unknown key 'keywords'",
        ),
        (lambda d: d.update(timezone="Mars/Olympus"), "timezone: unknown time zone 'Mars/Olympus'"),
        (lambda d: d.update(version=2), "version: must be 1"),
        (
            lambda d: d["urgency"]["neutral_intents"].append("complain"),
            "complaints.intents: 'complain' is also listed in urgency.neutral_intents",
        ),
    ],
)
def test_invalid_policy_names_the_place(
    tmp_path: Path,
    raw: dict[str, Any],
    change: Callable[[dict[str, Any]], None],
    expected: str,
) -> None:
    path = write(tmp_path, changed(raw, change))
    message = policy_error(path)
    assert all(re.match(rf"{re.escape(str(path))}:\d+: ", line) for line in message.splitlines())
    assert expected in message


def test_every_mistake_is_reported_on_its_own_line(tmp_path: Path, raw: dict[str, Any]) -> None:
    def two_mistakes(data: dict[str, Any]) -> None:
        data["tiers"]["urgent"]["hours"] = -1
        data["business_hours"]["days"] = ["mon", "funday"]

    lines = policy_error(write(tmp_path, changed(raw, two_mistakes))).splitlines()
    assert len(lines) == 2
    assert all(line.startswith(str(tmp_path)) for line in lines)


def test_yaml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\ntimezone: UTC\nkey: value: other\n")
    message = policy_error(path)
    assert message.startswith(f"{path}:3: YAML syntax error: mapping values are not allowed")


def test_a_key_written_twice_is_refused_with_its_line(tmp_path: Path) -> None:
    text = default_policy_path().read_text(encoding="utf-8")
    lines = len(text.splitlines())
    path = write(tmp_path, text + "timezone: UTC\n")
    assert policy_error(path) == (
        f"{path}:{lines + 1}: duplicate key 'timezone'"
        ": each name may appear only once in the same mapping"
    )


def test_missing_and_empty_files(tmp_path: Path) -> None:
    assert policy_error(tmp_path / "nope.yml") == f"{tmp_path / 'nope.yml'}: file not found"
    inside = PROJECT_ROOT / "data" / "service" / "missing-policy.yml"
    assert policy_error(inside) == "data/service/missing-policy.yml: file not found"
    assert policy_error(write(tmp_path, "# nothing yet\n")).endswith(": the file is empty")
    assert "must hold keys" in policy_error(write(tmp_path, "- a list\n"))


def test_unquoted_times_and_numbers_are_read_as_written(tmp_path: Path) -> None:
    text = default_policy_path().read_text(encoding="utf-8")
    text = text.replace('end: "21:00"', "end: 21:00").replace('"12315"', "12315")
    assert 'end: "21:00"' not in text and '"12315"' not in text
    loaded = load_policy(write(tmp_path, text))
    assert loaded.business_hours is not None and loaded.business_hours.end == time(21)
    assert loaded.complaints.major.keywords is not None
    assert "12315" in loaded.complaints.major.keywords.zh


def test_unquoted_yes_no_keyword_gets_a_hint(tmp_path: Path) -> None:
    text = default_policy_path().read_text(encoding="utf-8").replace('"no"', "no")
    message = policy_error(write(tmp_path, text))
    assert "negations.en[1]: False was read as yes/no: put the keyword in quotes" in message


# --- classification ----------------------------------------------------------------------------


def run(
    policy: ServicePolicy,
    intents: list[str],
    texts: list[str],
    implication: str | None = None,
    **signals: Any,
) -> Classification:
    return classify(policy, intents=intents, texts=texts, implication=implication, **signals)


def test_urgent_by_intent(policy: ServicePolicy) -> None:
    result = run(policy, ["urgent_issue"], ["帮帮我"])
    assert result.tier is UrgencyTier.urgent
    assert result.complaint_grade is None and not result.is_complaint
    assert "urgent: intent urgent_issue" in result.reasons


def test_urgent_when_the_reader_says_so(policy: ServicePolicy) -> None:
    result = run(policy, ["order_status"], ["订单能不能马上发货，明早的飞机"], urgent=True)
    assert result.tier is UrgencyTier.urgent
    assert "urgent: read as urgent" in result.reasons
    assert run(policy, ["order_status"], ["订单能不能马上发货"]).tier is UrgencyTier.normal


def test_urgent_by_a_safety_impact(policy: ServicePolicy) -> None:
    result = run(
        policy,
        ["order_status"],
        ["where is my order"],
        "it got hot, I worry about safety",
        impacts={"safety"},
    )
    assert result.tier is UrgencyTier.urgent
    assert result.impacts == frozenset({"safety"})
    assert "urgent: impact safety" in result.reasons
    assert result.complaint_grade is None


def test_impacts_the_policy_does_not_list_are_ignored(
    policy: ServicePolicy, raw: dict[str, Any]
) -> None:
    data = changed(raw, lambda d: d.update(impacts=["safety", "money"]))
    result = run(ServicePolicy.model_validate(data), ["inform"], ["x"], impacts={"time", "money"})
    assert result.impacts == frozenset({"money"})


def test_safety_is_urgent_even_when_the_policy_forgets_it(
    policy: ServicePolicy, raw: dict[str, Any]
) -> None:
    data = changed(raw, lambda d: d["urgency"]["urgent"].update(impacts=[]))
    result = run(
        ServicePolicy.model_validate(data),
        ["inform"],
        ["it is not safe"],
        "safety",
        impacts={"safety"},
    )
    assert result.tier is UrgencyTier.urgent
    assert "urgent: impact safety (always urgent)" in result.reasons


def test_words_alone_decide_nothing_about_urgency(policy: ServicePolicy) -> None:
    """Keyword lists are gone: "烫手" in "这价格真烫手" no longer makes a need urgent."""
    assert run(policy, ["inform"], ["这价格真烫手，急死了"]).tier is UrgencyTier.normal


def test_consultation_for_product_questions(policy: ServicePolicy) -> None:
    result = run(policy, ["greet", "product_question", "affirm"], ["这款耳机防水吗"])
    assert result.tier is UrgencyTier.consultation
    assert result.reasons == ("consultation: intent product_question",)


def test_consultation_by_keyword_only_without_a_telling_intent(policy: ServicePolicy) -> None:
    assert run(policy, ["inform"], ["请问怎么开发票"]).tier is UrgencyTier.consultation
    assert run(policy, ["order_status"], ["请问我的订单到哪了"]).tier is UrgencyTier.normal


def test_normal_by_default(policy: ServicePolicy) -> None:
    result = run(policy, ["order_status"], ["我的订单到哪了"])
    assert result.tier is UrgencyTier.normal
    assert result.reasons == ("normal: default tier",)
    mixed = run(policy, ["product_question", "logistics_issue"], ["快递一直没到"])
    assert mixed.tier is UrgencyTier.normal


def test_a_complaint_is_never_a_consultation(policy: ServicePolicy) -> None:
    result = run(policy, ["product_question", "complain"], ["这个耳机音质太差"])
    assert result.tier is UrgencyTier.normal
    assert result.complaint_grade is ComplaintGrade.general


def test_general_complaint(policy: ServicePolicy) -> None:
    result = run(policy, ["complain"], ["快递员态度太差"])
    assert result.complaint_grade is ComplaintGrade.general
    assert result.tier is UrgencyTier.normal
    assert "complaint: intent complain" in result.reasons


def test_complaint_read_without_the_intent(policy: ServicePolicy) -> None:
    result = run(policy, ["logistics_issue"], ["I want to file a complaint"], complaint=True)
    assert result.complaint_grade is ComplaintGrade.general
    assert "complaint: read as a complaint" in result.reasons
    assert run(policy, ["logistics_issue"], ["I want to file a complaint"]).complaint_grade is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("我要找律师起诉你们", "major complaint: keyword 律师"),
        ("I will call my lawyer", "major complaint: keyword lawyer"),
        ("我要打12315", "major complaint: keyword 12315"),
    ],
)
def test_major_complaint_by_keyword_is_urgent(
    policy: ServicePolicy, text: str, reason: str
) -> None:
    result = run(policy, ["complain"], [text])
    assert result.complaint_grade is ComplaintGrade.major
    assert result.tier is UrgencyTier.urgent
    assert reason in result.reasons
    assert "urgent: major complaint" in result.reasons


def test_sue_does_not_match_issue(policy: ServicePolicy) -> None:
    result = run(policy, ["complain"], ["the issue is still not solved"])
    assert result.complaint_grade is ComplaintGrade.general


def test_a_negated_major_keyword_does_not_count(policy: ServicePolicy) -> None:
    result = run(policy, ["complain"], ["我没有起诉的意思，只想换个新的"])
    assert result.complaint_grade is ComplaintGrade.general


def test_major_complaint_by_safety(policy: ServicePolicy) -> None:
    result = run(policy, ["complain"], ["你们的充电宝"], "孩子被烫伤了", impacts={"safety"})
    assert result.complaint_grade is ComplaintGrade.major
    assert result.tier is UrgencyTier.urgent
    assert "major complaint: impact safety" in result.reasons


@pytest.mark.parametrize(
    ("implication", "grade"),
    [
        ("损失了1.2万", ComplaintGrade.major),
        ("损失了5000元", ComplaintGrade.major),
        ("损失了4999元", ComplaintGrade.general),
        ("I lost $300", ComplaintGrade.general),
    ],
)
def test_complaint_grade_by_amount(
    policy: ServicePolicy, implication: str, grade: ComplaintGrade
) -> None:
    result = run(policy, ["complain"], ["退款一直不到账"], implication, impacts={"money"})
    assert result.complaint_grade is grade
    assert "money" in result.impacts
    if grade is ComplaintGrade.major:
        assert result.tier is UrgencyTier.urgent
        assert any(r.startswith("major complaint: amount ¥") for r in result.reasons)
        assert (
            "major complaint: amount ¥12000 >= ¥5000"
            in run(policy, ["complain"], [], "损失了1.2万").reasons
        )
    else:
        assert result.tier is UrgencyTier.normal
        assert "general complaint: no major trigger" in result.reasons


def test_amount_counts_only_in_the_implication(policy: ServicePolicy) -> None:
    result = run(policy, ["complain"], ["我买了5999元的笔记本，质量太差"])
    assert result.complaint_grade is ComplaintGrade.general


# --- due times ---------------------------------------------------------------------------------


def tier_only(tier: UrgencyTier) -> Classification:
    return Classification(tier, None, frozenset(), ())


def complaint(grade: ComplaintGrade) -> Classification:
    return Classification(UrgencyTier.normal, grade, frozenset(), ())


def test_urgent_counts_clock_hours_at_night(policy: ServicePolicy) -> None:
    due = due_at(policy, tier_only(UrgencyTier.urgent), local(20, 3))
    assert due == local(20, 4)
    assert due.tzinfo == timezone.utc


@pytest.mark.parametrize(
    ("created", "due"),
    [
        (local(20, 10), local(20, 14)),  # inside business hours
        (local(20, 20), local(21, 12)),  # 1 h today, 3 h after 09:00 tomorrow
        (local(20, 3), local(20, 13)),  # before opening: from 09:00
        (local(20, 22, 30), local(21, 13)),  # after closing: from 09:00 tomorrow
        (local(20, 17), local(20, 21)),  # ends exactly at closing
    ],
)
def test_normal_counts_business_hours(
    policy: ServicePolicy, created: datetime, due: datetime
) -> None:
    assert due_at(policy, tier_only(UrgencyTier.normal), created) == due


def test_consultation_spans_days(policy: ServicePolicy) -> None:
    # 11 h on the 20th, 12 h on the 21st, 1 h on the 22nd
    assert due_at(policy, tier_only(UrgencyTier.consultation), local(20, 10)) == local(22, 10)


def test_business_hours_skip_holidays_and_days_off(raw: dict[str, Any]) -> None:
    def weekdays_only(data: dict[str, Any]) -> None:
        data["business_hours"] = {
            "days": ["mon", "tue", "wed", "thu", "fri"],
            "start": "09:00",
            "end": "18:00",
            "holidays": ["2026-11-23"],  # a Monday
        }

    office = ServicePolicy.model_validate(changed(raw, weekdays_only))
    friday_evening = local(20, 17)
    # 1 h on Friday; Saturday and Sunday are off, Monday is a holiday: Tuesday 12:00
    assert due_at(office, tier_only(UrgencyTier.normal), friday_evening) == local(24, 12)
    assert due_at(office, tier_only(UrgencyTier.normal), local(21, 10)) == local(24, 13)

    def saturday_is_a_workday(data: dict[str, Any]) -> None:
        weekdays_only(data)
        data["business_hours"]["workdays"] = ["2026-11-21"]

    swapped = ServicePolicy.model_validate(changed(raw, saturday_is_a_workday))
    assert due_at(swapped, tier_only(UrgencyTier.normal), friday_evening) == local(21, 12)


def test_without_business_hours_every_window_is_clock_hours(raw: dict[str, Any]) -> None:
    always_open = ServicePolicy.model_validate(changed(raw, lambda d: d.pop("business_hours")))
    assert always_open.business_hours is None
    assert due_at(always_open, tier_only(UrgencyTier.normal), local(20, 20)) == local(21, 0)
    assert due_at(always_open, tier_only(UrgencyTier.consultation), local(20, 20)) == local(21, 20)


def test_complaints_use_the_grade_window(policy: ServicePolicy) -> None:
    assert due_at(policy, complaint(ComplaintGrade.general), local(20, 20, 30)) == local(20, 21, 30)
    assert due_at(policy, complaint(ComplaintGrade.major), local(20, 20)) == local(22, 20)
    classified = run(policy, ["complain"], ["快递员态度太差"])
    assert classified.tier is UrgencyTier.normal  # the normal tier would give 4 business hours
    assert due_at(policy, classified, local(20, 3)) == local(20, 4)


def test_due_times_need_an_aware_datetime(policy: ServicePolicy) -> None:
    with pytest.raises(ValueError, match="no time zone"):
        due_at(policy, tier_only(UrgencyTier.urgent), datetime(2026, 11, 20, 3))


def test_confirmation_due_and_aware_input_of_any_zone(policy: ServicePolicy) -> None:
    created = datetime(2026, 11, 20, 20, 0, tzinfo=SHANGHAI)  # not UTC: converted
    due = confirmation_due_at(policy, created)
    assert due == local(20, 22)
    assert due.tzinfo == timezone.utc


def test_format_due(policy: ServicePolicy, raw: dict[str, Any]) -> None:
    due = local(22, 15, 30)
    assert format_due(policy, due, "zh") == "11月22日 15:30"
    assert format_due(policy, due, "zh-CN") == "11月22日 15:30"
    assert format_due(policy, due, "en") == "Nov 22, 15:30 (UTC+08:00)"
    new_york = ServicePolicy.model_validate(
        changed(raw, lambda d: d.update(timezone="America/New_York"))
    )
    assert format_due(new_york, due, "en") == "Nov 22, 02:30 (UTC-05:00)"


# --- reading the customer's words --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "since"),
    [
        ("2026-11-20", date(2026, 11, 20)),
        ("从2026/11/03开始", date(2026, 11, 3)),
        ("2026年11月3日", date(2026, 11, 3)),
        ("11月20日", date(2026, 11, 20)),
        ("11月20号就坏了", date(2026, 11, 20)),
        ("十一月二十号", date(2026, 11, 20)),
        ("11/20", date(2026, 11, 20)),
        ("20/11", date(2026, 11, 20)),
        ("12月25日", date(2025, 12, 25)),  # more than a month ahead: last year
        ("昨天", date(2026, 11, 21)),
        ("前天晚上", date(2026, 11, 20)),
        ("大前天", date(2026, 11, 19)),
        ("今天早上", date(2026, 11, 22)),
        ("3天前", date(2026, 11, 19)),
        ("三天前", date(2026, 11, 19)),
        ("十天前", date(2026, 11, 12)),
        ("等了两天了", date(2026, 11, 20)),
        ("上周", date(2026, 11, 15)),
        ("两周前", date(2026, 11, 8)),
        ("yesterday", date(2026, 11, 21)),
        ("Today", date(2026, 11, 22)),
        ("the day before yesterday", date(2026, 11, 20)),
        ("5 days ago", date(2026, 11, 17)),
        ("two days ago", date(2026, 11, 20)),
        ("for 3 days", date(2026, 11, 19)),
        ("last week", date(2026, 11, 15)),
        ("since Nov 20", date(2026, 11, 20)),
        ("November 3rd", date(2026, 11, 3)),
        ("on 20 Nov", date(2026, 11, 20)),
        ("就是不充电", None),
        ("not sure", None),
        ("2月30日", None),
    ],
)
def test_read_since(text: str, since: date | None) -> None:
    assert read_since(text, TODAY) == since


@pytest.mark.parametrize("text", ["2026-11-25", "11月25日", "11/30", "Dec 1", "2027年1月1日"])
def test_read_since_refuses_future_dates(text: str) -> None:
    with pytest.raises(FutureDate) as caught:
        read_since(text, TODAY)
    assert caught.value.found > TODAY


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("1.2万", 12000),
        ("损失了1.2万元", 12000),
        ("12000元", 12000),
        ("¥3,000", 3000),
        ("￥3000", 3000),
        ("3000块", 3000),
        ("两千多块钱", 2000),
        ("$500", 500),
        ("I lost 800", 800),
        ("cost me 12k", 12000),
        ("RMB 1500", 1500),
        ("两千", 2000),
        ("一万二", 12000),
        ("先扣了300元，又扣了5000元", 5000),
        ("KF202611200001", None),
        ("等了3天", None),
        ("走了1.2万步", None),
        ("20000mAh的充电宝", None),
        ("万一坏了呢", None),
        ("没有损失", None),
    ],
)
def test_read_amount_yuan(text: str, amount: float | None) -> None:
    assert read_amount_yuan(text) == amount


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Nova 14 轻薄笔记本电脑", "laptop"),
        ("Tab 11 平板电脑", "tablet"),  # the first product word decides
        ("AuraSound X2 ANC earbuds", "earbuds"),
        ("my headphones", "earbuds"),
        ("PowerCube 20000mAh 充电宝", "power_bank"),
        ("订单怎么还没到", None),
    ],
)
def test_product_kind(policy: ServicePolicy, text: str, kind: str | None) -> None:
    assert product_kind(policy, text) == kind


@pytest.mark.parametrize(
    ("text", "product"),
    [
        ("我的笔记本电脑开不了机", "笔记本"),
        ("智能手表不走了", "智能手表"),
        ("充电宝和充电器都坏了", "充电宝"),
        ("My HEADPHONES broke", "headphones"),
        ("the robot vacuum is stuck", "robot vacuum"),
        ("我的earbuds没声音", "earbuds"),
        ("my iphone", None),
        ("订单怎么还没到", None),
    ],
)
def test_read_product(policy: ServicePolicy, text: str, product: str | None) -> None:
    assert read_product(policy, text) == product


def test_read_special_requests(policy: ServicePolicy) -> None:
    assert read_special_requests(policy, "不要打电话，只发短信，周末或者晚上，不要打电话") == [
        "不要打电话",
        "只发短信",
        "周末",
        "晚上",
    ]
    assert read_special_requests(policy, "Please DON'T CALL, reply by email in the evening") == [
        "don't call",
        "by email",
        "evening",
    ]
    assert read_special_requests(policy, "Don’t call me") == ["don't call"]
    assert read_special_requests(policy, "耳机坏了") == []


@pytest.mark.parametrize(
    ("text", "generic"),
    [
        ("我要投诉！", True),
        ("你好，我要投诉。", True),
        ("  投诉 ", True),
        ("急！！", True),
        ("I want to complain!!", True),
        ("Hi, I have a problem.", True),
        ("HELP", True),
        ("我要投诉快递员", False),
        ("耳机坏了", False),
        ("I have a problem with my earbuds", False),
        ("你好", False),
        ("", False),
    ],
)
def test_is_generic_request(policy: ServicePolicy, text: str, generic: bool) -> None:
    assert is_generic_request(policy, text) is generic
