rule custom_split:
    output:
        f"{RESULTS}/data/split.csv",
    log:
        f"{RESULTS}/logs/custom_split.log",
    conda:
        "../envs/histodistill.yaml"
    params:
        dataset=DATA_PARAMS,
        files=CUSTOM_FINGERPRINT,
    script:
        "../workflow_scripts/custom_split.py"


rule data:
    input:
        unpack(data_input),
    output:
        f"{RESULTS}/data/real.npz",
    log:
        f"{RESULTS}/logs/data.log",
    conda:
        "../envs/histodistill.yaml"
    params:
        dataset=DATA_PARAMS,
    script:
        "../workflow_scripts/data.py"
