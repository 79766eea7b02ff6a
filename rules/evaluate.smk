rule evaluate_subset:
    input:
        real=f"{RESULTS}/data/real.npz",
        subset=subset_input,
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
