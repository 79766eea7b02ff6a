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


rule sample_grid:
    input:
        f"{RESULTS}/subsets/{{subset}}.npz",
    output:
        f"{RESULTS}/figures/samples_{{subset}}.png",
    log:
        f"{RESULTS}/logs/sample_grid_{{subset}}.log",
    conda:
        "../envs/histodistill.yaml"
    params:
        class_names=CLASS_NAMES,
    script:
        "../workflow_scripts/sample_grid.py"
