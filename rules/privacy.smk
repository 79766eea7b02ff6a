PRIVACY_SUBSETS = [s for s in SUBSETS if not s.startswith("full_real")]
GATE = {**config["privacy"]["gate"], "share_real_init": config["privacy"]["share_real_init"]}
RELEASE_SIZES = [ipc * len(CLASSES) for ipc in config["select"]["ipc"]]
# Planted controls need synthetic images to hide a copy among, and the autoencoder to disguise one.
CONTROLS = [f"{RESULTS}/privacy/controls.json"] if USES_POOL else []
GENERATOR_AUDIT = [f"{RESULTS}/privacy/generator.json"] if USES_POOL else []


rule privacy_train_embeddings:
    input:
        real=f"{RESULTS}/data/real.npz",
        embedder=f"{RESULTS}/embedder/convnet.pt",
    output:
        f"{RESULTS}/privacy/train_embeddings.npy",
    log:
        f"{RESULTS}/logs/privacy_train_embeddings.log",
    benchmark:
        f"{RESULTS}/benchmarks/privacy_train_embeddings.tsv"
    priority: 45
    conda:
        "../envs/histodistill.yaml"
    threads: 1
    resources:
        gpu=1,
    script:
        "../workflow_scripts/privacy_train_embeddings.py"


rule privacy_reference:
    input:
        real=f"{RESULTS}/data/real.npz",
        embedder=f"{RESULTS}/embedder/convnet.pt",
        train_embeddings=f"{RESULTS}/privacy/train_embeddings.npy",
    output:
        reference=f"{RESULTS}/privacy/reference.npz",
        controls=f"{RESULTS}/privacy/reference.json",
    log:
        f"{RESULTS}/logs/privacy_reference.log",
    benchmark:
        f"{RESULTS}/benchmarks/privacy_reference.tsv"
    conda:
        "../envs/histodistill.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        chunk=config["privacy"]["chunk"],
        k=config["privacy"]["k"],
        seed=config["privacy"]["seed"],
        planted=config["privacy"]["planted"],
        planted_noise=config["privacy"]["planted_noise"],
        release_shift=config["privacy"]["release_shift"],
        alpha=config["privacy"]["gate"]["release_alpha"],
        tail=config["privacy"]["release_tail"],
        sizes=RELEASE_SIZES,
    script:
        "../workflow_scripts/privacy_reference.py"


rule privacy_filter:
    input:
        real=f"{RESULTS}/data/real.npz",
        shards=expand(f"{RESULTS}/pool/shard_{{shard}}.npz", shard=SHARDS),
        embedder=f"{RESULTS}/embedder/convnet.pt",
        train_embeddings=f"{RESULTS}/privacy/train_embeddings.npy",
    output:
        keep=f"{RESULTS}/pool/privacy_filter.npz",
        removed=f"{RESULTS}/tables/privacy_filter.csv",
    log:
        f"{RESULTS}/logs/privacy_filter.log",
    benchmark:
        f"{RESULTS}/benchmarks/privacy_filter.tsv"
    priority: 45
    conda:
        "../envs/histodistill.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        chunk=config["privacy"]["chunk"],
        privacy_filter=config["select"]["privacy_filter"],
    script:
        "../workflow_scripts/privacy_filter.py"


rule privacy_pool:
    input:
        real=f"{RESULTS}/data/real.npz",
        shards=expand(f"{RESULTS}/pool/shard_{{shard}}.npz", shard=SHARDS),
        embedder=f"{RESULTS}/embedder/convnet.pt",
        train_embeddings=f"{RESULTS}/privacy/train_embeddings.npy",
        keep=f"{RESULTS}/pool/privacy_filter.npz",
        reference=f"{RESULTS}/privacy/reference.npz",
    output:
        json=f"{RESULTS}/privacy/pool.json",
        csv=f"{RESULTS}/tables/privacy_pool.csv",
    log:
        f"{RESULTS}/logs/privacy_pool.log",
    benchmark:
        f"{RESULTS}/benchmarks/privacy_pool.tsv"
    conda:
        "../envs/histodistill.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        chunk=config["privacy"]["chunk"],
        near_copy_quantile=config["privacy"]["near_copy_quantile"],
        margin=config["privacy"]["pool_test"]["margin"],
        n_boot=config["privacy"]["pool_test"]["bootstrap"],
        min_power=config["privacy"]["pool_test"]["min_power"],
        seed=config["privacy"]["seed"],
    script:
        "../workflow_scripts/privacy_pool.py"


rule privacy_audit:
    input:
        real=f"{RESULTS}/data/real.npz",
        subset=f"{RESULTS}/subsets/{{subset}}.npz",
        embedder=f"{RESULTS}/embedder/convnet.pt",
        reference=f"{RESULTS}/privacy/reference.npz",
    output:
        json=f"{RESULTS}/privacy/{{subset}}.json",
        pairs=report(
            f"{RESULTS}/figures/privacy_pairs_{{subset}}.png",
            caption="../report/privacy_pairs.rst",
            category="4. Privacy",
            subcategory="closest pairs",
        ),
        histogram=report(
            f"{RESULTS}/figures/privacy_dcr_{{subset}}.png",
            caption="../report/privacy_dcr.rst",
            category="4. Privacy",
            subcategory="distances to closest record",
        ),
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
        chunk=config["privacy"]["chunk"],
        bootstrap=config["privacy"]["bootstrap"],
        seed=config["privacy"]["seed"],
        near_copy_quantile=config["privacy"]["near_copy_quantile"],
        power_reps=config["privacy"]["power_reps"],
        alpha=config["privacy"]["gate"]["release_alpha"],
        tail=config["privacy"]["release_tail"],
        margin=config["privacy"]["gate"]["dcr_share_margin"],
    script:
        "../workflow_scripts/privacy_audit.py"


rule privacy_controls:
    input:
        real=f"{RESULTS}/data/real.npz",
        shards=expand(f"{RESULTS}/pool/shard_{{shard}}.npz", shard=SHARDS),
        autoencoder=f"{RESULTS}/generator/autoencoder.pt",
        embedder=f"{RESULTS}/embedder/convnet.pt",
        reference=f"{RESULTS}/privacy/reference.npz",
    output:
        f"{RESULTS}/privacy/controls.json",
    log:
        f"{RESULTS}/logs/privacy_controls.log",
    benchmark:
        f"{RESULTS}/benchmarks/privacy_controls.tsv"
    conda:
        "../envs/histodistill.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        ipc=config["select"]["ipc"],
        chunk=config["privacy"]["chunk"],
        bootstrap=config["privacy"]["bootstrap"],
        seed=config["privacy"]["seed"],
        planted_noise=config["privacy"]["planted_noise"],
        alpha=config["privacy"]["gate"]["release_alpha"],
        tail=config["privacy"]["release_tail"],
        margin=config["privacy"]["gate"]["dcr_share_margin"],
        gate=GATE,
    script:
        "../workflow_scripts/privacy_controls.py"


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
        gate=GATE,
    script:
        "../workflow_scripts/privacy_table.py"


rule train_attack_control:
    input:
        real=f"{RESULTS}/data/real.npz",
        train_images=f"{RESULTS}/data/train_images.npy",
        autoencoder=f"{RESULTS}/generator/autoencoder.pt",
    output:
        f"{RESULTS}/generator/attack_control.pt",
    log:
        f"{RESULTS}/logs/train_attack_control.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_attack_control.tsv"
    priority: 40
    conda:
        "../envs/histodistill.yaml"
    threads: TRAINING_THREADS
    resources:
        gpu=1,
    params:
        denoiser=config["generator"]["denoiser"],
        images=config["privacy"]["generator_attack"]["control_images"],
        steps=config["privacy"]["generator_attack"]["control_steps"],
        seed=config["privacy"]["seed"],
    script:
        "../workflow_scripts/train_attack_control.py"


rule privacy_generator:
    input:
        real=f"{RESULTS}/data/real.npz",
        train_images=f"{RESULTS}/data/train_images.npy",
        autoencoder=f"{RESULTS}/generator/autoencoder.pt",
        denoiser=f"{RESULTS}/generator/denoiser.pt",
        control=f"{RESULTS}/generator/attack_control.pt",
    output:
        f"{RESULTS}/privacy/generator.json",
    log:
        f"{RESULTS}/logs/privacy_generator.log",
    benchmark:
        f"{RESULTS}/benchmarks/privacy_generator.tsv"
    conda:
        "../envs/histodistill.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        seed=config["privacy"]["seed"],
        bootstrap=config["privacy"]["bootstrap"],
        control_min_tpr=config["privacy"]["generator_attack"]["control_min_tpr"],
        max_auc=config["privacy"]["gate"]["mia_auc"],
    script:
        "../workflow_scripts/privacy_generator.py"
