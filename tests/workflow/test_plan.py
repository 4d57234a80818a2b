"""The workflow's shape without running it: lint, the schema, the grid, and the paper-scale DAG
that `snakemake --profile slurm` plans."""

import json
import re
import shlex
import subprocess
import sys

import pytest
import yaml

from cycle_pkg.errors import ConfigError
from cycle_pkg.reproduction.grid import Grid, grid_tags, run_name
from cycle_pkg.reproduction.paper import paper_tables
from cycle_pkg.settings.config import Config, json_schema, load_config

from ..helpers import PARAMS, ROOT
from .test_run import project_copy

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def job_counts(output: str) -> dict[str, int]:
    stats = output[output.index("Job stats:") :]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.MULTILINE)}


def test_lint_is_clean():
    result = snakemake("--lint")
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_schema_file_is_generated_from_the_settings():
    committed = yaml.safe_load((ROOT / "workflow" / "schemas" / "params.schema.yaml").read_text())
    assert committed == json_schema(), "regenerate it: cycle config --schema > workflow/schemas/params.schema.yaml"


def test_run_names_say_how_a_run_differs():
    base = load_config(PARAMS, "test")
    assert run_name(base, base) == "r18"
    assert run_name(load_config(PARAMS, "test", ["loss.lambda_cycle=0.3"]), base) == "r18-lambda0.3"
    table5 = load_config(
        PARAMS, "test", ["loss.components=cycle", "loss.neighbors=32", "loss.query_view_in_neighbors=true"]
    )
    assert run_name(table5, base) == "r18-cycle-m32-kpp"
    r50 = load_config(PARAMS, "test", ["model.backbone=resnet50", "model.head=mlp", "model.embed_dim=128"])
    assert run_name(r50, base) == "r50-mlp-d128"
    assert run_name(Config(), Config()) == "r18"


def test_every_table_row_is_filled_by_a_run_a_baseline_or_the_paper():
    grid = Grid(PARAMS, "paper")
    tables = paper_tables()
    assert [t.number for t in tables.values()] == list(range(1, 12))
    ours = {(name, i): grid.models_of(name, i) for name, t in tables.items() for i in range(len(t.rows))}
    # Grid points shared between tables are trained once (R18, full loss, R2V2-S: Tables 1, 2, 4, 6, 8; on the
    # whole R2V2, as Tables 9-11 print it: those three).
    assert grid.tables_of("r18") == sorted(["table1", "table2", "table4", "table6", "table8"])
    assert grid.tables_of("r18-r2v2") == sorted(["table9", "table10", "table11"])
    assert grid.runs["r18-r2v2-intra_image"] == ["data.r2v2_subset=false", 'loss.components="intra_image"']
    assert len(grid.runs) == 27 and len(grid.jobs()) == 41  # 39 on frozen features, 2 fine-tunings
    assert ours[("table6", 3)] == ours[("table8", 1)] == ("r18",)
    assert grid.runs["r18-m4096"] == ["loss.neighbors=4096"]
    assert grid.runs["r18-cycle-m128-kpp"] == [
        'loss.components="cycle"',
        "loss.neighbors=128",
        "loss.query_view_in_neighbors=true",
    ]
    # paper-only rows: other methods (Tables 1, 3, 9, 11) and baselines without a checkpoint given
    assert sum(not models for models in ours.values()) == 44


def test_small_scales_map_the_papers_sizes():
    grid = Grid(PARAMS, "demo")
    assert grid.runs["r18-m32"] == ["loss.neighbors=32"]  # Table 6, m = 256 at the demo scale
    assert grid.models_of("table7", 0) == ("r18-top2",)  # K = 8


def test_paper_dag_with_the_slurm_profile():
    result = snakemake("--profile", "slurm", "--dry-run", "--printshellcmds")
    assert result.returncode == 0, result.stderr[-3000:]
    counts = job_counts(result.stdout)
    assert counts["pretrain"] == 27 and counts["evaluate"] == 39 and counts["table"] == 11
    assert counts["finetune"] == 2  # Table 9's R18 and R50 rows
    assert counts["ablation_figure"] == 4 and counts["r2v2_shards"] == 2 and counts["dataset"] == 4
    assert counts["otb_plot"] == 12  # precision and success of the 6 models in Tables 1-2
    blocks = re.split(r"^\[\w{3} \w{3} .*\]$", result.stdout, flags=re.MULTILINE)
    pretrain = [b for b in blocks if "rule pretrain:" in b]
    evaluate = [b for b in blocks if "rule evaluate:" in b]
    assert len(pretrain) == 27
    assert all(re.search(r"resources: .*\bgpu=8\b.*cpus_per_gpu=8", b) for b in pretrain)
    assert all(re.search(r"resources: .*\bgpu=1\b", b) for b in evaluate)
    finetune = [b for b in blocks if "rule finetune:" in b]
    assert sorted(re.search(r"model=([\w-]+)", b).group(1) for b in finetune) == ["r18-r2v2", "r50-r2v2-mlp-d128"]
    assert all(re.search(r"resources: .*\bruntime=2880\b.*\bgpu=1\b.*--signal=USR1@300", b) for b in finetune)
    assert "--signal" not in pretrain[0]  # a run requeues itself before its time limit
    from torch.distributed.run import get_args_parser  # the launch line as torchrun itself reads it

    launch = next(line for line in pretrain[0].splitlines() if "torch.distributed.run" in line)
    torchrun = get_args_parser().parse_args(shlex.split(launch.split("torch.distributed.run", 1)[1]))
    assert torchrun.module and torchrun.training_script == "cycle_pkg.cli" and torchrun.nproc_per_node == "8"
    assert {"--run", "--log"} <= set(torchrun.training_script_args)  # the job's options reach the job
    subset = [b for b in pretrain if re.search(r"run=r18(?!-r2v2)", b)]
    assert len(subset) == 21 and all("data/shards/r2v2/train-s109500/index.json" in b for b in subset)
    whole = [b for b in pretrain if "run=r18-r2v2" in b or "run=r50" in b]
    assert len(whole) == 6 and all("data/shards/r2v2/train/index.json" in b for b in whole)
    assert all(re.search(r"--checkpoint results/pretrain/\S+/backbone\.pt ", b) for b in evaluate)


class PlannedJob:
    """What the SLURM executor reads of a job, from the resources a dry run prints."""

    def __init__(self, block: str):
        line = re.search(r"^\s*resources: (.*)$", block, re.MULTILINE).group(1)
        pairs = (item.split("=", 1) for item in line.split(", "))
        self.resources = Resources({k: int(v) if v.isdigit() else v for k, v in pairs})
        self.threads = 1


class Resources(dict):
    __getattr__ = dict.__getitem__


def test_pretraining_asks_slurm_for_8_ampere_gpus_on_one_node_within_a_day():
    """The sbatch line the SLURM executor builds for a planned pretraining job."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    result = snakemake("--profile", "slurm", "--dry-run", "--until", "pretrain")
    assert result.returncode == 0, result.stderr[-3000:]
    blocks = re.split(r"^\[\w{3} \w{3} .*\]$", result.stdout, flags=re.MULTILINE)
    block = next(b for b in blocks if "rule pretrain:" in b)
    job = PlannedJob(block)
    params = dict(run_uuid="x", slurm_logfile="x.log", comment_str="x", account="-A a", partition="-p gpu", workdir=".")
    sbatch = get_submit_command(job, params) + set_gres_string(job)
    assert " --nodes=1" in sbatch and " --gpus=a100:8" in sbatch and " --cpus-per-gpu=8" in sbatch
    assert " -t 1440" in sbatch  # a day: within most clusters' limits; the run requeues itself before it


def test_a_new_default_moves_the_methods_rows_but_not_an_ablations_own_value(tmp_path):
    params = yaml.safe_load(PARAMS.read_text())
    params["loss"]["lambda_cycle"] = 0.3  # as `dvc exp run -S loss.lambda_cycle=0.3` writes it
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    grid = Grid(tmp_path / "params.yaml", "paper")
    lambdas = [row.method for row in paper_tables()["table8"].rows]
    assert grid.models_of("table8", lambdas.index("lambda=0.1")) == ("r18-lambda0.1",)
    assert grid.models_of("table8", lambdas.index("lambda=0.3")) == grid.models_of("table4", 2) == ("r18",)
    assert len(grid.runs) == 27  # lambda 0.3 is trained once, under the name of the default


def test_every_grid_point_is_trained_once_per_seed(tmp_path):
    params = yaml.safe_load(PARAMS.read_text())
    params["workflow"]["seeds"] = [0, 2]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    grid = Grid(tmp_path / "params.yaml", "paper")
    assert len(grid.runs) == 2 * 27 and len(grid.jobs()) == 2 * 41
    # the scale's own seed keeps today's names; the other names its runs
    assert grid.models_of("table8", 1) == ("r18", "r18-seed2")
    assert grid.runs["r18-lambda0.3-seed2"] == ["loss.lambda_cycle=0.3", "pretrain.seed=2"]
    assert grid.seed_of("r18-seed2") == 2 and grid.seed_of("r18") == 0
    assert grid_tags(load_config(PARAMS, "paper", grid.runs["r18-seed2"]))["grid.seed"] == "2"
    params["workflow"]["seeds"] = [1, 1]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError, match=r"workflow.seeds: expected one or more different seeds"):
        Grid(tmp_path / "params.yaml", "paper")


def test_two_seeds_plan_every_run_and_evaluation_twice_and_tables_that_read_both(tmp_path):
    """Table 6 at the test scale with workflow.seeds [0, 1], planned (the tables' intervals, error
    bars and kNN figures from such files: test_tables.py)."""
    project = project_copy(tmp_path / "project", workflow={"tables": ["table6"], "seeds": [0, 1]})
    result = snakemake("--dry-run", "--printshellcmds", "--forceall", cwd=project)
    assert result.returncode == 0, result.stderr[-3000:]
    counts = job_counts(result.stdout)
    assert counts["pretrain"] == counts["evaluate"] == 8 and counts["table"] == counts["ablation_figure"] == 1
    seed1 = [line for line in result.stdout.splitlines() if " pretrain " in line and "-seed1 " in line]
    assert len(seed1) == 4 and all("--set pretrain.seed=1" in line for line in seed1)
    assert "--run r18-m16-seed1 " in "\n".join(seed1)
    table = result.stdout[result.stdout.index("rule table:") :].split("\n\n")[0]
    assert "--knn-figure results/figures/knn/table6.png" in table
    inputs = table.split("output:")[0]
    for run in ("r18-m16", "r18-m16-seed1", "r18-seed1"):
        assert f"results/eval/linear_imagenet100/{run}.json" in inputs
        assert f"results/pretrain/{run}/summary.json" in inputs


def test_the_science_scale_plans_table4s_resnet18_rows_over_three_seeds():
    """`make science`'s DAG: the three R18 settings of Table 4 once per seed, each evaluated by the
    linear probe, the monitor replaying the cycle on R2V2's val videos; the R50 rows not trained."""
    result = snakemake("--dry-run", "--printshellcmds", "--forceall", "--config", "scale=science")
    assert result.returncode == 0, result.stderr[-3000:]
    counts = job_counts(result.stdout)
    assert counts["pretrain"] == counts["evaluate"] == 9 and counts["table"] == 1
    runs = set(re.findall(r"--run (r\d+[\w-]*) ", result.stdout))
    settings = ("r18-intra_image", "r18-intra_video", "r18")
    assert runs == {f"{s}{suffix}" for s in settings for suffix in ("", "-seed1", "-seed2")}
    pretrain = result.stdout[result.stdout.index("rule pretrain:") :].split("\n\n")[0]
    assert "results/science/data/r2v2.json" in pretrain.split("output:")[0]  # the mechanism's videos
    grid = Grid(PARAMS, "science")
    assert grid.models_of("table4", 3) == ()  # R50: the paper's numbers only
    assert grid.models_of("table4", 0) == ("r18-intra_image", "r18-intra_image-seed1", "r18-intra_image-seed2")


def test_a_run_stopped_early_is_not_taken_for_the_finished_run(tmp_path):
    """A summary.json that `cycle pretrain --set pretrain.max_steps=1` wrote under a grid run's name
    is refused by the DAG, which says how to continue the run."""
    project = project_copy(tmp_path / "project", workflow={"tables": ["table6"]})
    summary = project / "results" / "pretrain" / "r18" / "summary.json"
    summary.parent.mkdir(parents=True)
    summary.write_text(json.dumps({"steps": 1, "steps_per_epoch": 6, "config": {"pretrain": {"epochs": 2}}}))
    result = snakemake("--dry-run", cwd=project)
    said = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"{summary.relative_to(project)}: it stopped at step 1 of its 12 (pretrain.max_steps)" in said, said
    assert "without the limit" in said


def test_settings_reach_the_commands_as_one_argument_each(tmp_path):
    """A baseline checkpoint and a results folder with a space, a quote and `$( )` in their names reach
    `cycle` unchanged: every value the rules put into a shell command is quoted."""
    checkpoint = tmp_path / "ck $(touch PWNED) 'q'.pth"
    checkpoint.write_bytes(b"")
    project = project_copy(tmp_path / "project", workflow={"tables": ["table1"]})
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["scales"]["test"].update(results="out dir", baselines={"supervised_resnet18": str(checkpoint)})
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = snakemake("--dry-run", "--printshellcmds", "--forceall", cwd=project)
    assert result.returncode == 0, result.stdout[-3000:]
    shell = "Shell command: "
    commands = [shlex.split(line.removeprefix(shell)) for line in result.stdout.splitlines() if line.startswith(shell)]
    evaluation = next(c for c in commands if "baseline-supervised_resnet18" in c)
    assert evaluation[evaluation.index("--checkpoint") + 1] == str(checkpoint)
    assert evaluation[evaluation.index("--output") + 1] == "out dir/eval/track/baseline-supervised_resnet18.json"
    plots = [c for c in commands if c[0] == "cp"]
    assert plots and all(c[1].startswith("out dir/eval/track/") and c[2].startswith("out dir/") for c in plots)
    assert not any(word.startswith("dir/") for command in commands for word in command)  # no path split in two


def test_the_workflow_refuses_a_number_out_of_its_range_at_its_start(tmp_path):
    project = project_copy(tmp_path / "project", pretrain={"lr": -0.5})
    result = snakemake("--dry-run", cwd=project)
    said = result.stdout + result.stderr
    assert result.returncode != 0 and "-0.5 is less than or equal to the minimum of 0" in said, said[-3000:]
    assert "['pretrain']['lr']" in said
