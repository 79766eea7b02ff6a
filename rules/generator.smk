rule train_autoencoder:
    input:
        # the train split as an uncompressed array: batches are read from disk, the split is never held whole
        train_images=f"{RESULTS}/data/train_images.npy",
    output:
        protected(f"{RESULTS}/generator/autoencoder.pt"),
    log:
        f"{RESULTS}/logs/train_autoencoder.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_autoencoder.tsv"
    # The generator chain is the run's critical path. Snakemake starts the set of jobs with the largest sum of
    # priorities, so 100 outranks any two 1-core jobs (at most 45 each) that could otherwise hold it back.
    priority: 100
    conda:
        "../envs/histodistill.yaml"
    threads: TRAINING_THREADS
    resources:
        gpu=1,
    params:
        autoencoder=config["generator"]["autoencoder"],
        seed=config["generator"]["seed"],
        precision=config["precision"],
        compile=config["generator"]["compile"],
    script:
        "../workflow_scripts/train_autoencoder.py"


rule train_denoiser:
    input:
        real=f"{RESULTS}/data/real.npz",
        train_images=f"{RESULTS}/data/train_images.npy",
        autoencoder=f"{RESULTS}/generator/autoencoder.pt",
    output:
        protected(f"{RESULTS}/generator/denoiser.pt"),
    log:
        f"{RESULTS}/logs/train_denoiser.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_denoiser.tsv"
    priority: 100
    conda:
        "../envs/histodistill.yaml"
    threads: TRAINING_THREADS
    resources:
        gpu=1,
    params:
        denoiser=config["generator"]["denoiser"],
        seed=config["generator"]["seed"],
        precision=config["precision"],
        compile=config["generator"]["compile"],
        # Periodic checkpoints live beside the output (not declared, so a failed or killed job keeps them).
        checkpoint=f"{RESULTS}/generator/checkpoints/denoiser_last.pt",
    script:
        "../workflow_scripts/train_denoiser.py"
