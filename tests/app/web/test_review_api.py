"""The review queue in the desk: the page, roles, CSRF, decisions over HTTP, bad input, races."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bot.accounts import AgentStore
from bot.core.db import AgentRole, ReviewStatus, make_engine, upgrade
from bot.core.settings import Settings
from bot.editor.review import ReviewQueue
from bot.handoff.service import DeskService
from bot.web import create_app
from knowledge_index import load_entries
from tests.app.conftest import ENGRAVE_ANSWER, KeywordEncoder, seed
from tests.app.web.conftest import PASSWORD, RecordingRasa, signed_in

pytestmark = pytest.mark.usefixtures("project_data_untouched")


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    agents = AgentStore(engine, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    agents.create("li.na", "李娜", AgentRole.agent, PASSWORD)
    agents.create("editor", "编辑小周", AgentRole.editor, PASSWORD)
    agents.create("editor2", "编辑小吴", AgentRole.editor, PASSWORD)
    agents.create("boss", "主管", AgentRole.admin, PASSWORD)
    seed(engine)
    app = create_app(settings)
    service = DeskService.from_settings(settings, app.state.engine)
    service.rasa = RecordingRasa()  # type: ignore[assignment]
    app.state.desk_service = service
    app.state.review_encoder = KeywordEncoder()
    return app


def engraving_group(client: TestClient, csrf: str) -> dict[str, Any]:
    collected = client.post("/desk/api/review/collect", headers={"X-CSRF-Token": csrf})
    assert collected.status_code == 200
    listing = client.get("/desk/api/review").json()
    return next(g for g in listing["groups"] if "刻字" in g["proposal"]["question"])


def entry_body(group: dict[str, Any], **changes: Any) -> dict[str, Any]:
    proposal = group["proposal"]
    return {
        "item_ids": group["item_ids"],
        "question": proposal["question"],
        "alt_questions": proposal["alt_questions"],
        "answer": proposal["answer"],
        "topic": "product_care",
        "language": "zh",
        **changes,
    }


def test_the_page_is_for_editors_and_admins(app: FastAPI) -> None:
    anonymous = TestClient(app, follow_redirects=False)
    assert anonymous.get("/desk/review").headers["location"] == "/desk/login"
    assert anonymous.get("/desk/api/review").status_code == 401

    agent, agent_csrf = signed_in(app, "li.na")
    page = agent.get("/desk/review")
    assert page.status_code == 403 and "Only knowledge editors" in page.text
    assert "/desk/review" not in agent.get("/desk").text  # no header link for agents
    assert agent.get("/desk/api/review").status_code == 403
    refused = agent.post("/desk/api/review/collect", headers={"X-CSRF-Token": agent_csrf})
    assert refused.status_code == 403

    for username in ("editor", "boss"):
        client, _ = signed_in(app, username)
        page = client.get("/desk/review")
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert '<script src="/static/review.js" defer></script>' in page.text
        assert "<script>" not in page.text and "style=" not in page.text
        desk = client.get("/desk")
        if username == "boss":
            assert 'href="/desk/review"' in desk.text  # the header link
        else:  # an editor has no console: the desk sends them to the review queue
            assert desk.status_code == 303 and desk.headers["location"] == "/desk/review"
    assert client.get("/static/review.css").status_code == 200


def test_listing_and_collecting(app: FastAPI) -> None:
    client, csrf = signed_in(app, "editor")
    assert client.post("/desk/api/review/collect").status_code == 403  # no CSRF token
    assert client.get("/desk/api/review").json()["groups"] == []
    assert client.post("/desk/api/review/collect", headers={"X-CSRF-Token": csrf}).json() == {
        "collected": 6
    }
    listing = client.get("/desk/api/review").json()
    assert listing["pending"] == 6 and "product_care" in listing["topics"]
    assert (
        "product_question" in listing["intents"] and "make kb" in listing["next_step"]["knowledge"]
    )
    group = listing["groups"][0]  # the engraving questions: the most frequent
    assert group["count"] == 3 and group["customers"] == 3
    assert group["sources"] == {
        "unanswered": 1,
        "suggested": 1,
        "not_solved": 0,
        "agent_reply": 1,
        "frequent_problem": 0,
    }
    assert group["proposal"]["answer"] == ENGRAVE_ANSWER
    assert group["proposal"]["topic"] == "warranty_repair"  # the KB's best hit's topic


def test_approving_writes_the_entry_and_a_second_approval_conflicts(
    app: FastAPI, settings: Settings
) -> None:
    client, csrf = signed_in(app, "editor")
    group = engraving_group(client, csrf)
    headers = {"X-CSRF-Token": csrf}
    url = f"/desk/api/review/groups/{group['id']}/approve"
    assert client.post(url, json=entry_body(group)).status_code == 403  # no CSRF token
    response = client.post(
        url, json=entry_body(group, question="商品可以刻字吗？"), headers=headers
    )
    assert response.status_code == 200, response.text
    done = response.json()
    assert done["status"] == "approved" and "make kb" in done["next_step"]
    assert done["decision"]["file"] == "data/knowledge/product_care.yml"
    entries = {e.id: e for e in load_entries(settings.knowledge_source_dir)}
    entry = entries[done["decision"]["entry_id"]]
    assert entry.question == "商品可以刻字吗？" and entry.answer == ENGRAVE_ANSWER
    again = client.post(url, json=entry_body(group), headers=headers)
    assert again.status_code == 409 and "already" in again.json()["detail"]
    queue: ReviewQueue = app.state.review_queue
    decided = queue.items(group["item_ids"])
    assert {(i.status, i.decided_by) for i in decided} == {(ReviewStatus.approved, "editor")}
    listing = client.get("/desk/api/review").json()
    assert all(g["id"] != group["id"] for g in listing["groups"])


def test_merge_examples_and_reject_over_http(app: FastAPI, settings: Settings) -> None:
    client, csrf = signed_in(app, "boss")
    headers = {"X-CSRF-Token": csrf}
    client.post("/desk/api/review/collect", headers=headers)
    groups = {g["proposal"]["question"]: g for g in client.get("/desk/api/review").json()["groups"]}
    refund = groups["退款多久能到账啊"]
    merged = client.post(
        f"/desk/api/review/groups/{refund['id']}/merge",
        json={"item_ids": refund["item_ids"], "entry_id": "returns-refund-time"},
        headers=headers,
    ).json()
    assert merged["status"] == "merged" and merged["decision"]["added"] == ["退款多久能到账啊"]
    invoice = groups["可以开增值税专用发票吗"]
    examples = client.post(
        f"/desk/api/review/groups/{invoice['id']}/examples",
        json={"item_ids": invoice["item_ids"], "intent": "invoice", "texts": ["能开专票吗亲"]},
        headers=headers,
    ).json()
    assert examples["decision"]["intent"] == "invoice" and "make train" in examples["next_step"]
    assert "    - 能开专票吗亲\n" in (settings.nlu_dir / "billing.yml").read_text(encoding="utf-8")
    mars = groups["火星上能收到快递吗"]
    rejected = client.post(
        f"/desk/api/review/groups/{mars['id']}/reject",
        json={"item_ids": mars["item_ids"], "reason": "玩笑"},
        headers=headers,
    ).json()
    assert rejected["status"] == "rejected" and rejected["decision"]["reason"] == "玩笑"
    assert len(client.get("/desk/api/review").json()["groups"]) == 1  # the engraving group


@pytest.mark.parametrize(
    ("path", "body", "code", "detail"),
    [
        ("999/approve", {}, 404, "No review group 999"),
        ("{id}/approve", {"item_ids": [12345]}, 404, "No review item 12345"),
        ("{id}/approve", {"topic": "../returns"}, 422, "not a topic file name"),
        ("{id}/approve", {"topic": "a/b"}, 422, "not a topic file name"),
        ("{id}/approve", {"topic": "nope"}, 422, "No topic file nope.yml"),
        ("{id}/approve", {"answer": "   "}, 422, "answer is empty"),
        ("{id}/approve", {"question": ""}, 422, "question is empty"),
        ("{id}/approve", {"language": "fr"}, 422, "String should match pattern"),
        ("{id}/approve", {"answer": "x" * 4001}, 422, "at most 4000"),
        ("{id}/approve", {"extra": 1}, 422, "Extra inputs"),
        ("{id}/approve", {"alt_questions": "not a list"}, 422, "valid list"),
        ("{id}/merge", {"entry_id": "no-such-entry"}, 422, "No knowledge entry"),
        ("{id}/merge", {"entry_id": ""}, 422, "at least 1 character"),
        ("{id}/examples", {"intent": "no_such_intent"}, 422, "no intent 'no_such_intent'"),
        ("{id}/examples", {"intent": "greet", "texts": ["我要退货"]}, 422, "return_refund"),
        ("abc/reject", {}, 422, "valid integer"),
    ],
)
def test_bad_input_is_a_clear_4xx(
    app: FastAPI, settings: Settings, path: str, body: dict[str, Any], code: int, detail: str
) -> None:
    client, csrf = signed_in(app, "editor")
    group = engraving_group(client, csrf)
    action = path.rpartition("/")[2]
    base: dict[str, Any] = {"item_ids": group["item_ids"]}
    if action == "approve":
        base = entry_body(group)
    response = client.post(
        f"/desk/api/review/groups/{path.format(id=group['id'])}",
        json={**base, **body},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status_code == code, response.text
    assert detail in str(response.json()["detail"])
    queue: ReviewQueue = app.state.review_queue
    assert {i.status for i in queue.items(group["item_ids"])} == {ReviewStatus.pending}


def test_a_body_that_is_too_large_is_refused(app: FastAPI) -> None:
    client, csrf = signed_in(app, "editor")
    group = engraving_group(client, csrf)
    response = client.post(
        f"/desk/api/review/groups/{group['id']}/reject",
        json={"item_ids": group["item_ids"], "reason": "x" * 20_000},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status_code == 413


def test_two_editors_approving_the_same_group_at_once_one_wins(
    app: FastAPI, settings: Settings
) -> None:
    first, first_csrf = signed_in(app, "editor")
    second, second_csrf = signed_in(app, "editor2")
    group = engraving_group(first, first_csrf)
    url = f"/desk/api/review/groups/{group['id']}/approve"
    start = threading.Barrier(2)
    codes: list[int] = []

    def approve(client: TestClient, csrf: str, question: str) -> None:
        body = entry_body(group, question=question)
        start.wait()
        codes.append(client.post(url, json=body, headers={"X-CSRF-Token": csrf}).status_code)

    threads = [
        threading.Thread(target=approve, args=(first, first_csrf, "商品可以刻字吗？")),
        threading.Thread(target=approve, args=(second, second_csrf, "能在商品上刻字吗？")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [200, 409]
    questions = [e.question for e in load_entries(settings.knowledge_source_dir)]
    assert ("商品可以刻字吗？" in questions) != ("能在商品上刻字吗？" in questions)  # one entry
