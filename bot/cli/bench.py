"""The `kefu bench` commands: speed and quality on public datasets and under load.

Each prints a table and writes JSON under var/bench/. The quality of this project's own data
is measured by `kefu eval` instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from bot.core.nlu_runs import DEFAULT_CONFIG, NluBenchError, default_log_path, run_nlu_bench
from bot.core.settings import get_settings

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def bench() -> None:
    """Speed, load and public datasets: a table, and JSON under var/bench/.

    The quality on this project's own data: `kefu eval`.
    """


@bench.command("chat")
@click.option("--messages", default=200, show_default=True, help="Sequential messages, each bot.")
@click.option("--conversations", default=20, show_default=True, help="Concurrent conversations.")
@click.option("--per-conversation", default=10, show_default=True, help="Messages each.")
@click.option(
    "--rounds", default=3, show_default=True, help="Concurrent rounds, Kefu and bare in turn."
)
@click.option(
    "--long-turns", default=120, show_default=True, help="Turns of the long conversation (>= 120)."
)
@click.option("--url", default="", help="A running Kefu Rasa (default: start a fresh stack).")
@click.option(
    "--train-time/--no-train-time", default=False, help="Also time a cold training (fresh stack)."
)
@click.option("--soak", is_flag=True, help="Also soak Kefu: many slow conversations for minutes.")
@click.option("--soak-conversations", default=200, show_default=True, help="Soak customers.")
@click.option("--soak-seconds", default=300.0, show_default=True, help="Soak duration.")
@click.option(
    "--soak-pause",
    default=10.0,
    show_default=True,
    help="Seconds a soak customer waits between messages (+-50 %).",
)
@click.option(
    "--instances",
    default=1,
    show_default=True,
    help="Above 1: throughput through HAProxy with 1, then this many Rasa instances.",
)
@click.option(
    "--profile",
    "py_spy",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="py-spy binary: profile the concurrent phase (var/bench/profile/).",
)
def bench_chat(
    messages: int,
    conversations: int,
    per_conversation: int,
    rounds: int,
    long_turns: int,
    url: str,
    train_time: bool,
    soak: bool,
    soak_conversations: int,
    soak_seconds: float,
    soak_pause: float,
    instances: int,
    py_spy: Path | None,
) -> None:
    """Kefu next to a bare `rasa init` bot: latency, throughput, long conversations, ratios."""
    from bot.bench.chat import Plan, run_chat_benchmark

    if long_turns < 120:
        raise click.BadParameter(
            "at least 120 (turns 101-120 are compared)", param_hint="--long-turns"
        )
    plan = Plan(
        messages=messages,
        conversations=conversations,
        each=per_conversation,
        rounds=rounds,
        long_turns=long_turns,
        soak_conversations=soak_conversations if soak else 0,
        soak_seconds=soak_seconds,
        soak_pause=soak_pause,
        instances=instances,
        py_spy=py_spy,
    )
    report = run_chat_benchmark(get_settings(), plan, url, train_time)
    click.echo(report.table())
    click.echo(f"Wrote {report.path}")


@bench.command("handoff")
@click.option("--handoffs", default=10, show_default=True, help="Concurrent handoffs.")
@click.option(
    "--messages",
    default=200,
    show_default=True,
    help="Messages in all, split evenly: customer -> desk and agent -> customer alternate.",
)
@click.option("--timeout", default=10.0, show_default=True, help="Seconds each message may take.")
@click.option(
    "--pause",
    default=0.0,
    show_default=True,
    help="Seconds each conversation waits between its messages (0: back to back).",
)
@click.option("--web-url", default="", help="A running web service (default: a fresh stack).")
@click.option("--rasa-url", default="", help="The running stack's Rasa (with --web-url).")
def bench_handoff(
    handoffs: int, messages: int, timeout: float, pause: float, web_url: str, rasa_url: str
) -> None:
    """Handoff latency: customer -> agent console and agent -> customer web chat."""
    from bot.bench.handoff import run_handoff_benchmark

    if bool(web_url) != bool(rasa_url):
        raise click.UsageError("Give both --web-url and --rasa-url, or neither.")
    report = run_handoff_benchmark(
        get_settings(), handoffs, messages, timeout, web_url, rasa_url, pause
    )
    click.echo(report.table())
    click.echo(f"Wrote {report.path}")


@bench.command("channels")
@click.option("--seconds", default=60.0, show_default=True, help="WeChat phase (0: skip it).")
@click.option("--users", default=20, show_default=True, help="Concurrent WeChat users.")
@click.option(
    "--pause",
    default=3.0,
    show_default=True,
    help="Seconds a WeChat user waits after each answer before the next message.",
)
@click.option(
    "--ramp",
    default=5.0,
    show_default=True,
    help="Users and chats start evenly over this many seconds (0: all at once).",
)
@click.option(
    "--telegram-seconds",
    type=float,
    default=None,
    help="Telegram phase (0: skip it)  [default: --seconds]",
)
@click.option("--telegram-chats", default=20, show_default=True, help="Concurrent chats.")
def bench_channels(
    seconds: float,
    users: int,
    pause: float,
    ramp: float,
    telegram_seconds: float | None,
    telegram_chats: int,
) -> None:
    """WeChat and Telegram channels under load, against fake platform APIs."""
    from bot.bench.channels import run_channels_benchmark

    report = run_channels_benchmark(
        get_settings(),
        seconds,
        users,
        seconds if telegram_seconds is None else telegram_seconds,
        telegram_chats,
        pause,
        ramp,
    )
    click.echo(report.table())
    click.echo(f"Wrote {report.path}")


@bench.command("followups")
@click.option("--tickets", default=100_000, show_default=True, help="Open tickets to seed.")
@click.option(
    "--postgres-url",
    envvar="KEFU_BENCH_POSTGRES_URL",
    default="",
    help="Also measure on this (empty) PostgreSQL database  [env KEFU_BENCH_POSTGRES_URL]",
)
@click.option("--per-hour", default=6.0, show_default=True, help="Simulated tickets per hour.")
@click.option("--agents", default=2, show_default=True, help="Simulated agents.")
def bench_followups(tickets: int, postgres_url: str, per_hour: float, agents: int) -> None:
    """The scheduler's due scan over open tickets, a full pass, delivery; an SLA simulation."""
    from bot.bench.followups import run_followups_benchmark

    report = run_followups_benchmark(get_settings(), tickets, postgres_url, per_hour, agents)
    click.echo(report.table())
    click.echo(f"Wrote {report.path}")


@bench.command("supervision")
@click.option(
    "--day-conversations", default=10_000, show_default=True, help="Conversations of the day."
)
@click.option(
    "--month-conversations",
    default=100_000,
    show_default=True,
    help="Conversations of the month (SQLite and PostgreSQL).",
)
@click.option("--days", default=30, show_default=True, help="Days of the month.")
@click.option(
    "--postgres-url",
    envvar="KEFU_BENCH_POSTGRES_URL",
    default="",
    help="An empty PostgreSQL database to use instead of a throwaway cluster  "
    "[env KEFU_BENCH_POSTGRES_URL]",
)
@click.option(
    "--postgres/--no-postgres",
    default=True,
    show_default=True,
    help="Measure PostgreSQL too (a throwaway cluster when initdb and pg_ctl are installed).",
)
def bench_supervision(
    day_conversations: int, month_conversations: int, days: int, postgres_url: str, postgres: bool
) -> None:
    """QA scoring and the daily report of a generated day; the dashboard's queries over a month."""
    from bot.bench.supervision import run_supervision_benchmark

    report = run_supervision_benchmark(
        get_settings(), day_conversations, month_conversations, days, postgres_url, postgres
    )
    click.echo(report.table())
    click.echo(f"Wrote {report.path}")


@bench.command("kb")
@click.option(
    "--datasets",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="The shared public datasets (default ../shared/datasets).",
)
def bench_kb(datasets: Path | None) -> None:
    """Retrieval quality and speed: demo KB, BANKING77, CLINC150, a 10,000-entry KB."""
    from bot.bench.kb import run_kb_benchmark

    report = run_kb_benchmark(get_settings(), datasets)
    click.echo(report.table())
    click.echo(f"Wrote {report.path}")


@bench.command("nlu")
@click.option(
    "--datasets",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="The shared public datasets (default ../shared/datasets).",
)
@click.option(
    "--only",
    default=None,
    help="Comma-separated subset of clinc150,banking77,smp2019,cais,demo (default: all).",
)
def bench_nlu(datasets: Path | None, only: str | None) -> None:
    """Kefu's NLU trained on CLINC150, BANKING77, SMP2019, CAIS and its own data.

    Each run is shown beside the published anchors and a plain-embedding floor. Takes a while:
    progress goes to stderr, Rasa's messages to var/logs/nlu-bench-*.log.
    """
    from bot.bench.nlu import parse_only, run_nlu_benchmark

    try:
        names = parse_only(only)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--only") from error
    report = run_nlu_benchmark(get_settings(), datasets, names)
    click.echo(report.table())
    click.echo(f"Wrote {report.path}")
    if any("error" in block for block in report.results["datasets"].values()):
        raise click.ClickException("a run failed (see above)")


@bench.command("nlu-split")
@click.option("--train", "train", type=_FILE, required=True, help="JSONL, CLINC150 JSON or CSV.")
@click.option("--test", "test", type=_FILE, required=True, help="JSONL, CLINC150 JSON or CSV.")
@click.option(
    "--config", type=_FILE, default=DEFAULT_CONFIG, show_default=True, help="Rasa config."
)
@click.option("--oos-label", default="oos", show_default=True, help="Out-of-scope intent.")
@click.option(
    "--log",
    "log_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Rasa's messages  [default: var/logs/nlu-bench.log]",
)
def bench_nlu_split(
    train: Path, test: Path, config: Path, oos_label: str, log_path: Path | None
) -> None:
    """Train the real pipeline on TRAIN, score it on TEST, print one JSON object.

    Formats: JSONL lines with `text` and `intent` (or `label`); CLINC150 JSON (a test file
    contributes `test` + `oos_test`, or `val` + `oos_val`); CSV with `text` and `category`
    (or `intent` / `label`). Values are fractions; times in seconds and milliseconds.
    """
    settings = get_settings()
    log_path = log_path or default_log_path(settings)
    click.echo(f"Training and scoring (Rasa's messages: {log_path}) ...", err=True)
    try:
        result = run_nlu_bench(settings, train, test, config, oos_label, log_path)
    except NluBenchError as error:
        click.echo(str(error), err=True)
        raise SystemExit(error.exit_code) from error
    click.echo(json.dumps(result, ensure_ascii=False))
