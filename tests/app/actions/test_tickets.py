from collections.abc import Iterator
from datetime import UTC, datetime
from unittest.mock import patch

import pytest
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import Engine

from actions.tickets import ActionTicketProgress
from bot.customers import CustomerDirectory
from bot.service.tickets import TicketStore
from tests.app.conftest import draft, make_tracker


@pytest.fixture
def directory(engine: Engine) -> Iterator[CustomerDirectory]:
    directory = CustomerDirectory(engine)
    with (
        patch("actions.tickets.customer_directory", return_value=directory),
        patch("actions.tickets.ticket_store", return_value=TicketStore(engine)),
    ):
        yield directory


def open_ticket(engine: Engine, customer: str) -> str:
    store = TicketStore(engine)
    record_id = store.save_record(draft(customer))
    return store.confirm(record_id, at=datetime.now(UTC)).number


async def progress(sender: str, number: str | None) -> list[dict[str, str]]:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker("工单进度", "ticket_progress", slots={"ticket_number": number})
    tracker.sender_id = sender
    await ActionTicketProgress().run(dispatcher, tracker, {})
    return dispatcher.messages


async def test_a_ticket_number_gives_others_the_status_only(
    engine: Engine, directory: CustomerDirectory
) -> None:
    number = open_ticket(engine, "web:owner")
    [theirs] = await progress("web:stranger", number)
    assert theirs["response"] == "utter_ticket_status" and theirs["summary"] == ""
    [own] = await progress("web:owner", number)
    assert "左耳" in own["summary"]


async def test_linked_identities_are_the_same_customer(
    engine: Engine, directory: CustomerDirectory
) -> None:
    number = open_ticket(engine, "shop:5")
    directory.link_shop_login("web:phone", "shop:5")
    [by_number] = await progress("web:phone", number)
    assert "左耳" in by_number["summary"]
    [listed] = await progress("web:phone", None)  # the customer's own tickets, any channel
    assert listed["ticket_number"] == number and "左耳" in listed["summary"]
