"""Settings, the grid and path helpers shared by the rules.

params.yaml is read by the `cycle` package itself (layered and validated as for any `cycle`
command); Snakemake's own copy of it is only validated here and asked for the scale, which
`--config scale=...` (the SLURM profile: paper) may change. The grid (cycle_pkg/reproduction/grid.py),
the evaluations (cycle_pkg/eval/registry.py) and every path (the results layout,
cycle_pkg/jobs/layout.py; the shards' and the synthetic world's, cycle_pkg/data/layout.py) come from
the package too: a rule's output is where the job it runs writes.
"""

import re
import functools
import json
import os
import shlex
import sys
from dataclasses import replace

from snakemake.utils import validate

from cycle_pkg.data.layout import SHARD_INDEX, shard_dir, shard_index, world_stamp
from cycle_pkg.eval.registry import EVALUATIONS, evaluation_datasets
from cycle_pkg.jobs import layout
from cycle_pkg.pretrain.summary import stopped_early
from cycle_pkg.reproduction.grid import Grid
from cycle_pkg.reproduction.paper import paper_tables
from cycle_pkg.settings.config import load_config
from cycle_pkg.settings.identity import fingerprint


validate(config, "../schemas/params.schema.yaml")

PARAMS = "params.yaml"
SCALE = config["scale"]
CFG = load_config(PARAMS, SCALE)
GRID = Grid(PARAMS, SCALE)
RESULTS = CFG.results
TABLES = {name: t for name, t in paper_tables().items() if not CFG.workflow.tables or name in CFG.workflow.tables}

# The interpreter running Snakemake is the project's: call the package through it, so that no
# environment needs activating (on cluster nodes neither).
PYTHON = shlex.quote(sys.executable)
CYCLE = f"{PYTHON} -m cycle_pkg.cli"
SCALE_ARGS = f"--params {shlex.quote(PARAMS)} --scale {shlex.quote(SCALE)}"
MLFLOW_MARKER = str(layout.mlflow_marker(RESULTS))
OTB_PLOTS = ("precision", "success")  # the got10k toolkit's two OTB plots
ENV = "../envs/cycle.yaml"  # used with --sdm conda


FORK_SERVERS = []


def start_fork_server():
    """A local run's jobs fork from one server that imported torch, torchvision and MLflow once
    (cycle_pkg/jobs/forkserver.py); a cluster executor's jobs start their own processes."""
    if CFG.workflow.fork_server and workflow.local_exec:
        from cycle_pkg.jobs import forkserver

        server = forkserver.Server(layout.FORK_SERVER_LOG)
        os.environ[forkserver.ENV] = server.path
        FORK_SERVERS.append(server)


def stop_fork_server():
    while FORK_SERVERS:
        FORK_SERVERS.pop().stop()


def set_args(overrides):
    return " ".join(f"--set {shlex.quote(o)}" for o in overrides)


def tag_args(tags):
    return " ".join(f"--tag {shlex.quote(f'{k}={v}')}" for k, v in tags.items())


def alternatives(names):
    """A wildcard constraint matching exactly these names (none: nothing, where an empty pattern would match all)."""
    return "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) or "(?!)"


def data_report(dataset):
    return str(layout.data_report(RESULTS, dataset))


@functools.cache  # the DAG asks for a run's settings once per rule that reads them
def run_config(run):
    return load_config(PARAMS, SCALE, GRID.runs[run])


def table_outputs():
    return [str(layout.table_path(RESULTS, name, ext)) for name in TABLES for ext in ("md", "csv")]


def figure_outputs():
    """The ablation curves, and the OTB precision and success plots of every model a tracking table shows."""
    curves = [str(layout.ablation_figure_path(RESULTS, name)) for name, table in TABLES.items() if table.curve]
    trackers = {m for t in TABLES.values() if t.evaluation == "track" for m in table_models(t)}
    plots = [str(layout.otb_figure_path(RESULTS, m, kind)) for m in sorted(trackers) for kind in OTB_PLOTS]
    return curves + plots


def table_models(table):
    """The runs (every seed's) and baselines whose metrics fill a table's rows."""
    return {model for i in range(len(table.rows)) for model in GRID.models_of(table.name, i)}


def needed_runs():
    """The pretraining runs of the selected tables."""
    return sorted({model for t in TABLES.values() for model in table_models(t)} & set(GRID.runs))


def data_outputs():
    """Every prepared dataset the selected tables read: R2V2 (or its shards) and the evaluations'."""
    pretraining = {pretrain_data(run) for run in needed_runs()}
    evaluations = {data_report(d) for t in TABLES.values() for d in EVALUATIONS[t.evaluation].datasets}
    return sorted(pretraining | evaluations)


# Pretraining

def pretrain_data(run):
    data = run_config(run).data
    return str(shard_index(data)) if data.r2v2_format == "shards" else data_report("r2v2")


def monitor_data(run):
    """The ImageNet copy whose labelled set the run's representation monitor reads, if it has one, and
    R2V2, whose val videos it replays the cycle on (pretrain.monitor.videos)."""
    p = run_config(run).pretrain
    return [data_report("imagenet")] * bool(p.monitor_every) + [data_report("r2v2")] * bool(p.monitor_every and p.monitor.videos)


def pretrain_launcher(wildcards, threads, resources):
    """torchrun with one process per GPU when the job has several, or `processes` of them on the CPU
    (it passes SIGUSR1, SLURM's warning before the time limit, on to them); otherwise the package
    itself on `threads` cores. The `--` keeps torchrun's parser from reading the job's own options
    (--run, --log) as abbreviations of its --run-path and --log-dir."""
    processes = resources.processes or resources.gpu
    if processes > 1:
        return (
            "TORCHELASTIC_SIGNALS_TO_HANDLE=SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1 "
            f"{PYTHON} -m torch.distributed.run --standalone --nproc-per-node {processes} -m -- cycle_pkg.cli"
        )
    return f"OMP_NUM_THREADS={threads} {CYCLE}"


# Evaluations

# The evaluations (their `cycle eval` task, settings and datasets) are EVALUATIONS of cycle_pkg.eval.registry.
BASELINE_PREFIX = "baseline-"
EVAL_MODELS = alternatives([*GRID.runs, *(BASELINE_PREFIX + key for key in CFG.baselines)])


def pretrain_summary(run):
    """A run's summary.json, the workflow's sign that the run is complete: one that a run stopped early
    (pretrain.max_steps, e.g. by hand) wrote is refused rather than taken for the finished run."""
    path = layout.summary_path(RESULTS, run)
    if path.is_file() and (early := stopped_early(json.loads(path.read_text()))):
        raise ValueError(
            f"{path}: {early}. Continue it with its `cycle pretrain` command without the limit, or delete "
            f"{path} (its checkpoint stays) and the workflow continues it"
        )
    return str(path)


def checkpoint_of(model):
    if model.startswith(BASELINE_PREFIX):
        return CFG.baselines[model.removeprefix(BASELINE_PREFIX)]
    return str(layout.backbone_path(RESULTS, model))


def model_input(wildcards):
    if wildcards.model.startswith(BASELINE_PREFIX):
        return checkpoint_of(wildcards.model)
    return pretrain_summary(wildcards.model)


def eval_inputs(wildcards):
    datasets = EVALUATIONS[wildcards.evaluation].datasets
    return {"model": model_input(wildcards), "mlflow": MLFLOW_MARKER, **{d: data_report(d) for d in datasets}}


def eval_tags(rule):
    return lambda w: tag_args({"cycle.tables": ",".join(GRID.tables_of(w.model)), "snakemake.rule": rule})


# Tables

def table_metrics(wildcards):
    table = TABLES[wildcards.table]
    return sorted(str(layout.metrics_path(RESULTS, table.evaluation, model)) for model in table_models(table))


def table_runs(wildcards):
    """The summaries of a table's pretraining runs: their monitor curves."""
    runs = table_models(TABLES[wildcards.table]) & set(GRID.runs)
    return sorted(pretrain_summary(run) for run in runs)
