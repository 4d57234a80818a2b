"""The paper's tables (ours beside the paper's numbers, with the kNN monitor curves of their runs), the
ablation figures and the OTB plots."""


rule table:
    input:
        metrics=table_metrics,
        runs=table_runs,
    output:
        md=f"{RESULTS}/tables/{{table}}.md",
        csv=report(f"{RESULTS}/tables/{{table}}.csv", category="Tables", labels={"table": "{table}"}),
        knn=report(f"{RESULTS}/figures/knn/{{table}}.png", category="Representation monitor", labels={"table": "{table}"}),
    wildcard_constraints:
        table=alternatives(TABLES),
    log:
        "logs/tables/{table}.log",
    conda:
        ENV
    shell:
        f"{CYCLE} table {{wildcards.table}} {SCALE_ARGS} --knn-figure {{output.knn:q}} --log {{log:q}}"


rule ablation_figure:
    input:
        table_metrics,
    output:
        report(f"{RESULTS}/figures/{{table}}.png", category="Ablations", labels={"table": "{table}"}),
    wildcard_constraints:
        table=alternatives(name for name, table in TABLES.items() if table.curve),
    log:
        "logs/tables/{table}-figure.log",
    conda:
        ENV
    shell:
        f"{CYCLE} table {{wildcards.table}} {SCALE_ARGS} --figure {{output:q}} --log {{log:q}}"


localrules:
    otb_plot,  # a copy: no job of its own on a cluster


rule otb_plot:
    input:
        f"{RESULTS}/eval/track/{{model}}.json",
    output:
        report(
            f"{RESULTS}/figures/otb/{{model}}-{{kind}}.png",
            category="Tracking (OTB-2015)",
            labels={"model": "{model}", "plot": "{kind}"},
        ),
    wildcard_constraints:
        kind=alternatives(OTB_PLOTS),
    log:
        "logs/tables/otb-{model}-{kind}.log",
    params:
        # the got10k toolkit's plot, written beside the metrics by `cycle eval track`
        plot=lambda w: f"{RESULTS}/eval/track/{w.model}/reports/OTB2015/SiamFC/{w.kind}_plots.png",
    conda:
        ENV
    shell:
        "cp {params.plot:q} {output:q} 2> {log:q}"
