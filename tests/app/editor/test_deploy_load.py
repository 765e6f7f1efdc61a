"""bot/editor/deploy_load.py: paced customers and what the result says about the load."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bot.editor.deploy_load import deploy_under_load


class _Rasa(BaseHTTPRequestHandler):
    """Answers every REST message at once."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps([{"recipient_id": "x", "text": "ok"}]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        """Quiet."""


@pytest.fixture
def rasa_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Rasa)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_customers_pause_between_messages_and_the_result_states_the_load(
    rasa_url: str, tmp_path: Path
) -> None:
    _, load = deploy_under_load(
        rasa_url,
        lambda: time.sleep(1.0),
        users=2,
        think_seconds=(0.4, 0.6),
        warm_up_messages=2,
        settle_seconds=0.0,
        result_path=tmp_path / "deploy.json",
    )
    # two customers pausing ~0.5 s over ~1.5 s: a handful of messages, not thousands
    assert 4 <= load.messages <= 12, load
    assert load.failed == 0
    assert 1.0 <= load.messages_per_second <= 6.0, load
    saved = json.loads((tmp_path / "deploy.json").read_text())
    assert saved["think_seconds"] == [0.4, 0.6]
    assert saved["users"] == 2
    assert len(saved["load_average"]) == 3
    assert saved["messages"] == load.messages
