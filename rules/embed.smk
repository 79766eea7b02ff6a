rule train_embedder:
    input:
        real=f"{RESULTS}/data/real.npz",
    output:
        f"{RESULTS}/embedder/{{net}}.pt",
    log:
        f"{RESULTS}/logs/train_embedder_{{net}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_embedder_{{net}}.tsv"
    wildcard_constraints:
        net="convnet|resnet18",
    # First, before the generator chain (100): it needs only the real data; started later, a 2-thread job waits for
    # both cores to be free while the pool's selection chain waits for it.
    priority: 110
    conda:
        "../envs/histodistill.yaml"
    threads: TRAINING_THREADS
    resources:
        gpu=1,
    params:
        embed=config["embed"],
        precision=config["precision"],
    script:
        "../workflow_scripts/train_embedder.py"


rule embed_pool:
    input:
        shards=expand(f"{RESULTS}/pool/shard_{{shard}}.npz", shard=SHARDS),
        embedder=embedder_input,
    output:
        embeddings=f"{RESULTS}/embeddings/{{net}}.npy",
        labels=f"{RESULTS}/embeddings/{{net}}.labels.npy",
    log:
        f"{RESULTS}/logs/embed_pool_{{net}}.log",
    wildcard_constraints:
        net="convnet|resnet18|pixels",
    # the selection chain (45) before evaluations and distillers (0), which fill the cores it leaves
    priority: 45
    conda:
        "../envs/histodistill.yaml"
    threads: 1
    resources:
        gpu=1,
    script:
        "../workflow_scripts/embed_pool.py"
