"""The `cycle` command's parser: its subcommands come from the registries they serve; what it checks on entry."""

import errno
import inspect

import pytest

from cycle_pkg.cli import build_parser
from cycle_pkg.errors import ConfigError
from cycle_pkg.eval.registry import tasks
from cycle_pkg.settings.config import load_config

from .helpers import PARAMS, pretrain_args, run_cycle_here


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


@pytest.mark.parametrize("name", ["../../escape", "../tables", "", ".", "a b", "x/y"])
def test_a_run_name_is_one_folder_under_the_results(tmp_path, name):
    """`--run` is checked where it enters: nothing is written (or moved aside) outside the run's folder."""
    results = tmp_path / "project" / "results"
    (results / "tables").mkdir(parents=True)
    pretrain = pretrain_args(tmp_path / "no-world", results, "mlflow.enabled=false")
    evaluation = ["eval", "linear", "--params", str(PARAMS), "--scale", "test", "--checkpoint", "random"]
    for args in ([*pretrain, "--run", name, "--restart-on-change"], [*evaluation, "--run", name]):
        ran = run_cycle_here(args, cwd=tmp_path / "project")
        assert ran.returncode == 2, ran.stderr
        assert f"configuration error: --run {name!r}: a run name is one folder under the results folder" in ran.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"] and (results / "tables").is_dir()
    assert [p.name for p in results.iterdir()] == ["tables"]


def test_a_baselines_key_is_a_run_name():
    with pytest.raises(ConfigError, match=r"baselines: the key '\.\./x': a run name is one folder"):
        load_config(PARAMS, "test", ["baselines={'../x': /tmp/x.pth}"])


@pytest.mark.parametrize(
    ("failure", "advice"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "free space on its file system"),
        (OSError(errno.EROFS, "Read-only file system", "{folder}/.config.json.x.tmp"), "its file system is read-only"),
    ],
    ids=["disk-full", "read-only"],
)
def test_a_write_the_file_system_refuses_is_one_line_naming_the_file(world, tmp_path, monkeypatch, failure, advice):
    """A full disk (whose error names no file) or a read-only run folder: the file and what to do, no traceback."""
    from cycle_pkg.jobs import atomic

    folder = tmp_path / "results" / "pretrain" / "r18"
    if failure.filename:
        failure.filename = failure.filename.format(folder=folder)

    def refuse(*args, **kwargs):
        raise failure

    monkeypatch.setattr(atomic.os, "fsync", refuse)
    if failure.errno == errno.EROFS:
        monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)
    ran = run_cycle_here(pretrain_args(world, tmp_path / "results", "mlflow.enabled=false"), cwd=tmp_path)
    assert ran.returncode == 1 and "Traceback" not in ran.stderr, ran.stderr
    written = folder / "config.json" if failure.errno == errno.ENOSPC else failure.filename
    assert f"cycle: cannot write {written}: {failure.strerror}; {advice}" in ran.stderr
    assert ran.stderr.strip().splitlines()[-1].startswith("cycle: cannot write")


def test_shards_that_pretraining_does_not_read_are_said_to_be_unused(tmp_path):
    """data.r2v2_shards with data.r2v2_format: jpeg, given to `cycle pretrain` or sharded: a warning."""
    sets = ["--set", "data.r2v2_format=jpeg", "--set", "data.r2v2_shards=/scratch/shards"]
    for args in (
        [*pretrain_args(tmp_path / "no-world", tmp_path / "results"), *sets],
        [
            "data",
            "r2v2-shards",
            "--params",
            str(PARAMS),
            "--scale",
            "test",
            "--set",
            f"data.r2v2_root={tmp_path}",
            *sets,
        ],
    ):
        ran = run_cycle_here(args, cwd=tmp_path)
        assert "data.r2v2_shards (/scratch/shards) is not read by pretraining: data.r2v2_format is jpeg" in ran.stderr
    quiet = run_cycle_here(pretrain_args(tmp_path / "no-world", tmp_path / "results"), cwd=tmp_path)
    assert "r2v2_shards" not in quiet.stderr  # the scale's own path, unused here: nothing to say
