"""Every evaluation a table needs, once per model: a pretraining run of the grid or a baseline
checkpoint given in params.yaml (`baselines`)."""


rule evaluate:
    input:
        unpack(eval_inputs),
    output:
        f"{RESULTS}/eval/{{evaluation}}/{{model}}.json",
    wildcard_constraints:
        evaluation=alternatives(EVALUATIONS),
        model=alternatives([*GRID.runs, *(BASELINE_PREFIX + key for key in CFG.baselines)]),
    log:
        "logs/eval/{evaluation}/{model}.log",
    threads: 1
    resources:
        gpu=0,
    params:
        task=lambda w: EVALUATIONS[w.evaluation].task,
        sets=lambda w: set_args(EVALUATIONS[w.evaluation].settings),
        checkpoint=lambda w: checkpoint_of(w.model),
        tags=eval_tags,
    conda:
        ENV
    shell:
        f"OMP_NUM_THREADS={{threads}} {CYCLE} eval {{params.task}} {SCALE_ARGS} {{params.sets}} "
        "--checkpoint {params.checkpoint} --run {wildcards.model} --output {output} {params.tags} --log {log}"
