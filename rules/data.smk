rule data:
    output:
        f"{RESULTS}/data/real.npz",
    log:
        f"{RESULTS}/logs/data.log",
    conda:
        "../envs/histodistill.yaml"
    params:
        dataset=config["dataset"],
    script:
        "../workflow_scripts/data.py"
