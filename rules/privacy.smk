PRIVACY_SUBSETS = [s for s in SUBSETS if not s.startswith("full_real")]


rule privacy_audit:
    input:
        real=f"{RESULTS}/data/real.npz",
        subset=f"{RESULTS}/subsets/{{subset}}.npz",
        embedder=f"{RESULTS}/embedder/convnet.pt",
    output:
        json=f"{RESULTS}/privacy/{{subset}}.json",
        pairs=f"{RESULTS}/figures/privacy_pairs_{{subset}}.png",
        histogram=f"{RESULTS}/figures/privacy_dcr_{{subset}}.png",
    log:
        f"{RESULTS}/logs/privacy_audit_{{subset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/privacy_audit_{{subset}}.tsv"
    conda:
        "../envs/histodistill.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        privacy=config["privacy"],
        class_names=CLASS_NAMES,
    script:
        "../workflow_scripts/privacy_audit.py"


rule privacy_table:
    input:
        expand(f"{RESULTS}/privacy/{{subset}}.json", subset=PRIVACY_SUBSETS),
    output:
        csv=f"{RESULTS}/tables/privacy.csv",
        markdown=f"{RESULTS}/tables/privacy.md",
    log:
        f"{RESULTS}/logs/privacy_table.log",
    conda:
        "../envs/histodistill.yaml"
    params:
        class_names=CLASS_NAMES,
        dataset=DS,
    script:
        "../workflow_scripts/privacy_table.py"
