"""AtomicRedisLockStore against a real redis-server: two instances racing on one conversation.

Each "instance" is a lock store of its own (own connection pool) in its own thread; a
barrier makes them ask at the same instant. Rasa's RedisLockStore runs the same tests as
a strict xfail: they must fail on it (both instances take ticket 1, a turn is lost).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from rasa.core.lock_store import LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

from rasa_addons.redis_lock import AtomicRedisLockStore
from rasa_addons.stores import UrlLockStore
from tests.rasa_runtime.local_servers import RedisServer, require_redis

RASA_RACES = pytest.mark.xfail(
    strict=True, reason="Rasa's RedisLockStore reads, changes and writes the lock: it races"
)
STORES = [
    pytest.param(AtomicRedisLockStore, id="atomic"),
    pytest.param(RedisLockStore, id="rasa", marks=RASA_RACES),
]


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    require_redis()
    with RedisServer() as server:
        yield server.start()


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    connection = redis.Redis(host="127.0.0.1", port=redis_server.port, db=3)
    connection.flushdb()
    yield connection
    connection.close()


def make_store(store_class: type[RedisLockStore], server: RedisServer) -> RedisLockStore:
    return store_class(host="127.0.0.1", port=server.port, db=3, socket_timeout=5)


def in_two_instances(work: Callable[[int, threading.Barrier], Any]) -> list[Any]:
    """Runs `work(instance, barrier)` in two threads at once; their results (or errors)."""
    barrier = threading.Barrier(2, timeout=30)
    results: list[Any] = [None, None]

    def run(instance: int) -> None:
        try:
            results[instance] = work(instance, barrier)
        except BaseException as error:  # reported by the test, not lost in the thread
            results[instance] = error
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


@pytest.mark.parametrize("store_class", STORES)
def test_two_instances_issuing_at_once_get_different_tickets(
    store_class: type[RedisLockStore], redis_server: RedisServer, client: redis.Redis
) -> None:
    rounds = 150

    def issue(instance: int, barrier: threading.Barrier) -> list[int]:
        store = make_store(store_class, redis_server)
        tickets = []
        for round_ in range(rounds):
            barrier.wait()
            tickets.append(store.issue_ticket(f"c{round_}", lock_lifetime=60))
        return tickets

    first, second = in_two_instances(issue)
    same = [r for r in range(rounds) if first[r] == second[r]]
    assert same == [], f"{len(same)} of {rounds} rounds gave both instances the same ticket"
    store = make_store(store_class, redis_server)
    for round_ in range(rounds):
        lock = store.get_lock(f"c{round_}")
        assert lock is not None
        assert sorted(t.number for t in lock.tickets) == [0, 1]  # Rasa counts from 0


@pytest.mark.parametrize("store_class", STORES)
def test_turns_of_one_conversation_on_two_instances_never_overlap(
    store_class: type[RedisLockStore], redis_server: RedisServer, client: redis.Redis
) -> None:
    """Each turn reads the conversation, works 2 ms and writes it back: none may be lost."""
    turns = 40

    async def instance_turns(instance: int, barrier: threading.Barrier) -> int:
        store = make_store(store_class, redis_server)
        own = redis.Redis(host="127.0.0.1", port=redis_server.port, db=3)
        done = 0
        for _ in range(turns):
            await asyncio.to_thread(barrier.wait)
            async with store.lock("conversation", wait_time_in_seconds=0.001):
                seen = int(own.get("turns") or 0)
                await asyncio.sleep(0.002)
                own.set("turns", seen + 1)
            done += 1
        own.close()
        return done

    done = in_two_instances(lambda i, b: asyncio.run(instance_turns(i, b)))
    assert done == [turns, turns]
    assert int(client.get("turns") or 0) == 2 * turns, "turns overlapped: a message was lost"
    assert client.keys("lock:*") == [], "the lock outlived its last ticket"


def test_rasa_semantics_are_kept(redis_server: RedisServer, client: redis.Redis) -> None:
    store = make_store(AtomicRedisLockStore, redis_server)
    assert store.issue_ticket("c", lock_lifetime=60) == 0
    assert store.issue_ticket("c", lock_lifetime=60) == 1
    lock = store.get_lock("c")
    assert lock is not None and lock.now_serving == 0 and lock.is_locked(1)
    assert store.is_someone_waiting("c")
    stored = client.get("lock:c")
    assert stored is not None and b'"conversation_id": "c"' in stored  # Rasa's format
    assert 60_000 < client.pttl("lock:c") <= 121_000  # ticket lifetime + a minute's grace

    store.cleanup("c", 0)
    lock = store.get_lock("c")
    assert lock is not None and not lock.is_locked(1)
    store.cleanup("c", 1)
    assert store.get_lock("c") is None and not store.is_someone_waiting("c")


def test_expired_tickets_are_dropped_and_numbering_restarts(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    store = make_store(AtomicRedisLockStore, redis_server)
    assert store.issue_ticket("c", lock_lifetime=0.05) == 0
    assert store.issue_ticket("c", lock_lifetime=60) == 1
    time.sleep(0.1)
    store.update_lock("c")
    lock = store.get_lock("c")
    assert lock is not None and [t.number for t in lock.tickets] == [1]
    store.finish_serving("c", 1)
    assert store.get_lock("c") is None  # no tickets left: no lock
    assert store.issue_ticket("c", lock_lifetime=60) == 0


async def test_a_waiter_whose_lock_expired_gets_a_lock_error(
    redis_server: RedisServer, client: redis.Redis
) -> None:
    store = make_store(AtomicRedisLockStore, redis_server)
    store.issue_ticket("c", lock_lifetime=0.05)  # a holder that never finishes
    with pytest.raises(LockError):
        async with store.lock("c", lock_lifetime=0.05, wait_time_in_seconds=0.02):
            pass


def test_an_unreachable_redis_is_a_lock_error() -> None:
    store = AtomicRedisLockStore(host="127.0.0.1", port=1, socket_timeout=1)
    with pytest.raises(LockError):
        store.issue_ticket("c")


def test_redis_urls_give_the_atomic_store() -> None:
    store = UrlLockStore(EndpointConfig(url="redis://kefu:s%40cret@127.0.0.1:6390/2"))
    assert isinstance(store, AtomicRedisLockStore)
    kwargs = store.red.connection_pool.connection_kwargs
    assert (kwargs["port"], kwargs["db"], kwargs["username"], kwargs["password"]) == (
        6390,
        2,
        "kefu",
        "s@cret",
    )
