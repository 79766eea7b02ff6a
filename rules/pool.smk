rule sample_pool_shard:
    input:
        autoencoder=f"{RESULTS}/generator/autoencoder.pt",
        denoiser=f"{RESULTS}/generator/denoiser.pt",
    output:
        f"{RESULTS}/pool/shard_{{shard}}.npz",
    log:
        f"{RESULTS}/logs/sample_pool_shard_{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/sample_pool_shard_{{shard}}.tsv"
    priority: 40
    conda:
        "../envs/histodistill.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        per_class=config["pool"]["per_class"],
        scheduler=config["pool"]["scheduler"],
        steps=config["pool"]["steps"],
        guidance=config["pool"]["guidance"],
        batch_size=config["pool"]["batch_size"],
        compile=config["pool"]["compile"],
        precision=config["precision"],
        seed=lambda wc: config["pool"]["base_seed"] + int(wc.shard),
    script:
        "../workflow_scripts/sample_pool_shard.py"


rule pool_quality:
    input:
        real=f"{RESULTS}/data/real.npz",
        shards=expand(f"{RESULTS}/pool/shard_{{shard}}.npz", shard=SHARDS),
        embedder=f"{RESULTS}/embedder/convnet.pt",
    output:
        f"{RESULTS}/pool/quality.json",
    log:
        f"{RESULTS}/logs/pool_quality.log",
    conda:
        "../envs/histodistill.yaml"
    resources:
        gpu=1,
    script:
        "../workflow_scripts/pool_quality.py"
