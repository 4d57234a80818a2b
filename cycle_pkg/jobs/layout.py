"""The results layout: where each job writes what the workflow's rules read, under the scale's results
folder (``<results>``) and ``logs/``. The rules, the ``cycle`` command and the jobs take every path
from here; free of torch, since the Snakefile reads it at parse time. A run's or model's name may be a
Snakemake wildcard (``"{run}"``): the rules pass the patterns through these same functions.

    <results>/data/<dataset>.json               a dataset's ``cycle data`` report        data_report
    <results>/mlflow/experiment.json            the MLflow store, made once before the jobs  mlflow_marker
    <results>/pretrain/<run>/                   a pretraining run's folder               run_dir
        summary.json, backbone.pt, mlflow_run_id    its summary (last written), the backbone, its MLflow run
    <results>/eval/<evaluation>/<model>.json    an evaluation's metrics file             metrics_path
    <results>/eval/<evaluation>/<model>/        its job's folder: the OTB reports, a fine-tuning's state  eval_job_dir
    <results>/tables/<table>.md, .csv           the paper's tables                       table_path
    <results>/figures/<table>.png               a table's ablation figure                ablation_figure_path
    <results>/figures/knn/<table>.png           the monitor curves of a table's runs     knn_figure_path
    <results>/figures/otb/<model>-<kind>.png    a tracker's OTB plot                     otb_figure_path
    logs/<job>/...                              each job's log                           pretrain_log, eval_log, ...

The data themselves live where the data settings say, outside the results: R2V2's shards and the
synthetic world's stamp are named by :mod:`cycle_pkg.data.layout`.
"""

from __future__ import annotations

from pathlib import Path

# The files of a pretraining run's folder that others read
SUMMARY = "summary.json"  # written last: the workflow's sign that the run is complete
BACKBONE = "backbone.pt"  # the backbone-only export the evaluations read
MLFLOW_RUN_ID = "mlflow_run_id"  # the id of the run's (or an evaluation job's) MLflow run, to resume or link it

# The got10k toolkit's folders in a tracking evaluation's job folder, and the tracker's name in them
OTB_RESULTS = "results"
OTB_REPORTS = "reports"
OTB_TRACKER = "SiamFC"

LOGS = Path("logs")
MLFLOW_INIT_LOG = LOGS / "mlflow-init.log"
FORK_SERVER_LOG = LOGS / "fork-server.log"


def data_report(results: str | Path, dataset: str) -> Path:
    """The JSON report of ``cycle data <dataset>``: the workflow's sign that the dataset is ready."""
    return Path(results) / "data" / f"{dataset}.json"


def mlflow_marker(results: str | Path) -> Path:
    """The record of the MLflow store and experiment that ``cycle mlflow-init`` writes."""
    return Path(results) / "mlflow" / "experiment.json"


def run_dir(results: str | Path, run: str) -> Path:
    return Path(results) / "pretrain" / run


def summary_path(results: str | Path, run: str) -> Path:
    return run_dir(results, run) / SUMMARY


def backbone_path(results: str | Path, run: str) -> Path:
    return run_dir(results, run) / BACKBONE


def metrics_path(results: str | Path, evaluation: str, model: str) -> Path:
    """An evaluation's metrics file of a model (a pretraining run, or a baseline)."""
    return Path(results) / "eval" / evaluation / f"{model}.json"


def job_folder(metrics: str | Path) -> Path:
    """Where an evaluation job keeps what it writes beside its metrics file ``<name>.json`` (wherever
    ``--output`` puts it): ``<name>/`` (the OTB reports and plots, a fine-tuning's state)."""
    return Path(metrics).with_suffix("")


def eval_job_dir(results: str | Path, evaluation: str, model: str) -> Path:
    return job_folder(metrics_path(results, evaluation, model))


def otb_plot(job_dir: str | Path, kind: str) -> Path:
    """The toolkit's OTB plot (``kind``: precision or success) in a tracking evaluation's job folder,
    where its OTB-2015 experiment (cycle_pkg.eval.tracking.otb) draws it."""
    return Path(job_dir) / OTB_REPORTS / "OTB2015" / OTB_TRACKER / f"{kind}_plots.png"


def tables_dir(results: str | Path) -> Path:
    return Path(results) / "tables"


def table_path(results: str | Path, table: str, ext: str) -> Path:
    """A table of the paper with ours beside its numbers; ``ext``: md or csv."""
    return tables_dir(results) / f"{table}.{ext}"


def ablation_figure_path(results: str | Path, table: str) -> Path:
    return Path(results) / "figures" / f"{table}.png"


def knn_figure_path(results: str | Path, table: str) -> Path:
    return Path(results) / "figures" / "knn" / f"{table}.png"


def otb_figure_path(results: str | Path, model: str, kind: str) -> Path:
    return Path(results) / "figures" / "otb" / f"{model}-{kind}.png"


def pretrain_log(run: str) -> Path:
    return LOGS / "pretrain" / f"{run}.log"


def eval_log(evaluation: str, model: str) -> Path:
    return LOGS / "eval" / evaluation / f"{model}.log"


def data_log(name: str) -> Path:
    """A data job's log: ``cycle data <name>``, the synthetic world's, the shards'."""
    return LOGS / "data" / f"{name}.log"


def table_log(name: str) -> Path:
    """The log of a job that writes a table, its figure or an OTB plot."""
    return LOGS / "tables" / f"{name}.log"
