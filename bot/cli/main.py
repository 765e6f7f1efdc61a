"""The `kefu` command: run the demo, train, manage the database, benchmark."""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click

from bot.cli.agents import agents
from bot.cli.channels import channel_status, channels
from bot.cli.editor import EDITOR_COMMANDS
from bot.cli.handoffs import customers, handoffs
from bot.cli.kb import kb
from bot.cli.nlu import nlu
from bot.cli.review import review
from bot.cli.sheet import sheet
from bot.cli.telegram import telegram
from bot.cli.tickets import tickets
from bot.cli.validate import validate
from bot.core.settings import get_settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Kefu (客服): customer-service bot with human handoff."""


main.add_command(kb)
main.add_command(tickets)
main.add_command(agents)
main.add_command(handoffs)
main.add_command(customers)
main.add_command(channels)
main.add_command(telegram)
main.add_command(nlu)
main.add_command(validate)
main.add_command(sheet)
main.add_command(review)
for command in EDITOR_COMMANDS:
    main.add_command(command)


@main.command()
def train() -> None:
    """Train the Rasa model if config, domain or data changed.

    Broken YAML and stories or rules naming unknown intents or actions are refused first,
    with their file and line (the model in service stays).
    """
    from bot.core.training import TrainingError, ensure_model
    from bot.editor.validation import structure_findings

    settings = get_settings()
    errors = [f for f in structure_findings(settings) if f.severity == "error"]
    if errors:
        for finding in errors:
            click.echo(finding.format(), err=True)
        raise click.ClickException(
            f"{len(errors)} error(s) in the data: nothing was trained "
            "(`make validate` runs every check)"
        )
    try:
        model, trained = ensure_model(settings)
    except TrainingError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"{'Trained' if trained else 'Up to date'}: {model}")


@main.group()
def db() -> None:
    """The app database."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate the app database to the newest schema."""
    from bot.core.db import upgrade

    upgrade(get_settings().database_url)
    click.echo("Database is up to date.")


@db.command("seed")
def db_seed() -> None:
    """Load the demo shop's orders (KF202611200001 ... KF202611200020) and the demo agent."""
    from bot.accounts import seed_demo_agent, seed_demo_editor
    from bot.core.db import make_engine, upgrade
    from bot.service.orders import seed_demo_orders

    settings = get_settings()
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    count = seed_demo_orders(engine)
    click.echo(f"Seeded {count} demo orders.")
    if settings.demo_agent_password:
        for seed in (seed_demo_agent, seed_demo_editor):
            username = seed(engine, settings)
            click.echo(f"Seeded desk login {username} / {settings.demo_agent_password}.")


@main.command()
def demo() -> None:
    """Migrate, seed, train if needed, then run Rasa, actions and the web chat until Ctrl-C."""
    from bot.accounts import seed_demo_agent, seed_demo_editor
    from bot.core.db import make_engine, upgrade
    from bot.core.processes import ServiceError, ServiceGroup, kefu_services
    from bot.core.training import ensure_model
    from bot.knowledge.index import ensure_index
    from bot.service.orders import seed_demo_orders

    settings = get_settings()
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    seed_demo_orders(engine)
    desk_login = editor_login = ""
    if settings.demo_agent_password:
        desk_login = (
            f"  (login {seed_demo_agent(engine, settings)} / {settings.demo_agent_password})"
        )
        editor_login = (
            f"  (login {seed_demo_editor(engine, settings)} / {settings.demo_agent_password})"
        )
    folder, built = ensure_index(settings)
    click.echo(f"Knowledge base: {'built' if built else 'using'} {folder.name}")
    click.echo("Checking the model (training takes a few minutes the first time)...")
    model, trained = ensure_model(settings)
    click.echo(f"{'Trained' if trained else 'Using'} {model.name}")
    group = ServiceGroup(kefu_services(settings, model), settings)
    # Ctrl-C and SIGTERM both stop every child, even when started with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    click.echo("Starting Rasa, the action server and the web chat...")
    try:
        group.start()
        click.echo(
            "\nKefu is running:\n"
            f"  Web chat        {settings.web_url}\n"
            f"  Agent desk      http://{settings.host}:{settings.web_port}/desk{desk_login}\n"
            f"  Review queue    http://{settings.host}:{settings.web_port}/desk/review"
            f"{editor_login}\n"
            f"  Rasa REST       {settings.rasa_url}/webhooks/rest/webhook\n"
            f"  Rasa HTTP API   {settings.rasa_url} (token: KEFU_RASA_TOKEN)\n"
            f"  Action server   http://{settings.host}:{settings.actions_port}/health\n"
            f"  Logs            {settings.var_dir / 'logs'}"
        )
        for name, enabled, detail in channel_status(settings):
            webhook = f"{settings.rasa_url}/webhooks/{name}/webhook" if enabled else detail
            click.echo(f"  {name.capitalize():<15} {'on: ' if enabled else 'off: '}{webhook}")
        click.echo("Press Ctrl-C to stop.")
        while True:
            group.check_running()
            time.sleep(1)
    except ServiceError as error:
        raise click.ClickException(str(error)) from error
    except KeyboardInterrupt:
        click.echo("\nStopping...")
    finally:
        group.stop()


@kb.command("report")
@click.option("--days", type=int, default=None, help="Only the last N days.")
@click.option("--misses", type=int, default=10, show_default=True, help="Latest misses to list.")
def kb_report(days: int | None, misses: int) -> None:
    """Self-service rate and the latest questions the bot could not answer (JSON)."""
    import json
    from datetime import datetime, timedelta

    from bot.core.db import make_engine, upgrade
    from bot.knowledge.query_log import KbLog

    settings = get_settings()
    upgrade(settings.database_url)
    log = KbLog(make_engine(settings.database_url))
    since = datetime.utcnow() - timedelta(days=days) if days else None
    report = log.self_service(since).as_dict()
    report["latest_misses"] = [
        {
            "query": miss.query,
            "outcome": miss.outcome.value,
            "feedback": miss.feedback.value if miss.feedback else None,
            "top_hits": miss.top_hits,
            "channel": miss.channel,
            "at": miss.created_at.isoformat(timespec="seconds"),
        }
        for miss in log.misses(misses)
    ]
    click.echo(json.dumps(report, ensure_ascii=False, indent=2))


@main.group()
def service() -> None:
    """The service plan's data files: the policy (tiers, complaints) and the guided flows."""


@service.command("check")
@click.option("--policy", "policy_path", type=click.Path(path_type=Path), default=None)
@click.option("--flows", "flows_path", type=click.Path(path_type=Path), default=None)
@click.option("--handoff", "handoff_path", type=click.Path(path_type=Path), default=None)
@click.option("--canned", "canned_path", type=click.Path(path_type=Path), default=None)
@click.option(
    "--understanding", "understanding_path", type=click.Path(path_type=Path), default=None
)
def service_check(
    policy_path: Path | None,
    flows_path: Path | None,
    handoff_path: Path | None,
    canned_path: Path | None,
    understanding_path: Path | None,
) -> None:
    """Validates the service plan files in data/service/, naming each mistake.

    policy.yml, flows.yml, handoff.yml, canned_replies.yml and understanding.yml (the
    examples the message readers learn from).
    """
    from bot.flows.definitions import FlowError, load_flows
    from bot.handoff.canned import CannedRepliesError, load_canned_replies
    from bot.handoff.policy import HandoffPolicyError, load_handoff_policy
    from bot.service.policy import PolicyError, load_policy
    from bot.understanding import UnderstandingError, load_examples

    failed = False
    checks: list[tuple[str, Callable[[], object], type[Exception]]] = [
        ("policy", lambda: load_policy(policy_path), PolicyError),
        ("flows", lambda: load_flows(flows_path), FlowError),
        ("handoff", lambda: load_handoff_policy(handoff_path), HandoffPolicyError),
        ("canned replies", lambda: load_canned_replies(canned_path), CannedRepliesError),
        ("reader examples", lambda: load_examples(understanding_path), UnderstandingError),
    ]
    for name, load, error_type in checks:
        try:
            load()
        except error_type as error:
            click.echo(str(error), err=True)
            failed = True
        else:
            click.echo(f"service {name}: OK")
    if failed:
        raise SystemExit(1)


@main.group()
def bench() -> None:
    """Benchmarks (print a table, write JSON under var/bench/)."""


@bench.command("chat")
@click.option("--messages", default=200, show_default=True, help="Sequential messages.")
@click.option("--conversations", default=20, show_default=True, help="Concurrent conversations.")
@click.option("--per-conversation", default=10, show_default=True, help="Messages each.")
@click.option("--url", default="", help="A running Rasa (default: start a fresh stack).")
@click.option(
    "--train-time/--no-train-time", default=True, help="Also time a cold training (fresh stack)."
)
def bench_chat(
    messages: int, conversations: int, per_conversation: int, url: str, train_time: bool
) -> None:
    """Reply latency over REST and throughput with concurrent conversations."""
    from bot.bench.chat import run_chat_benchmark

    report = run_chat_benchmark(
        get_settings(), messages, conversations, per_conversation, url, train_time
    )
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


@main.group("eval", invoke_without_command=True)
@click.option("--folds", default=5, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None)
@click.pass_context
def evaluate(context: click.Context, folds: int, out: Path | None) -> None:
    """Cross-validate the NLU on the demo data (no subcommand), or replay conversations."""
    if context.invoked_subcommand is not None:
        return
    from bot.editor.cross_validation import cross_validate

    summary = cross_validate(get_settings(), folds, out)
    click.echo(summary.table())
    if summary.macro_f1 < 0.90:
        raise click.ClickException(f"macro-F1 {summary.macro_f1:.3f} is below 0.90")


@evaluate.command("readers")
@click.option("--folds", default=5, show_default=True, type=click.IntRange(min=2))
def evaluate_readers(folds: int) -> None:
    """Cross-validate the message readers on data/service/understanding.yml."""
    from bot.understanding import UnderstandingError, load_examples
    from bot.understanding.evaluation import cross_validate
    from knowledge_index import KnowledgeSettings, load_encoder

    try:
        examples = load_examples()
    except UnderstandingError as error:
        raise click.ClickException(str(error)) from None
    settings = KnowledgeSettings()
    scores = cross_validate(load_encoder(settings.model), examples, folds)
    report = {block.block: block.to_dict() for block in scores}
    path = get_settings().var_dir / "bench" / "readers.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for block in scores:
        labels = ", ".join(
            f"{label} P {100 * block.precision[label]:.0f}% R {100 * block.recall[label]:.0f}%"
            for label in block.precision
        )
        click.echo(
            f"{block.block:<10} {block.examples:>4} examples  accuracy "
            f"{100 * block.accuracy:.1f} %  ({labels})"
        )
    click.echo(f"Wrote {path}")


@evaluate.command("conversations")
@click.option("--split", type=click.Choice(["dev", "test"]), default="test", show_default=True)
@click.option("--url", default="", help="A running Rasa (default: start a fresh stack).")
@click.option(
    "--every",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Replay every N-th conversation only (a fixed, faster sample).",
)
@click.option(
    "--show",
    type=click.Choice(["none", "failed", "wrong"]),
    default="none",
    show_default=True,
    help="Also print the turns that were not acceptable.",
)
@click.option("--fail-on-wrong", is_flag=True, help="Exit 1 when any turn is wrong-confident.")
def evaluate_conversations(
    split: str, url: str, every: int, show: str, fail_on_wrong: bool
) -> None:
    """Replay the customer conversation set live and judge every turn (table by category)."""
    from bot.bench.conversations import run_conversation_eval
    from bot.conversation_eval.dataset import ConversationSetError
    from bot.conversation_eval.judge import Verdict
    from bot.conversation_eval.report import table

    try:
        summary, report = run_conversation_eval(
            get_settings(), "test" if split == "test" else "dev", url=url, every=every
        )
    except ConversationSetError as error:
        raise click.ClickException(str(error)) from None
    if show != "none":
        for turn in summary.turns:
            if turn.verdict is Verdict.acceptable:
                continue
            if show == "wrong" and turn.verdict is not Verdict.wrong_confident:
                continue
            click.echo(
                f"[{turn.verdict.value}] {turn.conversation}#{turn.number} {turn.say!r}"
                f" intent={turn.intent}:{turn.confidence:.2f}\n"
                f"    expected {list(turn.expected)}\n    observed {list(turn.observed)}\n"
                f"    why: {'; '.join(turn.reasons)}\n    bot: {' | '.join(turn.texts)[:300]!r}"
            )
    click.echo(table(summary))
    click.echo(f"Wrote {report.path}")
    if fail_on_wrong and summary.results["total"]["wrong_confident"]:
        raise click.ClickException(
            f"{summary.results['total']['wrong_confident']} wrong-confident turn(s)"
        )


if __name__ == "__main__":
    main()
