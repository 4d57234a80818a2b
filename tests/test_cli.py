"""The `cycle` command's parser: its subcommands come from the registries they serve."""

import inspect

from cycle_pkg.cli import build_parser
from cycle_pkg.eval.registry import tasks


def test_every_data_command_has_its_functions_options():
    parser = build_parser()
    required = {"imagenet-val": ["--labels", "devkit"]}
    for dataset in ("r2v2", "r2v2-shards", "ucf101", "otb", "got10k", "imagenet", "imagenet-val"):
        args = parser.parse_args(["data", dataset, *required.get(dataset, [])])
        options = list(inspect.signature(args.prepare).parameters)[1:]
        assert all(hasattr(args, name) for name in options), (dataset, options)
        assert args.log is None and args.prepare.__name__ == "data_" + dataset.replace("-", "_")


def test_eval_tasks_are_the_registrys_with_log_and_tags():
    parser = build_parser()
    for task in tasks():
        args = parser.parse_args(["eval", task, "--checkpoint", "random", "--tag", "a=b", "--log", "x.log"])
        assert (args.task, args.tags, args.log) == (task, ["a=b"], "x.log")
