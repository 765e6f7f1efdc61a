"""The customer conversation set replayed against a live stack (`kefu eval conversations`).

By default a fresh stack (trained model reused, knowledge index built into a scratch folder,
demo orders seeded) runs on free loopback ports; `--url` replays against a running Rasa
instead. The table goes to stdout, every judged turn to `var/bench/conversations-<split>.json`.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from bot.bench.common import BenchReport, scratch_settings
from bot.conversation_eval.dataset import SET_DIR, Conversation, Split, load_split
from bot.conversation_eval.judge import RecordLike
from bot.conversation_eval.replay import ConversationRun, RecordReader, replay
from bot.conversation_eval.report import Summary, summarise
from bot.core.db import ServiceRecord, make_engine, upgrade
from bot.core.processes import ServiceGroup, kefu_services
from bot.core.settings import Settings
from bot.core.training import ensure_model
from bot.knowledge.index import ensure_index
from bot.service.orders import seed_demo_orders
from bot.service.policy import load_policy


def subset(conversations: Sequence[Conversation], every: int) -> list[Conversation]:
    """Every `every`-th conversation (the first, then each `every` later): a fixed sample."""
    return list(conversations[::every]) if every > 1 else list(conversations)


def _record_reader(database_url: str) -> RecordReader:
    engine = make_engine(database_url)

    def read(record_id: int) -> RecordLike | None:
        with Session(engine) as session:
            record = session.get(ServiceRecord, record_id)
            if record is not None:
                session.expunge(record)
            return record

    return read


def _today() -> datetime:
    return datetime.now(load_policy().zone)


def replay_on(
    settings: Settings, conversations: Sequence[Conversation], rasa_url: str
) -> list[ConversationRun]:
    """Replays on a running stack whose app database `settings` names."""
    return asyncio.run(
        replay(
            conversations,
            rasa_url=rasa_url,
            token=settings.rasa_token,
            today=_today().date(),
            records=_record_reader(settings.database_url),
        )
    )


def run_conversation_eval(
    settings: Settings,
    split: Split,
    *,
    url: str = "",
    every: int = 1,
    root: Path = SET_DIR,
) -> tuple[Summary, BenchReport]:
    """Replays a split (or every `every`-th conversation of it) and writes the report."""
    conversations = subset(load_split(split, root), every)
    if url:
        runs = replay_on(settings, conversations, url.rstrip("/"))
    else:
        with tempfile.TemporaryDirectory(prefix="kefu-eval-") as scratch:
            model, _ = ensure_model(settings)
            run = scratch_settings(settings, Path(scratch))
            upgrade(run.database_url)
            seed_demo_orders(make_engine(run.database_url))
            ensure_index(run)
            with ServiceGroup(kefu_services(run, model), run):
                runs = replay_on(run, conversations, run.rasa_url)
    summary = summarise(split, runs)
    name = f"conversations-{split}" + (f"-every{every}" if every > 1 else "")
    report = BenchReport(name, summary.to_dict(), settings.var_dir / "bench" / f"{name}.json")
    report.write()
    return summary, report
