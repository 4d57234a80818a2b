"""One pretraining job per unique grid point. A job that fails is resubmitted (the profile's
`retries`) and resumes from its checkpoint; under SLURM a job near its time limit requeues itself
(same job id, no retry spent). Only summary.json is declared, so a failed attempt never has its
checkpoint removed; evaluations read the run's backbone.pt."""


rule pretrain:
    input:
        data=lambda w: pretrain_data(w.run),
        monitor=lambda w: monitor_data(w.run),
        mlflow=MLFLOW_MARKER,
    output:
        str(layout.summary_path(RESULTS, "{run}")),
    wildcard_constraints:
        run=alternatives(GRID.runs),
    log:
        str(layout.pretrain_log("{run}")),
    threads: 1
    resources:
        gpu=0,
        processes=0,  # torchrun processes; 0: one per GPU
    params:
        launch=pretrain_launcher,
        settings=lambda w: fingerprint(run_config(w.run)),
        sets=lambda w: set_args(GRID.runs[w.run]),
        tags=lambda w: tag_args({"cycle.tables": ",".join(GRID.tables_of(w.run)), "snakemake.rule": "pretrain"}),
    conda:
        ENV
    shell:
        f"{{params.launch}} pretrain {SCALE_ARGS} --run {{wildcards.run:q}} --restart-on-change "
        "{params.sets} {params.tags} --log {log:q}"
