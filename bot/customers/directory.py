"""The customer directory: accounts, their channel identities, and proof before linking.

Identities are the namespaced sender ids the channels verified (`web:<id>`, `shop:<user id>`,
`wechat:<openid>`, `telegram:<chat id>`, or a REST sender the calling server names). An
identity seen for the first time gets an account of its own. Two identities join one account
only with proof: a one-time code sent to the email on file of the account being joined
(`start_link` / `confirm_link`), or a shop-signed login (`link_shop_login`, the caller has
verified the `user_hash`). Codes are 6 digits, stored as SHA-256, expire after 10 minutes, are
used once, compared in constant time and refused after 5 wrong attempts.

Phone and email on an account are on file only when verified (never what a customer typed):
order details go to callers whose verified phone is the order's (`verified_phone`), need
confirmations only to the email on file, at most `DAILY_EMAILS` a day (`reserve_email`).

Blocking (SQLAlchemy sessions): async callers run it in a worker thread.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.core.db import (
    ChannelIdentity,
    Customer,
    CustomerAccount,
    CustomerEmail,
    LinkCode,
    session_factory,
)

logger = logging.getLogger(__name__)

CODE_LIFETIME = timedelta(minutes=10)
"""How long a link code is valid."""

CODE_ATTEMPTS = 5
"""Wrong answers after which a link code is dead."""

DAILY_EMAILS = 3
"""Need confirmations emailed to one account per day, at most."""

SHOP_PREFIX = "shop:"

Sender = Callable[[str, str, str], None]
"""Delivers a code: (email address, subject, text); raises on failure."""


class LinkError(ValueError):
    """A link that cannot be made (unknown identity, no email on file, bad or expired code)."""


@dataclass(frozen=True)
class LinkStarted:
    """A code is on its way: where to (masked) and until when it is valid."""

    destination: str
    expires_at: datetime


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _check_identity(identity: str) -> str:
    if not isinstance(identity, str) or not identity.strip() or len(identity) > 128:
        raise LinkError(f"Not a channel identity: {identity!r}.")
    return identity


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def mask_email(email: str) -> str:
    """`z***@example.com`: enough for the customer to recognise the address."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def logged_sender(to: str, subject: str, text: str) -> None:
    """The stand-in when SMTP is not configured: logs that a code was sent, not the code."""
    logger.warning("SMTP is not configured: a link code for %s was not delivered.", mask_email(to))


class CustomerDirectory:
    """Reads and changes customer accounts and their channel identities (blocking)."""

    def __init__(self, engine: Engine, send: Sender | None = None) -> None:
        self._sessions = session_factory(engine)
        self._send = send or logged_sender

    # ------------------------------------------------------------------ identities
    def customer_for(self, identity: str) -> CustomerAccount:
        """The account of this identity, created on first sight."""
        _check_identity(identity)
        for _ in range(3):
            try:
                with self._sessions.begin() as session:
                    account = self._account(session, identity, create=True)
                    assert account is not None
                    return account
            except IntegrityError:
                continue  # another writer created it meanwhile: read it
        raise LinkError(f"Could not create the account of {identity!r}.")

    def identities_of(self, identity: str) -> list[str]:
        """Every identity of this identity's account (itself included), sorted."""
        with self._sessions() as session:
            account_id = self._account_id(session, identity)
            if account_id is None:
                return [identity]
            return sorted(
                session.scalars(
                    select(ChannelIdentity.identity).where(ChannelIdentity.account_id == account_id)
                )
            )

    def same_customer(self, a: str, b: str) -> bool:
        """Whether the two identities belong to one account (an identity is its own)."""
        if a == b:
            return True
        with self._sessions() as session:
            first = self._account_id(session, a)
            return first is not None and first == self._account_id(session, b)

    def verified_phone(self, identity: str) -> str | None:
        """The verified phone of the identity's account, or None."""
        with self._sessions() as session:
            account = self._account(session, identity, create=False)
            return account.phone if account is not None else None

    def email_on_file(self, identity: str) -> str | None:
        """The verified email of the identity's account, or None."""
        with self._sessions() as session:
            account = self._account(session, identity, create=False)
            return account.email if account is not None else None

    def set_contact(
        self, identity: str, *, phone: str | None = None, email: str | None = None
    ) -> CustomerAccount:
        """Puts a verified phone and/or email on file (a shop import, an operator, a code)."""
        _check_identity(identity)
        with self._sessions.begin() as session:
            account = self._account(session, identity, create=True)
            assert account is not None
            if phone is not None:
                account.phone = phone
            if email is not None:
                account.email = email.strip().lower()
            return account

    def is_vip(self, identity: str) -> bool:
        """Whether any identity of the account is marked VIP (`kefu customers vip`)."""
        identities = self.identities_of(identity)
        with self._sessions() as session:
            return bool(
                session.scalar(
                    select(func.count(Customer.id)).where(
                        Customer.id.in_(identities), Customer.vip.is_(True)
                    )
                )
            )

    # ------------------------------------------------------------------ linking
    def start_link(self, identity: str, target_identity: str) -> LinkStarted:
        """Sends a one-time code to the email on file of `target_identity`'s account.

        Whoever gives the code back from `identity` (`confirm_link`) joins that account.
        Raises `LinkError` when the target is unknown or has no email on file. A new code
        replaces the identity's earlier ones.
        """
        _check_identity(identity)
        _check_identity(target_identity)
        if self.same_customer(identity, target_identity):
            raise LinkError("These identities already belong to one customer.")
        email = self.email_on_file(target_identity)
        if not email:
            raise LinkError("The account to link to has no email on file.")
        code = f"{secrets.randbelow(1_000_000):06d}"
        now = _now()
        with self._sessions.begin() as session:
            session.execute(
                update(LinkCode)
                .where(LinkCode.identity == identity, LinkCode.used_at.is_(None))
                .values(used_at=now)
            )
            session.add(
                LinkCode(
                    identity=identity,
                    target_identity=target_identity,
                    code_hash=_hash(code),
                    attempts=0,
                    created_at=now,
                    expires_at=now + CODE_LIFETIME,
                    used_at=None,
                )
            )
        self._send(
            email,
            "Kefu verification code / 验证码",
            f"您的验证码是 {code}，10 分钟内有效。Your verification code is {code}; "
            "it is valid for 10 minutes. 如非本人操作请忽略。If you did not ask for it, ignore it.",
        )
        return LinkStarted(destination=mask_email(email), expires_at=now + CODE_LIFETIME)

    def confirm_link(self, identity: str, code: str) -> str:
        """Checks the code sent for `identity`; on success joins it to the target's account.

        Returns the target identity. Raises `LinkError` for no pending code, an expired or
        used one, too many attempts, or a wrong code (counted).
        """
        _check_identity(identity)
        now = _now()
        with self._sessions.begin() as session:
            pending = session.scalars(
                select(LinkCode)
                .where(LinkCode.identity == identity, LinkCode.used_at.is_(None))
                .order_by(LinkCode.id.desc())
                .with_for_update()
            ).first()
            if pending is None or pending.expires_at <= now:
                raise LinkError("No valid code: ask for a new one.")
            if pending.attempts >= CODE_ATTEMPTS:
                raise LinkError("Too many wrong codes: ask for a new one.")
            pending.attempts += 1
            given = (code or "").strip()
            if not hmac.compare_digest(_hash(given), pending.code_hash):
                if pending.attempts >= CODE_ATTEMPTS:
                    pending.used_at = now
                session.flush()
                wrong = True
            else:
                pending.used_at = now
                target = pending.target_identity
                self._merge(session, identity, target)
                wrong = False
        if wrong:
            raise LinkError("Wrong code.")
        return target

    def link_shop_login(self, identity: str, shop_identity: str) -> CustomerAccount:
        """Joins `identity` to the account of a shop login the caller verified (`user_hash`)."""
        _check_identity(identity)
        _check_identity(shop_identity)
        if not shop_identity.startswith(SHOP_PREFIX) or len(shop_identity) == len(SHOP_PREFIX):
            raise LinkError(f"Not a shop identity: {shop_identity!r}.")
        with self._sessions.begin() as session:
            return self._merge(session, identity, shop_identity)

    # ------------------------------------------------------------------ email limit
    def reserve_email(self, identity: str, address: str, kind: str = "need_confirmation") -> bool:
        """Whether Kefu may email `address` for this identity now; if so, counts the email.

        Only the account's email on file qualifies, at most `DAILY_EMAILS` in 24 hours.
        """
        now = _now()
        with self._sessions.begin() as session:
            account = self._account(session, identity, create=False)
            if account is None or not account.email:
                return False
            if account.email.lower() != (address or "").strip().lower():
                return False
            # Serialise the account's senders (a row lock on PostgreSQL; SQLite locks on write).
            session.execute(
                update(CustomerAccount)
                .where(CustomerAccount.id == account.id)
                .values(email=CustomerAccount.email)
            )
            sent = session.scalar(
                select(func.count(CustomerEmail.id)).where(
                    CustomerEmail.account_id == account.id,
                    CustomerEmail.at > now - timedelta(days=1),
                )
            )
            if int(sent or 0) >= DAILY_EMAILS:
                return False
            session.add(CustomerEmail(account_id=account.id, kind=kind, at=now))
            return True

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _account_id(session: Session, identity: str) -> int | None:
        return session.scalar(
            select(ChannelIdentity.account_id).where(ChannelIdentity.identity == identity)
        )

    def _account(self, session: Session, identity: str, *, create: bool) -> CustomerAccount | None:
        account_id = self._account_id(session, identity)
        if account_id is not None:
            return session.get(CustomerAccount, account_id)
        if not create:
            return None
        now = _now()
        account = CustomerAccount(phone=None, email=None, created_at=now)
        session.add(account)
        session.flush()
        session.add(ChannelIdentity(identity=identity, account_id=account.id, created_at=now))
        session.flush()
        return account

    def _merge(self, session: Session, identity: str, target: str) -> CustomerAccount:
        """Moves every identity of `identity`'s account into `target`'s account."""
        into = self._account(session, target, create=True)
        source = self._account(session, identity, create=True)
        assert into is not None and source is not None
        if source.id == into.id:
            return into
        into.phone = into.phone or source.phone
        into.email = into.email or source.email
        session.execute(
            update(ChannelIdentity)
            .where(ChannelIdentity.account_id == source.id)
            .values(account_id=into.id)
        )
        session.execute(
            update(CustomerEmail)
            .where(CustomerEmail.account_id == source.id)
            .values(account_id=into.id)
        )
        session.flush()
        session.delete(source)
        session.flush()
        return into
