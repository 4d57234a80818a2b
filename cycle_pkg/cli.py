"""The ``cycle`` command; every workflow rule calls one of its subcommands."""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from .data import commands as data_commands
from .errors import ConfigError, report
from .eval import registry
from .jobs import attempts, forkserver, layout, lock
from .reproduction.grid import run_name
from .settings.checks import check_run_name
from .settings.config import Config, load_config
from .settings.typed_yaml import parse_override

if TYPE_CHECKING:
    from .eval.checkpoints import Backbone


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


def _add_log_argument(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    parser.add_argument("--log", help=f"log file (default: {default})" if default else "also log to this file")


def _add_tag_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tag", dest="tags", action="append", default=[], metavar="KEY=VALUE", help="an MLflow tag")


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"--tag {text!r}: expected KEY=VALUE")
    return key, value


def _config(args: argparse.Namespace) -> Config:
    return load_config(args.params, args.scale, args.overrides)


def setup_logging(log_file: str | None) -> None:
    """INFO to stderr and ``log_file``; under torchrun only rank 0 writes the file."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file and int(os.environ.get("RANK", "0")) == 0:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(level=logging.INFO, format=attempts.FORMAT, handlers=handlers, force=True)
    for noisy in ("alembic", "mlflow", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def cmd_config(args: argparse.Namespace) -> None:
    if args.schema:
        from .settings.config import json_schema

        print(yaml.safe_dump(json_schema(), sort_keys=False), end="")
        return
    print(yaml.safe_dump(_config(args).to_dict(), sort_keys=False), end="")


def cmd_table(args: argparse.Namespace) -> None:
    from .reproduction.figures import ablation_figure, knn_figure
    from .reproduction.grid import Grid
    from .reproduction.paper import paper_tables
    from .reproduction.tables import write_table

    setup_logging(args.log)
    config = _config(args)
    tables = paper_tables()
    if args.table not in tables:
        raise ConfigError(f"unknown table {args.table!r}: expected one of {', '.join(tables)}")
    table, grid = tables[args.table], Grid(args.params, config.scale)
    if args.figure:
        if not table.curve:
            raise ConfigError(f"{args.table} is not an ablation table: it has no figure")
        ablation_figure(table, grid, config, args.figure)
    else:
        write_table(table, grid, config, args.out_dir or layout.tables_dir(config.results))
        if args.knn_figure:
            knn_figure(table, grid, config, args.knn_figure)


def cmd_mlflow_init(args: argparse.Namespace) -> None:
    """Create the tracking store and the experiment once, before the jobs that log to it fan out."""
    from .jobs.atomic import write_json_atomic
    from .jobs.mlflow_job import MlflowRun, tracking_uri

    setup_logging(args.log)
    config = _config(args)
    mlflow_run = MlflowRun(config.mlflow)
    record = {"tracking_uri": tracking_uri(config.mlflow), "experiment": config.mlflow.experiment}
    if mlflow_run.active:
        record["experiment_id"] = mlflow_run.experiment_id
    write_json_atomic(args.output, record)


def cmd_world(args: argparse.Namespace) -> None:
    from .data.synthetic import generate_world

    setup_logging(args.log)
    config = _config(args)
    root = generate_world(config.world, force=args.force, jobs=args.jobs)
    logging.getLogger("cycle.world").info("synthetic world ready in %s", root)


def cmd_pretrain(args: argparse.Namespace) -> None:
    from .pretrain.loop import pretrain

    given = None if args.run is None else check_run_name(args.run, "--run")
    config = _config(args)
    reference = load_config(args.params, args.scale) if Path(args.params).is_file() else Config()
    run = given or check_run_name(run_name(config, reference), "the derived run name")
    run_dir = Path(args.run_dir or layout.run_dir(config.results, run))
    setup_logging(args.log or str(layout.pretrain_log(run)))
    if any(parse_override(text)[0] == ["data", "r2v2_shards"] for text in args.overrides):
        data_commands.warn_unread_shards(config)
    tags = dict(_key_value(t) for t in args.tags)
    with lock.hold(run_dir):
        summary = pretrain(config, run, run_dir, extra_tags=tags, restart_on_change=args.restart_on_change)
    logging.getLogger("cycle.pretrain").info(
        "%s: %d steps, %.1f pairs/s, backbone %s",
        run,
        summary["steps"],
        summary["pairs_per_second"],
        summary["backbone"],
    )


def cmd_eval(args: argparse.Namespace) -> None:
    from .eval import runner
    from .eval.checkpoints import load_backbone

    given = None if args.run is None else check_run_name(args.run, "--run")
    config = _config(args)
    arch = args.backbone or (config.model.backbone if args.checkpoint == "random" else None)
    backbone = load_backbone(args.checkpoint, args.format, arch, seed=config.pretrain.seed)
    check_backbone_override(args.overrides, backbone)
    run = given or check_run_name(runner.default_run_name(backbone), f"{args.checkpoint}: the run name taken from it")
    evaluation = registry.evaluation_of(args.task, config)
    setup_logging(args.log or str(layout.eval_log(evaluation.name, run)))
    output = Path(args.output or layout.metrics_path(config.results, evaluation.name, run))
    tags = dict(_key_value(t) for t in args.tags)
    with lock.hold(layout.job_folder(output)):  # a fine-tuning's state is in it
        evaluate = evaluation.job(config, output)
        runner.run_evaluation(evaluation, config, backbone, run, output, evaluate, extra_tags=tags)


def check_backbone_override(overrides: list[str], backbone: Backbone) -> None:
    """An evaluation takes its architecture from the checkpoint: a ``--set model.backbone`` that
    contradicts it would be silently ignored, so it is an error (``--backbone`` states an expectation)."""
    for text in overrides:
        keys, value = parse_override(text)
        if keys == ["model", "backbone"] and backbone.format != "random" and value != backbone.arch:
            raise ConfigError(
                f"--set {text}: {backbone.source} holds a {backbone.arch} backbone, and an evaluation uses the "
                "checkpoint's architecture (model.backbone only chooses that of --checkpoint random). Drop the "
                "--set, or pass --backbone to check the checkpoint's architecture"
            )


def cmd_data(args: argparse.Namespace) -> None:
    """Prepare or check a dataset; its summary is printed and, with --report, written as JSON
    (the workflow's data rules declare these reports as their outputs)."""
    from .jobs.atomic import write_json_atomic

    setup_logging(args.log or str(layout.data_log(args.dataset)))
    options = list(inspect.signature(args.prepare).parameters)[1:]
    summary = args.prepare(_config(args), **{name: getattr(args, name) for name in options})
    if summary is not None:
        print(json.dumps(summary, indent=2))
        if args.report:
            write_json_atomic(args.report, summary)


def _add_data_commands(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser("data", help="obtain and prepare a dataset (see `cycle data -h`)")
    datasets = data.add_subparsers(dest="dataset", required=True)

    def add(name: str, function: Callable[..., dict | None], help: str) -> argparse.ArgumentParser:
        """``cycle data <name>``, which calls ``function`` of cycle_pkg.data.commands: the options
        added to the parser it returns are the function's parameters after the config, by name."""
        parser = datasets.add_parser(name, help=help)
        _add_config_arguments(parser)
        _add_log_argument(parser, str(layout.data_log(name)))
        if name != "r2v2":
            parser.add_argument("--report", help="also write the summary to this JSON file")
        parser.set_defaults(func=cmd_data, prepare=function)
        return parser

    r2v2 = add(
        "r2v2", data_commands.data_r2v2, "re-create R2V2, or link a local copy or download a mirror's, and survey it"
    )
    r2v2.add_argument(
        "--recreate",
        action="store_true",
        help="re-create R2V2 from its published id lists and YouTube (as data.r2v2_source: recreate does)",
    )
    r2v2.add_argument("--from", dest="source", help="a local copy in the R2V2 layout, linked as data.r2v2_root")
    r2v2.add_argument("--keep-archives", action="store_true", help="keep the downloaded archives")
    r2v2.add_argument("--report", help="write the coverage (re-created) or survey (a copy) to this JSON file")
    shards = add("r2v2-shards", data_commands.data_r2v2_shards, "shard R2V2 (or R2V2-S with data.r2v2_subset=true)")
    shards.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)")
    ucf101 = add("ucf101", data_commands.data_ucf101, "download and unpack UCF101 (videos .rar + split files .zip)")
    ucf101.add_argument("--keep-archives", action="store_true", help="keep the downloaded archives")
    add("otb", data_commands.data_otb, "download the missing OTB-2015 sequences and check all 100 targets")
    got10k = add("got10k", data_commands.data_got10k, "check a local GOT-10k copy (it needs registration to download)")
    got10k.add_argument("--subset", action="append", choices=("train", "val", "test"), help="default: all three")
    add("imagenet", data_commands.data_imagenet, "check a local ImageNet copy in ImageFolder layout")
    val = add("imagenet-val", data_commands.data_imagenet_val, "sort the flat ILSVRC2012 val folder into class folders")
    val.add_argument("--labels", required=True, help="devkit (folder or .tar.gz), LOC_val_solution.csv or labels list")
    val.add_argument("--flat", help="the flat folder (default: <data.imagenet_root>/val)")
    val.add_argument("--out", help="where the class folders go (default: <data.imagenet_root>/val, replacing it)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cycle", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    show = commands.add_parser("config", help="print the effective configuration")
    _add_config_arguments(show)
    show.add_argument("--schema", action="store_true", help="print the JSON schema of params.yaml instead")
    show.set_defaults(func=cmd_config)

    table = commands.add_parser("table", help="write one of the paper's tables (or its figure) from the metrics")
    _add_config_arguments(table)
    table.add_argument("table", help="table1 ... table11")
    table.add_argument(
        "--out-dir", help=f"where tableN.md and tableN.csv go (default: {layout.tables_dir('<results>')})"
    )
    table.add_argument("--figure", help="write the ablation figure (tables 5-8) to this PNG instead")
    table.add_argument("--knn-figure", help="also draw the kNN monitor curves of the table's runs to this PNG")
    _add_log_argument(table)
    table.set_defaults(func=cmd_table)

    init = commands.add_parser("mlflow-init", help="create the MLflow store and experiment before a grid fans out")
    _add_config_arguments(init)
    init.add_argument("--output", required=True, help="a JSON record of the tracking URI and experiment")
    _add_log_argument(init)
    init.set_defaults(func=cmd_mlflow_init)

    world = commands.add_parser("world", help="write the synthetic world's datasets")
    _add_config_arguments(world)
    world.add_argument("--force", action="store_true", help="rewrite even if an identical world exists")
    world.add_argument("--jobs", type=int, default=min(os.cpu_count() or 1, 4), help="processes (default: cores, <= 4)")
    _add_log_argument(world)
    world.set_defaults(func=cmd_world)

    train = commands.add_parser("pretrain", help="pretrain (or resume) one run; torchrun-aware")
    _add_config_arguments(train)
    train.add_argument(
        "--run", help="run name: letters, digits, -_. (default: derived from how the settings differ from the scale's)"
    )
    train.add_argument("--run-dir", help=f"run folder (default: {layout.run_dir('<results>', '<run>')})")
    _add_log_argument(train, str(layout.pretrain_log("<run>")))
    _add_tag_argument(train)
    train.add_argument(
        "--restart-on-change",
        action="store_true",
        help="if the run folder holds other settings, set it aside and start afresh (default: error)",
    )
    train.set_defaults(func=cmd_pretrain)

    evaluate = commands.add_parser("eval", help="evaluate a checkpoint: frozen features, or fine-tuned (Table 9)")
    tasks = evaluate.add_subparsers(dest="task", required=True)
    for task, description in registry.tasks().items():
        job = tasks.add_parser(task, help=description)
        _add_config_arguments(job)
        job.add_argument(
            "--checkpoint", required=True, help="checkpoint file, or 'random' for a seeded random initialisation"
        )
        job.add_argument("--format", choices=("auto", "cycle", "moco", "simsiam", "torchvision"), default="auto")
        job.add_argument(
            "--backbone", choices=("resnet18", "resnet50"), help="the expected architecture (random: model.backbone)"
        )
        job.add_argument(
            "--run", help="run name: letters, digits, -_. (default: the pretraining run's, or the file's stem)"
        )
        job.add_argument(
            "--output", help=f"metrics file (default: {layout.metrics_path('<results>', '<evaluation>', '<run>')})"
        )
        _add_log_argument(job, str(layout.eval_log("<evaluation>", "<run>")))
        _add_tag_argument(job)
        job.set_defaults(func=cmd_eval)
    _add_data_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The `cycle` command. In a local workflow run (CYCLE_FORKSERVER set) a child of the run's fork server
    runs it (cycle_pkg/jobs/forkserver.py); under torchrun each worker stays its agent's own process."""
    server = os.environ.get(forkserver.ENV)
    if argv is None and server and "TORCHELASTIC_RUN_ID" not in os.environ:
        status = forkserver.call(server, sys.argv)
        if status is not None:
            return status
    return run(argv)


def run(argv: list[str] | None = None) -> int:
    """The command itself, in this process; its exit status."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except Exception as err:
        reported = report(err)
        if reported is None:
            raise
        message, status = reported
        print(f"cycle: {message}", file=sys.stderr)
        return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
