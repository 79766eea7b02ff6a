rule evaluate_subset:
    input:
        real=f"{RESULTS}/data/real.npz",
        subset=subset_input,
        zca=zca_input,
    output:
        expand(
            f"{RESULTS}/eval/{{{{subset}}}}/{{{{model}}}}_seed{{seed}}.json",
            seed=config["evaluate"]["seeds"],
        ),
    log:
        f"{RESULTS}/logs/evaluate_{{subset}}_{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate_{{subset}}_{{model}}.tsv"
    conda:
        "../envs/histodistill.yaml"
    # the full-real evaluation needs only real.npz, yet the scheduler tends to leave it for last, alone: 2 threads
    threads: lambda wc: TRAINING_THREADS if wc.subset == "full_real_ipcall" else 1
    resources:
        gpu=1,
    params:
        evaluate=config["evaluate"],
        precision=config["precision"],
    script:
        "../workflow_scripts/evaluate_subset.py"


rule summarise:
    input:
        expand(
            f"{RESULTS}/eval/{{subset}}/{{model}}_seed{{seed}}.json",
            subset=SUBSETS,
            model=config["evaluate"]["models"],
            seed=config["evaluate"]["seeds"],
        ),
        graph_stats=expand(
            f"{RESULTS}/communities/{{gkey}}/class_{{c}}.stats.json",
            gkey=GRAPH_KEYS,
            c=CLASSES,
        ),
        dp_budget=DP_BUDGET,
    output:
        csv=f"{RESULTS}/tables/summary.csv",
        markdown=f"{RESULTS}/tables/summary.md",
        graph=f"{RESULTS}/tables/graph_stats.csv",
        figure=report(
            f"{RESULTS}/figures/accuracy.png",
            caption="../report/accuracy.rst",
            category="1. Accuracy",
        ),
    log:
        f"{RESULTS}/logs/summarise.log",
    conda:
        "../envs/histodistill.yaml"
    params:
        class_names=CLASS_NAMES,
        dataset=DS,
        pool_filter={k: config["select"]["privacy_filter"][k] for k in ("enabled", "unfiltered")},
        protocol=config["evaluate"]["protocol"],
    script:
        "../workflow_scripts/summarise.py"
