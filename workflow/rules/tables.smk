"""The paper's tables (ours beside the paper's numbers) and the ablation figures."""


rule table:
    input:
        table_metrics,
    output:
        md=f"{RESULTS}/tables/{{table}}.md",
        csv=report(f"{RESULTS}/tables/{{table}}.csv", category="Tables", labels={"table": "{table}"}),
    wildcard_constraints:
        table=alternatives(TABLES),
    log:
        "logs/tables/{table}.log",
    conda:
        ENV
    shell:
        f"{CYCLE} table {{wildcards.table}} {SCALE_ARGS} --log {{log}}"


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
        f"{CYCLE} table {{wildcards.table}} {SCALE_ARGS} --figure {{output}} --log {{log}}"
