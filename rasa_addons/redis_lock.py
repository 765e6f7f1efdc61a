"""Rasa's Redis ticket lock with every change made atomically, so instances cannot race.

Rasa 3.6's `RedisLockStore` changes a conversation's lock by reading it, changing it in
Python and writing it back (`issue_ticket`, `update_lock`, `finish_serving`, `cleanup`).
Two Rasa instances that get a message of one conversation at the same instant can both read
"no lock", both take ticket 1 and both run the turn: one turn's events overwrite the other's
and a customer message is lost. `AtomicRedisLockStore` makes each of those changes one
WATCH/MULTI transaction on the lock's key (retried when another client changed the key in
between), keeping Rasa's data format (`TicketLock.dumps`) and its ticket semantics.

Two deliberate differences: a lock left without tickets is deleted rather than saved empty
(Rasa then waits for an expired ticket forever instead of raising `LockError` as its
docstring says), and the key expires a minute after its last ticket, so a crashed
instance leaves no lock behind.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import TypeVar

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from redis.client import Pipeline

T = TypeVar("T")

KEY_GRACE_SECONDS = 60.0
"""A lock's key outlives its last ticket by this long (clock differences between hosts)."""


class AtomicRedisLockStore(RedisLockStore):
    """`RedisLockStore` whose read-change-write steps are single Redis transactions."""

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        """Issues the next ticket of `conversation_id`'s lock, creating the lock if needed."""

        def issue(lock: TicketLock | None) -> tuple[TicketLock | None, int]:
            lock = lock or self.create_lock(conversation_id)
            return lock, lock.issue_ticket(lock_lifetime)

        try:
            return self._change(conversation_id, issue)
        except Exception as error:  # Rasa's contract: any failure here is a LockError
            raise LockError(f"Error while acquiring lock. Error:\n{error}") from error

    def update_lock(self, conversation_id: str) -> None:
        """Removes the expired tickets of `conversation_id`'s lock."""

        def update(lock: TicketLock | None) -> tuple[TicketLock | None, None]:
            if lock is not None:
                lock.remove_expired_tickets()
            return lock, None

        self._change(conversation_id, update)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        """Removes ticket `ticket_number` from `conversation_id`'s lock."""

        def finish(lock: TicketLock | None) -> tuple[TicketLock | None, None]:
            if lock is not None:
                lock.remove_ticket_for(ticket_number)
            return lock, None

        self._change(conversation_id, finish)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Finishes `ticket_number`; the lock goes once nobody waits (one transaction)."""
        self.finish_serving(conversation_id, ticket_number)

    def _change(
        self,
        conversation_id: str,
        change: Callable[[TicketLock | None], tuple[TicketLock | None, T]],
    ) -> T:
        """Applies `change` to the stored lock atomically; returns what `change` returns.

        `change` gets the current lock (None when there is none) and returns the lock to
        store (None or one without tickets: delete it) and a result. It may run more than
        once: again whenever another client changed the key before this one could write.
        """
        key = self.key_prefix + conversation_id

        def transaction(pipe: Pipeline) -> T:
            stored = pipe.get(key)  # immediate: the pipeline is watching `key`
            current = TicketLock.from_dict(json.loads(stored)) if stored else None
            changed, result = change(current)
            pipe.multi()
            if changed is None or not changed.tickets:
                if stored:
                    pipe.delete(key)
            else:
                last_expiry = max(ticket.expires for ticket in changed.tickets)
                ttl = max(last_expiry - time.time(), 0.0) + KEY_GRACE_SECONDS
                pipe.set(key, changed.dumps(), px=math.ceil(ttl * 1000))
            return result

        result: T = self.red.transaction(transaction, key, value_from_callable=True)
        return result
