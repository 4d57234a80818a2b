"""Datasets: the synthetic world (small scales), or download / link / check the real ones, then
R2V2 (and R2V2-S) shards. Each rule's output is its dataset's summary report."""


DATASET_INPUTS = [str(world_stamp(CFG.world.root))] if CFG.workflow.synthetic else []
SHARD_VARIANTS = {shard_dir(replace(CFG.data, r2v2_subset=subset)).name: subset for subset in (True, False)}


if CFG.workflow.synthetic:

    rule world:
        output:
            DATASET_INPUTS[0],
        log:
            str(layout.data_log("world")),
        threads: 2
        conda:
            ENV
        shell:
            f"{CYCLE} world {SCALE_ARGS} --jobs {{threads}} --log {{log:q}}"


# R2V2 as data.r2v2_source says: re-created from the published id lists and YouTube (the paper
# scale; the job resumes when rerun, and puts the copy under DVC), or a copy linked, downloaded from a
# mirror or found in place; its report is the coverage or the survey.
rule r2v2:
    input:
        DATASET_INPUTS,
    output:
        data_report("r2v2"),
    log:
        str(layout.data_log("r2v2")),
    conda:
        ENV
    shell:
        f"{CYCLE} data r2v2 {SCALE_ARGS} --report {{output:q}} --log {{log:q}}"


rule r2v2_shards:
    input:
        data_report("r2v2"),
    output:
        str(shard_dir(CFG.data).with_name("{variant}") / SHARD_INDEX),
    wildcard_constraints:
        variant=alternatives(SHARD_VARIANTS),
    log:
        str(layout.data_log("r2v2-shards-{variant}")),
    threads: 2
    params:
        subset=lambda w: str(SHARD_VARIANTS[w.variant]).lower(),
    conda:
        ENV
    shell:
        f"{CYCLE} data r2v2-shards {SCALE_ARGS} --set data.r2v2_subset={{params.subset}} --jobs {{threads}} --log {{log:q}}"


rule dataset:
    input:
        DATASET_INPUTS,
    output:
        data_report("{dataset}"),
    wildcard_constraints:
        dataset=alternatives(evaluation_datasets()),
    log:
        str(layout.data_log("{dataset}")),
    conda:
        ENV
    shell:
        f"{CYCLE} data {{wildcards.dataset}} {SCALE_ARGS} --report {{output:q}} --log {{log:q}}"


localrules:
    mlflow_experiment,


rule mlflow_experiment:
    output:
        MLFLOW_MARKER,
    log:
        str(layout.MLFLOW_INIT_LOG),
    conda:
        ENV
    shell:
        f"{CYCLE} mlflow-init {SCALE_ARGS} --output {{output:q}} --log {{log:q}}"
