from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, update

from bot.core.db import LinkCode, session_factory
from bot.customers import CODE_ATTEMPTS, DAILY_EMAILS, CustomerDirectory, LinkError
from bot.handoff.store import HandoffStore


class Outbox:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def __call__(self, to: str, subject: str, text: str) -> None:
        self.sent.append((to, subject, text))

    def code(self) -> str:
        text = self.sent[-1][2]
        return next(word for word in text.replace("，", " ").split() if word.isdigit())


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


@pytest.fixture
def directory(engine: Engine, outbox: Outbox) -> CustomerDirectory:
    return CustomerDirectory(engine, send=outbox)


def test_customer_created_on_first_sight(directory: CustomerDirectory) -> None:
    first = directory.customer_for("web:abc")
    assert directory.customer_for("web:abc").id == first.id
    assert directory.customer_for("telegram:1").id != first.id
    assert directory.identities_of("web:abc") == ["web:abc"]
    assert directory.identities_of("web:never-seen") == ["web:never-seen"]
    assert directory.verified_phone("web:abc") is None


def test_unknown_identities_are_not_the_same_customer(directory: CustomerDirectory) -> None:
    assert directory.same_customer("web:a", "web:a")
    assert not directory.same_customer("web:a", "web:b")
    directory.customer_for("web:a")
    directory.customer_for("web:b")
    assert not directory.same_customer("web:a", "web:b")


def test_link_with_the_code_sent_to_the_email_on_file(
    directory: CustomerDirectory, outbox: Outbox
) -> None:
    directory.set_contact("wechat:o1", phone="13800000001", email="Zhang@Example.com")
    started = directory.start_link("web:new", "wechat:o1")
    assert started.destination == "z***@example.com"
    assert outbox.sent[-1][0] == "zhang@example.com"
    assert directory.confirm_link("web:new", outbox.code()) == "wechat:o1"
    assert directory.same_customer("web:new", "wechat:o1")
    assert directory.identities_of("web:new") == ["web:new", "wechat:o1"]
    assert directory.verified_phone("web:new") == "13800000001"
    with pytest.raises(LinkError):  # single use
        directory.confirm_link("web:new", outbox.code())


def test_link_needs_an_email_on_file(directory: CustomerDirectory) -> None:
    directory.customer_for("wechat:o2")
    with pytest.raises(LinkError):
        directory.start_link("web:x", "wechat:o2")
    with pytest.raises(LinkError):
        directory.start_link("web:x", "wechat:unknown")


def test_wrong_codes_are_limited(directory: CustomerDirectory, outbox: Outbox) -> None:
    directory.set_contact("shop:42", email="a@example.com")
    directory.start_link("web:attacker", "shop:42")
    right = outbox.code()
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(CODE_ATTEMPTS):
        with pytest.raises(LinkError):
            directory.confirm_link("web:attacker", wrong)
    with pytest.raises(LinkError):
        directory.confirm_link("web:attacker", right)
    assert not directory.same_customer("web:attacker", "shop:42")


def test_codes_expire(engine: Engine, directory: CustomerDirectory, outbox: Outbox) -> None:
    directory.set_contact("shop:7", email="b@example.com")
    directory.start_link("web:late", "shop:7")
    with session_factory(engine).begin() as session:
        session.execute(
            update(LinkCode).values(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
        )
    with pytest.raises(LinkError):
        directory.confirm_link("web:late", outbox.code())


def test_a_code_is_only_for_the_identity_that_asked(
    directory: CustomerDirectory, outbox: Outbox
) -> None:
    directory.set_contact("shop:8", email="c@example.com")
    directory.start_link("web:one", "shop:8")
    with pytest.raises(LinkError):
        directory.confirm_link("web:other", outbox.code())


def test_shop_login_links(directory: CustomerDirectory) -> None:
    directory.set_contact("shop:9", phone="13900000009")
    directory.link_shop_login("web:s", "shop:9")
    assert directory.same_customer("web:s", "shop:9")
    assert directory.verified_phone("web:s") == "13900000009"
    with pytest.raises(LinkError):
        directory.link_shop_login("web:s", "wechat:9")


def test_vip_follows_the_customer(engine: Engine, directory: CustomerDirectory) -> None:
    HandoffStore(engine).set_vip("shop:10", True, "shop")
    assert not directory.is_vip("web:v")
    directory.link_shop_login("web:v", "shop:10")
    assert directory.is_vip("web:v")


def test_emails_only_to_the_address_on_file_and_a_few_a_day(
    directory: CustomerDirectory,
) -> None:
    assert not directory.reserve_email("web:m", "m@example.com")
    directory.set_contact("web:m", email="m@example.com")
    assert not directory.reserve_email("web:m", "someone.else@example.com")
    assert [directory.reserve_email("web:m", "M@example.com") for _ in range(DAILY_EMAILS)] == [
        True
    ] * DAILY_EMAILS
    assert not directory.reserve_email("web:m", "m@example.com")
