"""The per-turn patches: the recent window keeps every recent dialogue state as it was."""

from __future__ import annotations

import pytest
from aiohttp import web
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    BotUttered,
    ConversationPaused,
    Event,
    FollowupAction,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity
from rasa.utils.endpoints import EndpointConfig

from rasa_addons import turn_speed
from rasa_addons.turn_speed import fast_copy, recent_events, recent_window

DOMAIN = Domain.from_yaml(
    """
version: "3.1"
intents: [greet, inform, complain]
entities: [order_number]
slots:
  step:
    type: categorical
    values: [asked, answered]
    influence_conversation: true
    mappings: [{type: custom}]
  order_number:
    type: text
    influence_conversation: false
    mappings: [{type: from_entity, entity: order_number}]
forms:
  order_form:
    required_slots: [order_number]
responses:
  utter_greet: [{text: hi}]
  utter_sorry: [{text: sorry}]
actions: [action_lookup]
"""
)


def user(text: str, intent: str = "greet") -> list[Event]:
    return [
        ActionExecuted("action_listen"),
        UserUttered(text, {"name": intent, "confidence": 1.0}),
    ]


def conversation() -> DialogueStateTracker:
    """30 customer turns: a featurized slot set early, a form in the middle, greetings later."""
    events: list[Event] = [ActionExecuted("action_session_start")]
    for index in range(30):
        if index == 2:
            events += [*user("complaint", "complain"), SlotSet("step", "asked")]
            events += [ActionExecuted("utter_sorry"), BotUttered("sorry")]
        elif index == 20:
            events += [*user("order", "inform"), ActionExecuted("order_form")]
            events += [ActiveLoop("order_form"), SlotSet("requested_slot", "order_number")]
        elif index == 21:
            events += [*user("KF1", "inform"), SlotSet("order_number", "KF1")]
            events += [ActionExecuted("order_form"), ActiveLoop(None)]
            events += [ActionExecuted("action_lookup"), SlotSet("step", "answered")]
        else:
            events += [*user(f"hello {index}"), ActionExecuted("utter_greet"), BotUttered("hi")]
    events.append(ActionExecuted("action_listen"))
    return DialogueStateTracker.from_events("c1", events, DOMAIN.slots, domain=DOMAIN)


@pytest.mark.parametrize("turns", [3, 6, 10])
@pytest.mark.parametrize("ignore_rule_only_turns", [False, True])
def test_the_window_keeps_the_recent_states(turns: int, ignore_rule_only_turns: bool) -> None:
    tracker = conversation()
    window = recent_window(tracker, DOMAIN.slots, user_turns=turns)
    assert window is not tracker and window.full_tracker is tracker  # type: ignore[attr-defined]
    whole = tracker.past_states(DOMAIN, ignore_rule_only_turns=ignore_rule_only_turns)
    recent = window.past_states(DOMAIN, ignore_rule_only_turns=ignore_rule_only_turns)
    assert len(recent) < len(whole)
    keep = 2 * turns  # every state from the cut on (2 actions per turn)
    assert recent[-keep:] == whole[-keep:]
    assert window.current_slot_values() == tracker.current_slot_values()
    assert window.latest_message == tracker.latest_message


def test_the_window_starts_where_no_form_is_active() -> None:
    tracker = conversation()
    # 9 turns back is the turn after the form's first question (turn 21): the cut moves to 20
    window = recent_window(tracker, DOMAIN.slots, user_turns=9)
    texts = [e.text for e in window.events if isinstance(e, UserUttered)]
    assert texts[0] == "order"
    assert window.past_states(DOMAIN)[-18:] == tracker.past_states(DOMAIN)[-18:]


def test_a_short_conversation_is_not_cut() -> None:
    tracker = conversation()
    assert recent_window(tracker, DOMAIN.slots, user_turns=30) is tracker
    assert recent_events(tracker, 30) == list(tracker.events)


def test_the_action_server_gets_the_recent_events() -> None:
    tracker = conversation()
    events = recent_events(tracker, 5)
    assert events[0] == ActionExecuted("action_listen")
    assert next(e.text for e in events if isinstance(e, UserUttered)) == "hello 25"
    assert events[-1] == list(tracker.events)[-1]


def test_event_classes_are_found_by_name_as_before() -> None:
    turn_speed.install()
    assert Event.resolve_by_type("user") is UserUttered
    assert Event.resolve_by_type("user") is UserUttered  # from the cache
    assert Event.resolve_by_type("topic") is None
    with pytest.raises(ValueError, match="Unknown event name"):
        Event.resolve_by_type("no_such_event")
    assert Event.from_parameters({"event": "slot", "name": "step", "value": "asked"}) == SlotSet(
        "step", "asked"
    )


async def test_one_http_session_serves_every_call() -> None:
    turn_speed.install()
    peers: set[tuple[str, int]] = set()

    async def webhook(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        peers.add(tuple(peer[:2]) if peer else ("", 0))
        return web.json_response({"events": [], "responses": []})

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        endpoint = EndpointConfig(url=f"http://127.0.0.1:{port}/webhook", headers={"X": "1"})
        for _ in range(5):
            assert await endpoint.request(json={}, method="post") == {"events": [], "responses": []}
        assert len(peers) == 1  # one kept-alive connection, not five
    finally:
        await runner.cleanup()


def state(tracker: DialogueStateTracker) -> dict[str, object]:
    """Everything a tracker knows, as Rasa serialises it, plus what it does not serialise."""
    return {
        **tracker.current_state(EventVerbosity.ALL),
        "paused": tracker.is_paused(),
        "followup": tracker.followup_action,
        "past_states": tracker.past_states(DOMAIN),
    }


def in_a_form(tracker: DialogueStateTracker) -> DialogueStateTracker:
    for event in [*user("order", "inform"), ActionExecuted("order_form")]:
        tracker.update(event, DOMAIN)
    for event in [ActiveLoop("order_form"), SlotSet("requested_slot", "order_number")]:
        tracker.update(event, DOMAIN)
    return tracker


@pytest.mark.parametrize(
    "make",
    [
        conversation,
        lambda: in_a_form(conversation()),
        lambda: DialogueStateTracker.from_events(
            "c2", [*user("hi"), ConversationPaused(), FollowupAction("utter_greet")], DOMAIN.slots
        ),
        lambda: DialogueStateTracker("c3", None),  # no domain: slots made on demand
    ],
)
def test_a_fast_copy_is_the_tracker_replayed_and_shares_nothing_that_changes(make: object) -> None:
    tracker = make()  # type: ignore[operator]
    replayed = tracker.travel_back_in_time(float("inf"))
    copied = fast_copy(tracker)
    assert state(copied) == state(replayed) == state(tracker)
    before = state(tracker)
    later = [
        *user("KF9", "inform"),
        SlotSet("order_number", "KF9"),
        SlotSet("step", "answered"),
        ActiveLoop(None),
        ConversationPaused(),
    ]
    if tracker.active_loop:
        copied.reject_action("order_form")  # sets a field of the active loop
        replayed.reject_action("order_form")
        assert tracker.active_loop.rejected is False
    for event in later:
        copied.update(event, DOMAIN)
        replayed.update(event, DOMAIN)
    assert state(tracker) == before  # the original did not change with its copy
    assert state(copied) == state(replayed)
