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
    output:
        csv=f"{RESULTS}/tables/summary.csv",
        markdown=f"{RESULTS}/tables/summary.md",
        graph=f"{RESULTS}/tables/graph_stats.csv",
        figure=f"{RESULTS}/figures/accuracy.png",
    log:
        f"{RESULTS}/logs/summarise.log",
    conda:
        "../envs/histodistill.yaml"
    params:
        class_names=CLASS_NAMES,
        dataset=DS,
    script:
        "../workflow_scripts/summarise.py"


# One job draws every grid: each takes a fraction of a second, less than a job's start-up.
rule sample_grids:
    input:
        expand(f"{RESULTS}/subsets/{{subset}}.npz", subset=SAMPLE_GRIDS),
    output:
        expand(f"{RESULTS}/figures/samples_{{subset}}.png", subset=SAMPLE_GRIDS),
    log:
        f"{RESULTS}/logs/sample_grids.log",
    conda:
        "../envs/histodistill.yaml"
    params:
        class_names=CLASS_NAMES,
        subsets=SAMPLE_GRIDS,
    script:
        "../workflow_scripts/sample_grids.py"
