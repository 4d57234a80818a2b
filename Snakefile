"""Reproduce the paper's Tables 1-11: data -> one pretraining per unique grid point -> every
evaluation -> tables and figures. The grid, the evaluations and the paper's numbers live in
cycle_pkg (reproduction/grid.py, eval/registry.py, reproduction/paper_tables.yaml); every rule is a
thin call of the `cycle` command.

    snakemake --cores all          # the scale named in params.yaml (a fresh clone: demo, on CPU)
    snakemake --profile slurm      # the paper's scale on a SLURM cluster (profile in ./slurm)
"""

from snakemake.utils import min_version

min_version("9.0")


configfile: "params.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/eval.smk"
include: "workflow/rules/tables.smk"


onstart:
    start_fork_server()


onsuccess:
    stop_fork_server()


onerror:
    stop_fork_server()


rule all:
    default_target: True
    input:
        table_outputs(),
        figure_outputs(),


rule data:
    input:
        data_outputs(),
