from collections.abc import Iterator
from datetime import UTC, datetime
from unittest.mock import AsyncMock, patch

import pytest
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import Engine

from actions.confirmation import email_copy
from bot.core.settings import Settings
from bot.customers import DAILY_EMAILS, CustomerDirectory
from bot.service.tickets import TicketStore
from tests.app.conftest import draft


@pytest.fixture
def directory(engine: Engine) -> Iterator[CustomerDirectory]:
    directory = CustomerDirectory(engine)
    with (
        patch("actions.confirmation.customer_directory", return_value=directory),
        patch("actions.confirmation.get_settings", return_value=Settings(smtp_host="smtp.test")),
    ):
        yield directory


async def send(engine: Engine, sender: str, email: str) -> tuple[CollectingDispatcher, AsyncMock]:
    store = TicketStore(engine)
    record_id = store.save_record(draft(sender, email=email))
    ticket = store.confirm(record_id, at=datetime.now(UTC))
    record = store.get_record(record_id)
    assert record is not None
    dispatcher = CollectingDispatcher()
    with patch("actions.confirmation.send_letter", AsyncMock(return_value=True)) as sent:
        await email_copy(dispatcher, record, ticket, "明天", "客服联系您", sender)
    return dispatcher, sent


async def test_a_typed_address_is_not_mailed(engine: Engine, directory: CustomerDirectory) -> None:
    dispatcher, sent = await send(engine, "web:a", "victim@example.com")
    sent.assert_not_called()
    assert dispatcher.messages[0]["response"] == "utter_confirmation_email_unverified"


async def test_the_address_on_file_is_mailed_a_few_times_a_day(
    engine: Engine, directory: CustomerDirectory
) -> None:
    directory.set_contact("web:b", email="me@example.com")
    for _ in range(DAILY_EMAILS):
        dispatcher, sent = await send(engine, "web:b", "me@example.com")
        sent.assert_called_once()
        assert dispatcher.messages[0]["response"] == "utter_confirmation_emailed"
    dispatcher, sent = await send(engine, "web:b", "me@example.com")
    sent.assert_not_called()
