"""The desk's supervision pages and API: dashboard, conversations, QA findings and appeals,
the weekly review list and the built reports (roles, CSRF, bad input, traversal, CSV)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from bot.accounts import AgentStore
from bot.core.db import (
    AgentRole,
    Conversation,
    ConversationMessage,
    QaFinding,
    QaScore,
    make_engine,
    session_factory,
    upgrade,
)
from bot.core.settings import Settings
from bot.service.policy import load_policy
from bot.supervision.daygen import generate_day
from bot.supervision.rules import load_qa_rules
from bot.supervision.scoring import Inspector
from bot.web import create_app
from tests.app.web.conftest import PASSWORD, signed_in

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
POLICY = load_policy()
TODAY = datetime.now(UTC).astimezone(POLICY.zone).date()
DAY = TODAY - timedelta(days=1)
"""The day the conversations happened (yesterday, policy zone): reports may be built for it."""
START = datetime.combine(DAY, time(10), POLICY.zone).astimezone(UTC)
USERS = {"agent": "li.na", "other": "wang.lei", "supervisor": "lead", "admin": "boss"}
Line = tuple[int, str, str]
"""Seconds after the start, who (`customer`, `bot`, `agent:<username>`), text."""

RUDE_LI: list[Line] = [
    (0, "customer", "我的耳机左耳没声音了，要换货"),
    (2, "bot", "正在为您转接人工客服，请稍候。"),
    (60, "agent:li.na", "您好，我是客服李娜，很高兴为您服务。"),
    (90, "customer", "怎么还没好"),
    (100, "agent:li.na", "有完没完，你去投诉吧"),
    (130, "customer", "太差了，我要投诉"),
]
RUDE_WANG: list[Line] = [
    (0, "customer", "退款怎么还没到"),
    (2, "bot", "正在为您转接人工客服，请稍候。"),
    (50, "agent:wang.lei", "您好，我是客服王磊。"),
    (80, "customer", "到底什么时候到账"),
    (90, "agent:wang.lei", "不归我管，你去投诉吧"),
]
SELF_SERVICE: list[Line] = [(0, "customer", "七天无理由退货的条件"), (1, "bot", "签收后七天内…")]


def _conversation(engine: Engine, lines: Sequence[Line], offset_minutes: int) -> int:
    """A recorded, ended conversation of `lines` (unscored); its pk."""
    start = START + timedelta(minutes=offset_minutes)
    roles = [(who.split(":")[0], who.partition(":")[2] or None) for _, who, _ in lines]
    agents = list(dict.fromkeys(author for role, author in roles if author))
    end = start + timedelta(seconds=lines[-1][0])
    with session_factory(engine).begin() as session:
        conversation = Conversation(
            conversation_id=f"web:test:{offset_minutes}",
            channel="socketio",
            language="zh",
            source="live",
            started_at=start,
            last_message_at=end,
            ended_at=end,
            customer_messages=sum(role == "customer" for role, _ in roles),
            bot_messages=sum(role == "bot" for role, _ in roles),
            agent_messages=sum(role == "agent" for role, _ in roles),
            agents=agents,
            handoff_requested_at=start + timedelta(seconds=2) if agents else None,
            first_question=lines[0][2],
            outcome="handoff" if agents else "self_service",
        )
        session.add(conversation)
        session.flush()
        for n, (seconds, who, text) in enumerate(lines):
            role, _, author = who.partition(":")
            session.add(
                ConversationMessage(
                    conversation_pk=conversation.id,
                    at=start + timedelta(seconds=seconds),
                    role=role,
                    author=author or None,
                    text=text,
                    source_key=f"test:{conversation.id}:{n}",
                )
            )
        return conversation.id


Clients = dict[str, tuple[TestClient, str]]


def _make_app(settings: Settings) -> FastAPI:
    """The desk with li.na and wang.lei (agents), lead, boss and an editor, and three scored
    conversations yesterday: li.na's and wang.lei's (each with a red card) and the bot's."""
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    agents = AgentStore(engine, FAST)
    agents.create("lead", "Lead 主管", AgentRole.supervisor, PASSWORD)
    agents.create("boss", "Boss", AgentRole.admin, PASSWORD)
    agents.create("editor", "Editor", AgentRole.editor, PASSWORD)
    agents.create("li.na", "李娜 Li Na", AgentRole.agent, PASSWORD, supervisor="lead")
    agents.create("wang.lei", "王磊 Wang Lei", AgentRole.agent, PASSWORD, supervisor="lead")
    pks = [_conversation(engine, lines, n * 30) for n, lines in enumerate(
        (RUDE_LI, RUDE_WANG, SELF_SERVICE))]  # fmt: skip
    Inspector(engine, load_qa_rules(), POLICY).score_due(START + timedelta(hours=3))
    engine.dispose()
    app = create_app(settings)
    app.state.pks = pks
    return app


def _sign_in(app: FastAPI) -> Clients:
    """A signed-in client (and CSRF token) per role."""
    found = {role: signed_in(app, username) for role, username in USERS.items()}
    found["editor"] = signed_in(app, "editor")
    return found


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[FastAPI, Clients]:
    """One desk for the tests that change nothing (reports built on demand aside)."""
    app = _make_app(Settings(var_dir=tmp_path_factory.mktemp("supervision-web")))
    return app, _sign_in(app)


@pytest.fixture
def app(world: tuple[FastAPI, Clients]) -> FastAPI:
    return world[0]


@pytest.fixture
def clients(world: tuple[FastAPI, Clients]) -> Clients:
    return world[1]


@pytest.fixture
def fresh(settings: Settings) -> tuple[FastAPI, Clients]:
    """A desk of its own, for tests that appeal, decide, add or generate."""
    app = _make_app(settings)
    return app, _sign_in(app)


def _finding(app: FastAPI, username: str, rule: str = "forbidden_words") -> int:
    with session_factory(app.state.engine)() as session:
        found = session.scalar(
            select(QaFinding.id).where(
                QaFinding.subject_key == f"agent:{username}", QaFinding.rule_id == rule
            )
        )
    assert found is not None, f"no {rule} finding about {username}"
    return found


# ---------------------------------------------------------------------- pages and roles
def test_pages_for_each_role(app: FastAPI, clients: Clients) -> None:
    lead, _ = clients["supervisor"]
    agent, _ = clients["agent"]
    editor, _ = clients["editor"]
    page = lead.get("/desk/dashboard")
    assert page.status_code == 200 and 'id="dashboard"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert 'id="nav-dashboard"' in page.text and 'id="nav-quality"' in page.text
    assert lead.get(f"/desk/dashboard?date={DAY}").status_code == 200
    assert lead.get("/desk/dashboard?date=yesterday").status_code == 422
    assert lead.get(f"/desk/dashboard?date={TODAY + timedelta(days=2)}").status_code == 404
    assert agent.get("/desk/dashboard").headers["location"] == "/desk/quality"
    assert editor.get("/desk/dashboard").headers["location"] == "/desk/review"
    quality = agent.get("/desk/quality")
    assert quality.status_code == 200 and 'id="nav-dashboard"' not in quality.text
    assert 'id="nav-quality"' in quality.text
    for path in ("/desk/conversations", "/desk/quality", "/desk/review-list"):
        assert lead.get(path).status_code == 200, path
    assert editor.get("/desk/review-list").status_code == 200
    anonymous = TestClient(app, follow_redirects=False)
    assert anonymous.get("/desk/dashboard").headers["location"] == "/desk/login"


def test_the_live_tiles_and_the_days_figures(app: FastAPI, clients: Clients) -> None:
    lead, _ = clients["supervisor"]
    live = lead.get("/desk/api/dashboard/live").json()
    for key in ("open_tickets", "unattended", "at_risk", "overdue", "agents_online"):
        assert isinstance(live[key], int), key
    assert live["pending_appeals"] == 0 and "today" in live
    data = lead.get(f"/desk/api/dashboard/day?date={DAY}").json()
    assert data["date"] == DAY.isoformat() and data["today"] is False
    metrics = data["metrics"]
    assert metrics["conversations"] == 3 and metrics["red_card_count"] == 2
    assert data["previous"]["conversations"] == 0
    assert data["links"]["red_card_count"] == f"/desk/conversations?date={DAY}&red_card=true"
    assert data["drilldown"]["outcomes"] == {"outcome": "{key}"}
    assert set(data["charts"]) == {"hourly", "outcomes", "first_response", "sla", "csat",
                                   "qa_agents"}  # fmt: skip
    listed = lead.get(data["links"]["red_card_count"].replace("/desk/", "/desk/api/", 1))
    assert listed.json()["total"] == 2  # the figure's drill-down lists exactly those
    assert lead.get("/desk/api/dashboard/day?date=2026-02-30").status_code == 422
    assert lead.get(f"/desk/api/dashboard/day?date={TODAY + timedelta(days=1)}").status_code == 404


def test_dashboard_charts_are_svg(clients: Clients) -> None:
    lead, _ = clients["supervisor"]
    chart = lead.get(f"/desk/dashboard/charts/outcomes.svg?date={DAY}")
    assert chart.status_code == 200 and chart.headers["content-type"].startswith("image/svg+xml")
    assert chart.text.lstrip().startswith("<?xml") and "<svg" in chart.text
    assert "script-src" not in chart.headers["content-security-policy"]
    assert lead.get("/desk/dashboard/charts/secrets.svg").status_code == 404
    assert lead.get("/desk/dashboard/charts/hourly.svg?date=soon").status_code == 422
    agent, _ = clients["agent"]
    assert agent.get("/desk/dashboard/charts/hourly.svg").status_code == 403


# ---------------------------------------------------------------------- conversations
def test_agents_list_only_their_own_conversations(app: FastAPI, clients: Clients) -> None:
    lead, _ = clients["supervisor"]
    agent, _ = clients["agent"]
    everything = lead.get(f"/desk/api/conversations?date={DAY}").json()
    assert everything["total"] == 3
    assert [row["pk"] for row in everything["rows"]] == sorted(app.state.pks, reverse=True)
    mine = agent.get(f"/desk/api/conversations?date={DAY}").json()
    assert [row["agents"] for row in mine["rows"]] == [["li.na"]]
    asked = agent.get(f"/desk/api/conversations?date={DAY}&agent=wang.lei").json()
    assert asked["total"] == 1 and asked["rows"][0]["agents"] == ["li.na"]
    wang = lead.get(f"/desk/api/conversations?date={DAY}&agent=wang.lei").json()
    assert wang["total"] == 1 and wang["rows"][0]["agents"] == ["wang.lei"]
    selfish = lead.get(f"/desk/api/conversations?date={DAY}&outcome=self_service").json()
    assert selfish["total"] == 1 and selfish["rows"][0]["red_cards"] == 0
    paged = lead.get(f"/desk/api/conversations?date={DAY}&limit=2&offset=2").json()
    assert paged["total"] == 3 and len(paged["rows"]) == 1


@pytest.mark.parametrize(
    "query",
    [
        "date=tomorrowish",
        "outcome=confused",
        "rating=9",
        "red_card=maybe",
        "colour=red",
        "limit=0",
        "limit=100000",
        "offset=-1",
        "start=2026-12-05&end=2026-12-01",
        f"channel={'x' * 300}",
    ],
)
def test_bad_filters_are_refused(clients: Clients, query: str) -> None:
    lead, _ = clients["supervisor"]
    response = lead.get(f"/desk/api/conversations?{query}")
    assert response.status_code == 422, (query, response.text)
    assert response.json()["detail"]
    assert lead.get(f"/desk/api/conversations.csv?{query}").status_code in (200, 422)


def test_the_csv_export(app: FastAPI, clients: Clients) -> None:
    lead, _ = clients["supervisor"]
    response = lead.get(f"/desk/api/conversations.csv?date={DAY}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    disposition = response.headers["content-disposition"]
    assert disposition == f'attachment; filename="conversations-{DAY}.csv"'
    assert response.content.startswith("\ufeff".encode())  # Excel reads it as UTF-8
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(rows) == 3 and {"pk", "outcome", "agent_score", "first_question"} <= set(rows[0])
    assert "我的耳机左耳没声音了，要换货" in {row["first_question"] for row in rows}
    agent, _ = clients["agent"]
    own = list(csv.DictReader(io.StringIO(agent.get("/desk/api/conversations.csv").text)))
    assert [row["agents"] for row in own] == ["li.na"]
    odd = lead.get('/desk/api/conversations.csv?date=x"y')
    assert odd.status_code == 422


def test_a_conversations_page_and_detail(app: FastAPI, clients: Clients) -> None:
    li_pk, wang_pk, bot_pk = app.state.pks
    lead, _ = clients["supervisor"]
    agent, _ = clients["agent"]
    detail = agent.get(f"/desk/api/conversations/{li_pk}").json()
    assert detail["pk"] == li_pk and detail["agents"] == ["li.na"]
    assert [m["role"] for m in detail["transcript"]][:3] == ["customer", "bot", "agent"]
    assert {s["subject_key"] for s in detail["scores"]} <= {"bot", "agent:li.na"}
    assert any(f["red_card"] and f["message_text"] for f in detail["findings"])
    assert agent.get(f"/desk/conversations/{li_pk}").status_code == 200
    for other in (wang_pk, bot_pk, 99999, "abc", "1e3", "-1"):  # not hers, unknown, garbage
        response = agent.get(f"/desk/api/conversations/{other}")
        assert response.status_code == 404, other
        page = agent.get(f"/desk/conversations/{other}")
        assert page.status_code == 404 and 'id="conversation-missing"' in page.text
    everything = lead.get(f"/desk/api/conversations/{wang_pk}").json()
    assert {s["subject_key"] for s in everything["scores"]} >= {"agent:wang.lei"}
    assert lead.get(f"/desk/conversations/{bot_pk}").status_code == 200
    editor, _ = clients["editor"]
    assert editor.get(f"/desk/api/conversations/{li_pk}").status_code == 403


# ---------------------------------------------------------------------- findings and appeals
def test_findings_lists(app: FastAPI, clients: Clients) -> None:
    lead, _ = clients["supervisor"]
    agent, _ = clients["agent"]
    mine = agent.get("/desk/api/quality/findings").json()["findings"]
    assert mine and {f["agent"] for f in mine} == {"li.na"}
    assert agent.get("/desk/api/quality/findings?agent=wang.lei").json()["findings"] == []
    every = lead.get("/desk/api/quality/findings").json()["findings"]
    assert {"li.na", "wang.lei"} <= {f["agent"] for f in every}
    wang = lead.get("/desk/api/quality/findings?agent=wang.lei&rule=forbidden_words").json()
    assert [f["rule_id"] for f in wang["findings"]] == ["forbidden_words"]
    assert lead.get(f"/desk/api/quality/findings?since={TODAY}").json()["findings"] == []
    assert lead.get("/desk/api/quality/findings?status=pending").json()["findings"] == []
    assert lead.get("/desk/api/quality/findings?status=angry").status_code == 422
    assert lead.get("/desk/api/quality/findings?since=last-week").status_code == 422
    assert lead.get("/desk/api/quality/findings?limit=0").status_code == 422


def test_an_appeal_and_its_decision(fresh: tuple[FastAPI, Clients]) -> None:
    app, clients = fresh
    agent, agent_csrf = clients["agent"]
    other, other_csrf = clients["other"]
    lead, lead_csrf = clients["supervisor"]
    finding = _finding(app, "li.na")
    url = f"/desk/api/quality/findings/{finding}"
    body = {"text": "客户先辱骂在先，录音可证明"}
    assert agent.post(f"{url}/appeal", json=body).status_code == 403  # no CSRF token
    for bad in ({"text": ""}, {"text": "   "}, {"text": "x" * 1001}, {**body, "extra": 1}, {}):
        response = agent.post(f"{url}/appeal", json=bad, headers={"X-CSRF-Token": agent_csrf})
        assert response.status_code == 422, bad
    colleague = other.post(f"{url}/appeal", json=body, headers={"X-CSRF-Token": other_csrf})
    assert colleague.status_code == 404  # not theirs: as if it did not exist
    lead_appeal = lead.post(f"{url}/appeal", json=body, headers={"X-CSRF-Token": lead_csrf})
    assert lead_appeal.status_code == 403  # only the agent concerned appeals
    appealed = agent.post(f"{url}/appeal", json=body, headers={"X-CSRF-Token": agent_csrf})
    assert appealed.status_code == 200 and appealed.json()["appeal_status"] == "pending"
    again = agent.post(f"{url}/appeal", json=body, headers={"X-CSRF-Token": agent_csrf})
    assert again.status_code == 409
    assert lead.get("/desk/api/dashboard/live").json()["pending_appeals"] == 1
    pending = lead.get("/desk/api/quality/findings?status=pending").json()["findings"]
    assert [f["id"] for f in pending] == [finding]

    decision = {"decision": "overturned", "note": "录音证实客户先辱骂"}
    own = agent.post(f"{url}/decision", json=decision, headers={"X-CSRF-Token": agent_csrf})
    assert own.status_code == 403
    for bad in ({"decision": "forgiven"}, {**decision, "note": "n" * 1001}, {"note": "x"}):
        response = lead.post(f"{url}/decision", json=bad, headers={"X-CSRF-Token": lead_csrf})
        assert response.status_code == 422, bad
    decided = lead.post(f"{url}/decision", json=decision, headers={"X-CSRF-Token": lead_csrf})
    assert decided.status_code == 200 and decided.json()["appeal_status"] == "overturned"
    twice = lead.post(f"{url}/decision", json=decision, headers={"X-CSRF-Token": lead_csrf})
    assert twice.status_code == 409
    with session_factory(app.state.engine)() as session:
        score = session.scalar(select(QaScore).where(QaScore.subject_key == "agent:li.na"))
        assert score is not None and not score.red_card  # the red card went with it
    missing = lead.post(
        "/desk/api/quality/findings/99999/decision", json=decision,
        headers={"X-CSRF-Token": lead_csrf},
    )  # fmt: skip
    assert missing.status_code == 404
    garbage = lead.post(
        "/desk/api/quality/findings/abc/decision", json=decision,
        headers={"X-CSRF-Token": lead_csrf},
    )  # fmt: skip
    assert garbage.status_code == 422


def test_large_bodies_are_refused(app: FastAPI, clients: Clients) -> None:
    agent, csrf = clients["agent"]
    url = f"/desk/api/quality/findings/{_finding(app, 'li.na')}/appeal"
    response = agent.post(url, json={"text": "长" * 20_000}, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 413


# ---------------------------------------------------------------------- the review list
def test_the_review_list(fresh: tuple[FastAPI, Clients]) -> None:
    _, clients = fresh
    lead, lead_csrf = clients["supervisor"]
    agent, agent_csrf = clients["agent"]
    other, other_csrf = clients["other"]
    editor, editor_csrf = clients["editor"]
    item = {"title": "坐席禁语培训", "detail": "两张红牌", "owner": "li.na", "due_on": str(TODAY)}
    assert lead.post("/desk/api/review-list", json=item).status_code == 403  # no CSRF
    refused = agent.post("/desk/api/review-list", json=item, headers={"X-CSRF-Token": agent_csrf})
    assert refused.status_code == 403
    for bad in ({**item, "title": ""}, {**item, "due_on": "soon"}, {**item, "x": 1},
                {**item, "owner": "nobody"}):  # fmt: skip
        response = lead.post("/desk/api/review-list", json=bad, headers={"X-CSRF-Token": lead_csrf})
        assert response.status_code == 422, bad
    added = lead.post("/desk/api/review-list", json=item, headers={"X-CSRF-Token": lead_csrf})
    assert added.status_code == 200, added.text
    item_id = added.json()["id"]
    listed = lead.get("/desk/api/review-list").json()
    assert [i["id"] for i in listed["items"]] == [item_id]
    assert {"li.na", "lead", "editor"} <= {o["username"] for o in listed["owners"]}
    week = listed["this_week"]
    assert lead.get(f"/desk/api/review-list?week={week}").json()["week"] == week
    assert lead.get("/desk/api/review-list?week=someday").status_code == 422
    assert lead.get("/desk/api/review-list?status=late").status_code == 422
    assert [i["id"] for i in agent.get("/desk/api/review-list").json()["items"]] == [item_id]
    assert other.get("/desk/api/review-list").json()["items"] == []  # not their item
    assert editor.get("/desk/api/review-list").json()["items"] == []

    url = f"/desk/api/review-list/{item_id}"
    mine = agent.patch(url, json={"status": "doing", "note": "已约培训"},
                       headers={"X-CSRF-Token": agent_csrf})  # fmt: skip
    assert mine.status_code == 200 and mine.json()["status"] == "doing"
    assert agent.patch(url, json={"due_on": str(TODAY)}, headers={"X-CSRF-Token": agent_csrf}
                       ).status_code == 403  # owners change status and note only  # fmt: skip
    assert other.patch(url, json={"status": "done"}, headers={"X-CSRF-Token": other_csrf}
                       ).status_code == 403  # fmt: skip
    assert editor.patch(url, json={"status": "done"}, headers={"X-CSRF-Token": editor_csrf}
                        ).status_code == 403  # fmt: skip
    assert agent.patch(url, json={"status": "done"}).status_code == 403  # no CSRF
    for bad in ({"status": "finished"}, {"due_on": "x"}, {"note": "n" * 2001}, {"colour": 1}):
        assert lead.patch(url, json=bad, headers={"X-CSRF-Token": lead_csrf}).status_code == 422
    moved = lead.patch(url, json={"owner": "wang.lei", "due_on": str(TODAY + timedelta(days=3))},
                       headers={"X-CSRF-Token": lead_csrf})  # fmt: skip
    assert moved.status_code == 200 and moved.json()["owner"] == "wang.lei"
    gone = lead.patch("/desk/api/review-list/99999", json={"status": "done"},
                      headers={"X-CSRF-Token": lead_csrf})  # fmt: skip
    assert gone.status_code == 404


# ---------------------------------------------------------------------- reports
def test_a_daily_report_is_built_and_served(app: FastAPI, clients: Clients) -> None:
    lead, _ = clients["supervisor"]
    built = lead.get(f"/desk/reports/daily/{DAY}")
    assert built.status_code == 303
    assert built.headers["location"] == f"/desk/reports/daily/{DAY}/report.html"
    page = lead.get(built.headers["location"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src" not in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "charts/outcomes.svg" in page.text
    assert f"/desk/conversations?date={DAY}" in page.text  # links back into the desk
    chart = lead.get(f"/desk/reports/daily/{DAY}/charts/outcomes.svg")
    assert chart.status_code == 200 and chart.headers["content-type"] == "image/svg+xml"
    metrics = lead.get(f"/desk/reports/daily/{DAY}/metrics.json").json()
    assert metrics["date"] == DAY.isoformat() and metrics["conversations"] == 3
    folder = app.state.settings.reports_dir / "daily" / DAY.isoformat()
    stamp = (folder / "report.html").stat().st_mtime
    assert lead.get(f"/desk/reports/daily/{DAY}").status_code == 303  # a finished day: kept
    assert (folder / "report.html").stat().st_mtime == stamp
    agent, _ = clients["agent"]
    assert agent.get(f"/desk/reports/daily/{DAY}").headers["location"] == "/desk/quality"
    assert agent.get(f"/desk/reports/daily/{DAY}/report.html").status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        "../../../../etc/passwd",
        "..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "%2e%2e/%2e%2e/%2e%2e/data/kefu.db",
        "charts/../../../data/kefu.db",
        "%2Fetc%2Fpasswd",
        "..\\..\\etc\\passwd",
        "charts",
        "missing.txt",
        "report.html%00.svg",
    ],
)
def test_report_files_never_leave_their_folder(app: FastAPI, clients: Clients, path: str) -> None:
    lead, _ = clients["supervisor"]
    assert lead.get(f"/desk/reports/daily/{DAY}").status_code == 303
    response = lead.get(f"/desk/reports/daily/{DAY}/{path}")
    assert response.status_code == 404, (path, response.status_code)
    assert "root:" not in response.text and "SQLite" not in response.text


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/desk/reports/daily/2026-13-01", 404),
        ("/desk/reports/daily/yesterday", 404),
        (f"/desk/reports/daily/{TODAY + timedelta(days=1)}", 404),
        ("/desk/reports/hourly/2026-12-01", 404),
        ("/desk/reports/monthly/2026-1", 404),
        ("/desk/reports/monthly/3026-01", 404),
        (f"/desk/reports/daily/{DAY}x/report.html", 404),
    ],
)
def test_bad_report_periods(clients: Clients, url: str, status: int) -> None:
    lead, _ = clients["supervisor"]
    response = lead.get(url)
    assert response.status_code == status, url
    assert response.json()["detail"]


def test_weekly_and_monthly_reports(clients: Clients) -> None:
    lead, _ = clients["supervisor"]
    weekly = lead.get(f"/desk/reports/weekly/{DAY}")  # any day of the week: its Monday
    monday = DAY - timedelta(days=DAY.weekday())
    assert weekly.status_code == 303
    assert weekly.headers["location"] == f"/desk/reports/weekly/{monday}/weekly.html"
    assert lead.get(weekly.headers["location"]).status_code == 200
    monthly = lead.get(f"/desk/reports/monthly/{DAY:%Y-%m}")
    assert monthly.status_code == 303 and monthly.headers["location"].endswith("/audit.html")
    assert lead.get(monthly.headers["location"]).status_code == 200


# ---------------------------------------------------------------------- a generated day
def test_a_generated_day_drills_down_consistently(fresh: tuple[FastAPI, Clients]) -> None:
    app, clients = fresh
    engine = app.state.engine
    day = DAY - timedelta(days=1)
    stats = generate_day(engine, POLICY, day, 200, agents=["li.na", "wang.lei"])
    Inspector(engine, load_qa_rules(), POLICY).score_due(datetime.now(UTC), limit=10_000)
    lead, _ = clients["supervisor"]
    data = lead.get(f"/desk/api/dashboard/day?date={day}").json()
    metrics = data["metrics"]
    assert metrics["conversations"] == stats["conversations"] > 100
    for outcome, count in metrics["outcomes"].items():
        url = f"/desk/api/conversations?date={day}&outcome={outcome}&limit=1"
        assert lead.get(url).json()["total"] == count, outcome
    for channel, count in metrics["conversations_by_channel"].items():
        url = f"/desk/api/conversations?date={day}&channel={channel}&limit=1"
        assert lead.get(url).json()["total"] == count, channel
    red = lead.get(data["links"]["red_card_count"].replace("/desk/", "/desk/api/", 1)).json()
    assert red["total"] == metrics["red_card_count"]
    rows = list(csv.reader(io.StringIO(lead.get(data["csv"]).content.decode("utf-8-sig"))))
    assert len(rows) == 1 + metrics["conversations"]
    for name in data["charts"]:
        assert lead.get(data["charts"][name]["src"]).status_code == 200, name
    page = lead.get(f"/desk/dashboard?date={day}")
    assert re.search(rf'data-day="{day}"', page.text)
