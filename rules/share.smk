rule share:
    input:
        subsets=expand(f"{RESULTS}/subsets/{{subset}}.npz", subset=PRIVACY_SUBSETS),
        audits=expand(f"{RESULTS}/privacy/{{subset}}.json", subset=PRIVACY_SUBSETS),
        controls=CONTROLS,
        generator=GENERATOR_AUDIT,
        pool=[f"{RESULTS}/privacy/pool.json"] if USES_POOL else [],
        dp_budget=DP_BUDGET,
        evals=expand(
            f"{RESULTS}/eval/{{subset}}/{{model}}_seed{{seed}}.json",
            subset=PRIVACY_SUBSETS,
            model=config["evaluate"]["models"],
            seed=config["evaluate"]["seeds"],
        ),
    output:
        directory(f"{RESULTS}/share"),
    log:
        f"{RESULTS}/logs/share.log",
    conda:
        "../envs/histodistill.yaml"
    params:
        names=PRIVACY_SUBSETS,
        gate=GATE,
        settings={
            k: config[k] for k in ("dataset", "generator", "pool", "embed", "graph", "select", "evaluate", "privacy")
        },
    script:
        "../workflow_scripts/share.py"
