"""The `kefu service` commands: check the service plan's data files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
    from bot.flows.loading import load_flows
    from bot.flows.schema import FlowError
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
