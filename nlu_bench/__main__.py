"""`python -m nlu_bench --train PATH --test PATH [--config PATH] [--oos-label oos]` (Rasa runtime).

Prints one JSON object on stdout; Rasa's own messages go to stderr. `kefu nlu bench` runs this.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from nlu_bench.datasets import DatasetError, read_examples

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config.yml"


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="nlu_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, required=True, help="JSONL, CLINC150 JSON or CSV")
    parser.add_argument("--test", type=Path, required=True, help="JSONL, CLINC150 JSON or CSV")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="Rasa config.yml")
    parser.add_argument("--oos-label", default="oos", help="the out-of-scope intent's name")
    parser.add_argument(
        "--predictions", type=Path, help="also write every test message's prediction (JSONL)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Reads both files (clear errors, exit 2), trains, scores, prints JSON."""
    arguments = parse_arguments(argv)
    try:
        train = read_examples(arguments.train, "train")
        test = read_examples(arguments.test, "test")
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    config = arguments.config.resolve()  # before the chdir below
    if not config.is_file():
        print(f"error: {arguments.config}: no such config file", file=sys.stderr)
        return 2
    if len({intent for _, intent in train}) < 2:
        print(f"error: {arguments.train}: needs at least two intents", file=sys.stderr)
        return 2

    from rasa.shared.exceptions import RasaException

    from nlu_bench.runner import quiet_rasa, run

    os.chdir(PROJECT_ROOT)  # config.yml names data/jieba relative to the project

    # Rasa prints progress on stdout; keep stdout for the one JSON object.
    stdout, sys.stdout = sys.stdout, sys.stderr
    try:
        quiet_rasa()
        predictions = arguments.predictions.resolve() if arguments.predictions else None
        result = run(train, test, config, arguments.oos_label, predictions)
    except RasaException as error:  # an unreadable or invalid config
        print(f"error: {arguments.config}: {error}", file=sys.stderr)
        return 2
    finally:
        sys.stdout = stdout
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
