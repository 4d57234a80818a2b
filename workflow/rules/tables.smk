"""The paper's tables (ours beside the paper's numbers, with the kNN monitor curves of their runs), the
ablation figures and the OTB plots."""


rule table:
    input:
        metrics=table_metrics,
        runs=table_runs,
    output:
        md=str(layout.table_path(RESULTS, "{table}", "md")),
        csv=report(str(layout.table_path(RESULTS, "{table}", "csv")), category="Tables", labels={"table": "{table}"}),
        knn=report(
            str(layout.knn_figure_path(RESULTS, "{table}")),
            category="Representation monitor",
            labels={"table": "{table}"},
        ),
    wildcard_constraints:
        table=alternatives(TABLES),
    log:
        str(layout.table_log("{table}")),
    conda:
        ENV
    shell:
        f"{CYCLE} table {{wildcards.table}} {SCALE_ARGS} --knn-figure {{output.knn:q}} --log {{log:q}}"


rule ablation_figure:
    input:
        table_metrics,
    output:
        report(str(layout.ablation_figure_path(RESULTS, "{table}")), category="Ablations", labels={"table": "{table}"}),
    wildcard_constraints:
        table=alternatives(name for name, table in TABLES.items() if table.curve),
    log:
        str(layout.table_log("{table}-figure")),
    conda:
        ENV
    shell:
        f"{CYCLE} table {{wildcards.table}} {SCALE_ARGS} --figure {{output:q}} --log {{log:q}}"


localrules:
    otb_plot,  # a copy: no job of its own on a cluster


rule otb_plot:
    input:
        str(layout.metrics_path(RESULTS, "track", "{model}")),
    output:
        report(
            str(layout.otb_figure_path(RESULTS, "{model}", "{kind}")),
            category="Tracking (OTB-2015)",
            labels={"model": "{model}", "plot": "{kind}"},
        ),
    wildcard_constraints:
        kind=alternatives(OTB_PLOTS),
    log:
        str(layout.table_log("otb-{model}-{kind}")),
    params:
        # the got10k toolkit's plot, written beside the metrics by `cycle eval track`
        plot=lambda w: str(layout.otb_plot(layout.eval_job_dir(RESULTS, "track", w.model), w.kind)),
    conda:
        ENV
    shell:
        "cp {params.plot:q} {output:q} 2> {log:q}"
