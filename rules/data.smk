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
        real=f"{RESULTS}/data/real.npz",
        # the train split again, uncompressed, for the jobs that read it batch by batch (generator training)
        train_images=f"{RESULTS}/data/train_images.npy",
    log:
        f"{RESULTS}/logs/data.log",
    conda:
        "../envs/histodistill.yaml"
    params:
        dataset=DATA_PARAMS,
    script:
        "../workflow_scripts/data.py"
