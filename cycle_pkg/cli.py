"""The ``cycle`` command; every workflow rule calls one of its subcommands."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import yaml

from .config import Config, load_config, run_name
from .errors import ConfigError, DatasetError, Preempted


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
    parser.add_argument("--scale", help="named scale of the parameter file (default: its 'scale' key)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set loss.lambda_cycle=0.3 (repeatable)",
    )


def _config(args: argparse.Namespace) -> Config:
    return load_config(args.params, args.scale, args.overrides)


def setup_logging(log_file: str | None) -> None:
    """INFO to stderr and ``log_file``; under torchrun only rank 0 writes the file."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file and int(os.environ.get("RANK", "0")) == 0:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers, force=True
    )
    for noisy in ("alembic", "mlflow", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def cmd_config(args: argparse.Namespace) -> None:
    print(yaml.safe_dump(_config(args).to_dict(), sort_keys=False), end="")


def cmd_world(args: argparse.Namespace) -> None:
    from .data.synthetic import generate_world

    setup_logging(args.log)
    config = _config(args)
    root = generate_world(config.world, force=args.force)
    logging.getLogger("cycle.world").info("synthetic world ready in %s", root)


def cmd_pretrain(args: argparse.Namespace) -> None:
    from .train import pretrain

    config = _config(args)
    reference = load_config(args.params, args.scale) if Path(args.params).is_file() else Config()
    run = args.run or run_name(config, reference)
    run_dir = Path(args.run_dir or Path(config.results) / "pretrain" / run)
    setup_logging(args.log or f"logs/pretrain/{run}.log")
    summary = pretrain(config, run, run_dir)
    logging.getLogger("cycle.pretrain").info(
        "%s: %d steps, %.1f pairs/s, checkpoint %s",
        run,
        summary["steps"],
        summary["pairs_per_second"],
        summary["checkpoint"],
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cycle", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    show = commands.add_parser("config", help="print the effective configuration")
    _add_config_arguments(show)
    show.set_defaults(func=cmd_config)

    world = commands.add_parser("world", help="write the synthetic world's datasets")
    _add_config_arguments(world)
    world.add_argument("--force", action="store_true", help="rewrite even if an identical world exists")
    world.add_argument("--log", help="also log to this file")
    world.set_defaults(func=cmd_world)

    train = commands.add_parser("pretrain", help="pretrain (or resume) one run; torchrun-aware")
    _add_config_arguments(train)
    train.add_argument("--run", help="run name (default: derived from how the settings differ from the scale's)")
    train.add_argument("--run-dir", help="run folder (default: <results>/pretrain/<run>)")
    train.add_argument("--log", help="log file (default: logs/pretrain/<run>.log)")
    train.set_defaults(func=cmd_pretrain)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ConfigError as err:
        print(f"cycle: configuration error: {err}", file=sys.stderr)
        return 2
    except DatasetError as err:
        print(f"cycle: data error: {err}", file=sys.stderr)
        return 2
    except Preempted as err:
        print(f"cycle: preempted: {err}", file=sys.stderr)
        return 143
    return 0


if __name__ == "__main__":
    sys.exit(main())
