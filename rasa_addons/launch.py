"""`python -m rasa_addons.launch <rasa arguments>`: Rasa's CLI, API token from the environment.

`rasa run --auth-token SECRET` shows the token to anyone who can list processes (`ps`,
/proc/PID/cmdline) and to every log that records the command line. This launcher reads the
token from `KEFU_RASA_TOKEN` (or the file `KEFU_RASA_TOKEN_FILE` names), adds `--auth-token`
to the arguments inside this process (the kernel's copy of the command line stays as it was
started) and calls Rasa's CLI `main`. It also keeps HTTP client libraries from logging the
URLs they call (Telegram's API URLs carry the bot token) and masks secrets in every log line.

`kefu run rasa` / `make demo` run Rasa through it (bot/core/processes.py). It listens with
SO_REUSEPORT so that a deploy can start the next model's process on the same port first
(`rasa_addons.reuse_port`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["TOKEN_FILE_VARIABLE", "TOKEN_VARIABLE", "LaunchError", "main", "rasa_arguments"]

TOKEN_VARIABLE = "KEFU_RASA_TOKEN"  # noqa: S105 (a variable's name)
TOKEN_FILE_VARIABLE = "KEFU_RASA_TOKEN_FILE"  # noqa: S105 (a variable's name)
QUIET_LOGGERS = ("httpx", "httpcore", "telegram.request", "urllib3")
"""Libraries that log each URL they call at INFO/DEBUG; kept at WARNING."""


class LaunchError(RuntimeError):
    """The arguments or the environment do not allow a safe start."""


def token_from_environment(environ: Mapping[str, str]) -> str:
    """`KEFU_RASA_TOKEN`, else the first line of the file `KEFU_RASA_TOKEN_FILE` names, else ""."""
    token = environ.get(TOKEN_VARIABLE, "").strip()
    if token:
        return token
    path = environ.get(TOKEN_FILE_VARIABLE, "").strip()
    if not path:
        return ""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise LaunchError(f"{TOKEN_FILE_VARIABLE}={path} cannot be read: {error}") from error
    return lines[0].strip() if lines else ""


def rasa_arguments(argv: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """Rasa's CLI arguments: `argv` plus `--auth-token <token>` when Rasa serves its API.

    Raises:
        LaunchError: the token is on the command line, or `--enable-api` without a token
            (Rasa would answer its whole HTTP API to anyone).
    """
    arguments = list(argv)
    if any(arg == "--auth-token" or arg.startswith("--auth-token=") for arg in arguments):
        raise LaunchError(
            f"Do not pass --auth-token on the command line: set {TOKEN_VARIABLE} "
            f"(or {TOKEN_FILE_VARIABLE}) in the environment."
        )
    token = token_from_environment(environ)
    if "--enable-api" in arguments:
        if not token:
            raise LaunchError(
                f"--enable-api needs a token: set {TOKEN_VARIABLE} (or {TOKEN_FILE_VARIABLE})."
            )
        arguments += ["--auth-token", token]
    return arguments


def quiet_http_clients() -> None:
    """HTTP client libraries log at WARNING at most (their INFO lines carry full URLs)."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> None:
    """Runs Rasa's CLI with `argv` (default: this process's arguments) and the token added."""
    try:
        arguments = rasa_arguments(
            sys.argv[1:] if argv is None else argv, os.environ if environ is None else environ
        )
    except LaunchError as error:
        print(f"rasa_addons.launch: {error}", file=sys.stderr)
        raise SystemExit(2) from error
    quiet_http_clients()
    from rasa.__main__ import main as rasa_main

    from rasa_addons import resilience, reuse_port, turn_speed

    turn_speed.install()
    resilience.install()
    reuse_port.install()

    sys.argv = ["rasa", *arguments]
    rasa_main()


if __name__ == "__main__":
    main()
