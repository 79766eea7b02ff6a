rule data:
    output:
        f"{RESULTS}/data/real.npz",
    params:
        dataset=config["dataset"],
    log:
        f"{RESULTS}/logs/data.log",
    conda:
        "../envs/histodistill.yaml"
    script:
        "../workflow_scripts/data.py"
