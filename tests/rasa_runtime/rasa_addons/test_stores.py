import pytest
from rasa.core.brokers.sql import SQLEventBroker
from rasa.core.lock_store import InMemoryLockStore, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

from rasa_addons.stores import StoreUrlError, UrlEventBroker, UrlLockStore


async def test_sqlite_url_gives_the_sql_broker(tmp_path) -> None:
    broker = await UrlEventBroker.from_endpoint_config(
        EndpointConfig(url=f"sqlite:///{tmp_path}/events.db")
    )
    assert isinstance(broker, SQLEventBroker)
    broker.publish({"sender_id": "s1", "event": "user", "text": "hi"})
    with broker.session_scope() as session:
        assert session.query(broker.SQLBrokerEvent).count() == 1


async def test_empty_url_means_no_broker() -> None:
    assert await UrlEventBroker.from_endpoint_config(EndpointConfig(url="")) is None


async def test_unknown_broker_scheme_is_refused() -> None:
    with pytest.raises(StoreUrlError):
        await UrlEventBroker.from_endpoint_config(EndpointConfig(url="mqtt://x"))


def test_lock_store_urls() -> None:
    assert isinstance(UrlLockStore(EndpointConfig(url="memory://")), InMemoryLockStore)
    assert isinstance(UrlLockStore(endpoint_config=None), InMemoryLockStore)
    redis = UrlLockStore(EndpointConfig(url="redis://:secret@127.0.0.1:6390/2"))
    assert isinstance(redis, RedisLockStore)
    kwargs = redis.red.connection_pool.connection_kwargs
    assert (kwargs["port"], kwargs["db"], kwargs["password"]) == (6390, 2, "secret")
    with pytest.raises(StoreUrlError):
        UrlLockStore(EndpointConfig(url="etcd://x"))


async def test_sqlite_stores_run_in_wal_mode(tmp_path) -> None:
    broker = await UrlEventBroker.from_endpoint_config(
        EndpointConfig(url=f"sqlite:///{tmp_path}/events.db")
    )
    with broker.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
