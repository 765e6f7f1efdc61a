"""WeChat retries reach the bot once, also when copies hit several processes at once."""

import multiprocessing
import threading
from pathlib import Path

from connectors.channel_state import SqliteChannelState
from connectors.wechat.protocol import parse_inbound

TEXT = (
    "<xml><ToUserName>gh_kefu</ToUserName><FromUserName>o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
    "</FromUserName><CreateTime>1700000000</CreateTime><MsgType>text</MsgType>"
    "<Content>你好</Content><MsgId>6054768590064713728</MsgId></xml>"
)
KEY = parse_inbound(TEXT).dedup_key


def test_two_state_objects_on_one_file_share_claims(tmp_path: Path) -> None:
    first, second = SqliteChannelState(tmp_path / "c.db"), SqliteChannelState(tmp_path / "c.db")
    assert first.claim(KEY)
    assert not second.claim(KEY)
    assert not first.claim(KEY)


def test_four_threads_racing_claim_once(tmp_path: Path) -> None:
    state = SqliteChannelState(tmp_path / "c.db")
    start = threading.Barrier(4)
    results: list[bool] = []

    def claim() -> None:
        start.wait()
        results.append(state.claim(KEY))

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]


def _claim_in_process(path: str, start, results) -> None:  # type: ignore[no-untyped-def]
    state = SqliteChannelState(Path(path))
    start.wait()
    results.put(state.claim(KEY))


def test_four_processes_racing_claim_once(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(4), context.Queue()
    path = str(tmp_path / "c.db")
    processes = [
        context.Process(target=_claim_in_process, args=(path, start, results)) for _ in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(300)  # each spawned process imports Rasa: slow on a busy 2-core machine
    assert [process.exitcode for process in processes] == [0] * 4
    assert sorted(results.get(timeout=5) for _ in range(4)) == [False, False, False, True]
