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
    # Before the evaluations (0): started last, a distilled set and its own evaluation ran alone at the end of the
    # default run. Below the pool's selection chain (45), which waits for nothing else.
    priority: 20
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


rule distill_dm_refine:
    input:
        real=f"{RESULTS}/data/real.npz",
        start=f"{RESULTS}/subsets/{config['distill']['dm_refine']['start']}_ipc{{ipc}}.npz",
    output:
        f"{RESULTS}/subsets/dm_refine_ipc{{ipc}}.npz",
    log:
        f"{RESULTS}/logs/distill_dm_refine_ipc{{ipc}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/distill_dm_refine_ipc{{ipc}}.tsv"
    wildcard_constraints:
        ipc=r"\d+",
    priority: 20
    conda:
        "../envs/histodistill.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        dm=config["distill"]["dm"],
        start=config["distill"]["dm_refine"]["start"],
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
    priority: 20
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


# MTT's `--zca`: one transform of the real train split for the experts, MTT and the evaluation of MTT's sets.
rule fit_zca:
    input:
        real=f"{RESULTS}/data/real.npz",
    output:
        f"{RESULTS}/experts/zca.npz",
    log:
        f"{RESULTS}/logs/fit_zca.log",
    benchmark:
        f"{RESULTS}/benchmarks/fit_zca.tsv"
    priority: 20
    conda:
        "../envs/histodistill.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        eps=config["distill"]["mtt"]["zca_eps"],
    script:
        "../workflow_scripts/fit_zca.py"


rule train_expert:
    input:
        real=f"{RESULTS}/data/real.npz",
        zca=ZCA,
    output:
        f"{RESULTS}/experts/expert_{{k}}.npy",
    log:
        f"{RESULTS}/logs/train_expert_{{k}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_expert_{{k}}.tsv"
    wildcard_constraints:
        k=r"\d+",
    priority: 20
    conda:
        "../envs/histodistill.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        experts=config["distill"]["mtt"]["experts"],
        zca=config["distill"]["mtt"]["zca"],
    script:
        "../workflow_scripts/train_expert.py"


rule distill_mtt:
    input:
        real=f"{RESULTS}/data/real.npz",
        experts=expand(
            f"{RESULTS}/experts/expert_{{k}}.npy",
            k=range(config["distill"]["mtt"]["experts"]["count"]),
        ),
        zca=ZCA,
    output:
        f"{RESULTS}/subsets/mtt_ipc{{ipc}}.npz",
    log:
        f"{RESULTS}/logs/distill_mtt_ipc{{ipc}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/distill_mtt_ipc{{ipc}}.tsv"
    wildcard_constraints:
        ipc=r"\d+",
    priority: 20
    conda:
        "../envs/histodistill.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        mtt={
            k: v
            for k, v in config["distill"]["mtt"].items()
            if k not in ("experts", "max_memory_gb", "zca", "zca_eps")
        },
        experts=config["distill"]["mtt"]["experts"],
        zca=config["distill"]["mtt"]["zca"],
        precision=config["precision"],
    script:
        "../workflow_scripts/distill_mtt.py"
