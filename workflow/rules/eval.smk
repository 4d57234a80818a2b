"""Every evaluation a table needs, once per model: a pretraining run of the grid or a baseline
checkpoint given in params.yaml (`baselines`). The evaluations that fine-tune the backbone (Table 9)
have a rule of their own, `finetune`, so that a cluster profile can give them their hours on a GPU;
they resume from the state they keep beside their metrics file."""


rule evaluate:
    input:
        unpack(eval_inputs),
    output:
        str(layout.metrics_path(RESULTS, "{evaluation}", "{model}")),
    wildcard_constraints:
        evaluation=alternatives(name for name, e in EVALUATIONS.items() if e.frozen),
        model=EVAL_MODELS,
    log:
        str(layout.eval_log("{evaluation}", "{model}")),
    threads: 1
    resources:
        gpu=0,
    params:
        task=lambda w: EVALUATIONS[w.evaluation].task,
        sets=lambda w: set_args(EVALUATIONS[w.evaluation].settings),
        checkpoint=lambda w: checkpoint_of(w.model),
        tags=eval_tags("evaluate"),
    conda:
        ENV
    shell:
        f"OMP_NUM_THREADS={{threads}} {CYCLE} eval {{params.task}} {SCALE_ARGS} {{params.sets}} "
        "--checkpoint {params.checkpoint:q} --run {wildcards.model:q} --output {output:q} {params.tags} --log {log:q}"


use rule evaluate as finetune with:
    wildcard_constraints:
        evaluation=alternatives(name for name, e in EVALUATIONS.items() if not e.frozen),
        model=EVAL_MODELS,
    params:
        tags=eval_tags("finetune"),
