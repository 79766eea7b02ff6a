# DP mode (privacy.dp.enabled): these rules replace train_autoencoder, train_denoiser, train_embedder and the privacy
# filter. Nothing here reads the private train split except the DP-SGD training and the pool vote (privacy.dp.
# vote_share), whose every release is counted by the accountant.


ruleorder: train_autoencoder_public > train_autoencoder
ruleorder: train_denoiser_dp > train_denoiser
ruleorder: train_embedder_on_pool > train_embedder


rule public_data:
    output:
        images=f"{RESULTS}/public/images.npy",
        labels=f"{RESULTS}/public/labels.npy",
    log:
        f"{RESULTS}/logs/public_data.log",
    conda:
        "../envs/histodistill.yaml"
    params:
        dataset=DATA_PARAMS,
        public=PUBLIC,
    script:
        "../workflow_scripts/public_data.py"


rule train_autoencoder_public:
    input:
        # the public dataset's images; with a pretrained autoencoder instead, the private split's shape only
        images=f"{RESULTS}/public/images.npy" if PUBLIC else f"{RESULTS}/data/train_images.npy",
    output:
        protected(f"{RESULTS}/generator/autoencoder.pt"),
    log:
        f"{RESULTS}/logs/train_autoencoder_public.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_autoencoder_public.tsv"
    priority: 100
    conda:
        "../envs/histodistill.yaml"
    threads: TRAINING_THREADS
    resources:
        gpu=1,
    params:
        autoencoder=config["generator"]["autoencoder"],
        public=PUBLIC,
        seed=config["generator"]["seed"],
        precision=config["precision"],
    script:
        "../workflow_scripts/train_autoencoder_public.py"


rule pretrain_denoiser_public:
    input:
        images=f"{RESULTS}/public/images.npy",
        labels=f"{RESULTS}/public/labels.npy",
        autoencoder=f"{RESULTS}/generator/autoencoder.pt",
    output:
        protected(f"{RESULTS}/generator/public_denoiser.pt"),
    log:
        f"{RESULTS}/logs/pretrain_denoiser_public.log",
    benchmark:
        f"{RESULTS}/benchmarks/pretrain_denoiser_public.tsv"
    priority: 100
    conda:
        "../envs/histodistill.yaml"
    threads: TRAINING_THREADS
    resources:
        gpu=1,
    params:
        denoiser=config["generator"]["denoiser"],
        n_classes=len(CLASSES),
        public=PUBLIC,
        seed=config["generator"]["seed"],
        precision=config["precision"],
        checkpoint=f"{RESULTS}/generator/checkpoints/public_denoiser_last.pt",
    script:
        "../workflow_scripts/pretrain_denoiser_public.py"


rule train_denoiser_dp:
    input:
        real=f"{RESULTS}/data/real.npz",
        train_images=f"{RESULTS}/data/train_images.npy",
        autoencoder=f"{RESULTS}/generator/autoencoder.pt",
        init=[f"{RESULTS}/generator/public_denoiser.pt"] if PUBLIC_PRETRAIN else [],
    output:
        denoiser=protected(f"{RESULTS}/generator/denoiser.pt"),
        budget=f"{RESULTS}/generator/dp_budget.json",
    log:
        f"{RESULTS}/logs/train_denoiser_dp.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_denoiser_dp.tsv"
    priority: 100
    conda:
        "../envs/histodistill.yaml"
    threads: TRAINING_THREADS
    resources:
        gpu=1,
    params:
        denoiser=dp_denoiser_settings(config["generator"]["denoiser"], DP),
        dp=DP,
        seed=config["generator"]["seed"],
        precision=config["precision"],
        checkpoint=f"{RESULTS}/generator/checkpoints/denoiser_last.pt",
    script:
        "../workflow_scripts/train_denoiser_dp.py"


rule train_embedder_on_pool:
    input:
        shards=expand(f"{RESULTS}/pool/shard_{{shard}}.npz", shard=SHARDS),
    output:
        f"{RESULTS}/embedder/{{net}}.pt",
    log:
        f"{RESULTS}/logs/train_embedder_on_pool_{{net}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_embedder_on_pool_{{net}}.tsv"
    wildcard_constraints:
        net="convnet|resnet18",
    priority: 45
    conda:
        "../envs/histodistill.yaml"
    threads: TRAINING_THREADS
    resources:
        gpu=1,
    params:
        embed=config["embed"],
        n_classes=len(CLASSES),
        precision=config["precision"],
    script:
        "../workflow_scripts/train_embedder_on_pool.py"


if DP_VOTE:

    ruleorder: dp_vote > privacy_filter

    # Private Evolution's vote (histodistill/dp_vote.py): each private training image votes for its nearest pool
    # image of its class in the pool embedder's features; the counts are released with Gaussian noise (a share of ε,
    # composed with DP-SGD by the accountant) and each class keeps its most voted images.
    rule dp_vote:
        input:
            shards=expand(f"{RESULTS}/pool/shard_{{shard}}.npz", shard=SHARDS),
            embeddings=f"{RESULTS}/embeddings/{NET}.npy",
            labels=f"{RESULTS}/embeddings/{NET}.labels.npy",
            embedder=[] if NET == "pixels" else [f"{RESULTS}/embedder/{NET}.pt"],
            train_images=f"{RESULTS}/data/train_images.npy",
            real=f"{RESULTS}/data/real.npz",
            denoiser_budget=f"{RESULTS}/generator/dp_budget.json",
        output:
            keep=f"{RESULTS}/pool/privacy_filter.npz",
            removed=f"{RESULTS}/tables/privacy_filter.csv",
            budget=f"{RESULTS}/pool/dp_budget.json",
        log:
            f"{RESULTS}/logs/dp_vote.log",
        benchmark:
            f"{RESULTS}/benchmarks/dp_vote.tsv"
        conda:
            "../envs/histodistill.yaml"
        resources:
            gpu=1,
        params:
            vote_keep=float(DP["vote_keep"]),
            ipc=max(config["select"]["ipc"]),
            seed=config["generator"]["seed"],
        script:
            "../workflow_scripts/dp_vote.py"

else:

    ruleorder: privacy_filter_off > privacy_filter

    rule privacy_filter_off:
        # The filter is refused in DP mode; the selectors' keep flags (all true) come from the pool alone, so that no
        # file computed from the private split lies upstream of a selected set.
        input:
            shards=expand(f"{RESULTS}/pool/shard_{{shard}}.npz", shard=SHARDS),
        output:
            keep=f"{RESULTS}/pool/privacy_filter.npz",
            removed=f"{RESULTS}/tables/privacy_filter.csv",
        log:
            f"{RESULTS}/logs/privacy_filter_off.log",
        conda:
            "../envs/histodistill.yaml"
        script:
            "../workflow_scripts/privacy_filter_off.py"


# The report's utility-privacy figure: this run's accuracy at its ε, over the curve measured at several ε
# (figures.dp_curve; benchmarks/dp_curve.py), with random real at IPC 1 as the line to beat.
rule figure_privacy_budget:
    input:
        summary=f"{RESULTS}/tables/summary.csv",
        budget=DP_BUDGET,
        curve=DP_CURVE,
    output:
        report(
            f"{RESULTS}/figures/privacy_budget.png",
            caption="../report/privacy_budget.rst",
            category="4. Privacy",
            subcategory="differential privacy",
        ),
    log:
        f"{RESULTS}/logs/figure_privacy_budget.log",
    conda:
        "../envs/histodistill.yaml"
    params:
        figures=FIGURES,
        dataset=DS,
    script:
        "../workflow_scripts/figure_privacy_budget.py"
