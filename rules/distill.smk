rule distill_dm:
    input:
        real=f"{RESULTS}/data/real.npz",
    output:
        f"{RESULTS}/subsets/dm_ipc{{ipc}}.npz",
    log:
        f"{RESULTS}/logs/distill_dm_ipc{{ipc}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/distill_dm_ipc{{ipc}}.tsv"
    wildcard_constraints:
        ipc=r"\d+",
    conda:
        "../envs/histodistill.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        dm=config["distill"]["dm"],
        precision=config["precision"],
    script:
        "../workflow_scripts/distill_dm.py"


rule distill_gradient_matching:
    input:
        real=f"{RESULTS}/data/real.npz",
    output:
        f"{RESULTS}/subsets/{{method}}_ipc{{ipc}}.npz",
    log:
        f"{RESULTS}/logs/distill_{{method}}_ipc{{ipc}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/distill_{{method}}_ipc{{ipc}}.tsv"
    wildcard_constraints:
        method="dc|dsa",
        ipc=r"\d+",
    conda:
        "../envs/histodistill.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        settings=lambda wc: config["distill"][wc.method],
        precision=config["precision"],
    script:
        "../workflow_scripts/distill_gradient_matching.py"
