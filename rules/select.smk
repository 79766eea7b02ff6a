rule find_communities:
    input:
        expand(f"{RESULTS}/graph/{{{{gkey}}}}/class_{{c}}.edges.tsv.gz", c=CLASSES),
    output:
        communities=expand(f"{RESULTS}/communities/{{{{gkey}}}}/class_{{c}}.tsv", c=CLASSES),
        stats=expand(f"{RESULTS}/communities/{{{{gkey}}}}/class_{{c}}.stats.json", c=CLASSES),
    log:
        f"{RESULTS}/logs/find_communities_{{gkey}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/find_communities_{{gkey}}.tsv"
    priority: 45
    conda:
        "../envs/histodistill.yaml"
    threads: 1
    params:
        trials=config["select"]["trials"],
        seed=config["select"]["seed"],
        classes=CLASSES,
    script:
        "../workflow_scripts/find_communities.py"


rule select_infodist:
    input:
        shards=expand(f"{RESULTS}/pool/shard_{{shard}}.npz", shard=SHARDS),
        labels=f"{RESULTS}/embeddings/{NET}.labels.npy",
        communities=expand(f"{RESULTS}/communities/{NET}/class_{{c}}.tsv", c=CLASSES),
        keep=pool_keep("infodist"),
    output:
        f"{RESULTS}/subsets/infodist_ipc{{ipc}}.npz",
    log:
        f"{RESULTS}/logs/select_infodist_ipc{{ipc}}.log",
    wildcard_constraints:
        ipc=r"\d+",
    priority: 45
    conda:
        "../envs/histodistill.yaml"
    params:
        rank=config["select"]["rank"],
    script:
        "../workflow_scripts/select_infodist.py"


rule select_infodist_plus:
    input:
        shards=expand(f"{RESULTS}/pool/shard_{{shard}}.npz", shard=SHARDS),
        embeddings=f"{RESULTS}/embeddings/{NET}.npy",
        labels=f"{RESULTS}/embeddings/{NET}.labels.npy",
        communities=expand(f"{RESULTS}/communities/{NET}+plus/class_{{c}}.tsv", c=CLASSES),
        edges=expand(f"{RESULTS}/graph/{NET}+plus/class_{{c}}.edges.tsv.gz", c=CLASSES),
        keep=pool_keep("infodist_plus"),
        embedder=PLUS_CERTAINTY,
    output:
        f"{RESULTS}/subsets/infodist_plus_ipc{{ipc}}.npz",
    log:
        f"{RESULTS}/logs/select_infodist_plus_ipc{{ipc}}.log",
    wildcard_constraints:
        ipc=r"\d+",
    priority: 45
    conda:
        "../envs/histodistill.yaml"
    resources:
        gpu=1 if PLUS_CERTAINTY else 0,  # the embedder's certainty: a network runs
    params:
        pick=PLUS["pick"],
        quota=PLUS["quota"],
        merge=PLUS["merge"],
        seed=config["select"]["baseline_seed"],
        certainty={k: PLUS[k] for k in ("certainty_weight", "certainty_decay", "kernel", "certainty_gate")},
    script:
        "../workflow_scripts/select_infodist_plus.py"


rule select_ablation:
    input:
        shards=expand(f"{RESULTS}/pool/shard_{{shard}}.npz", shard=SHARDS),
        labels=f"{RESULTS}/embeddings/{{net}}.labels.npy",
        communities=expand(f"{RESULTS}/communities/{{{{net}}}}+{{{{graph}}}}/class_{{c}}.tsv", c=CLASSES),
        keep=pool_keep("infodist"),  # the paper's method on another graph: the same pool as infodist
    output:
        f"{RESULTS}/subsets/infodist-{{net}}-{{graph}}-{{rank}}_ipc{{ipc}}.npz",
    log:
        f"{RESULTS}/logs/select_infodist-{{net}}-{{graph}}-{{rank}}_ipc{{ipc}}.log",
    wildcard_constraints:
        net="convnet|resnet18|pixels",
        graph="[A-Za-z0-9]+",
        rank="modular_centrality|flow|enter_flow|exit_flow",
        ipc=r"\d+",
    priority: 45
    conda:
        "../envs/histodistill.yaml"
    params:
        rank=lambda wc: wc.rank,
    script:
        "../workflow_scripts/select_infodist.py"


rule select_pool_baseline:
    input:
        shards=expand(f"{RESULTS}/pool/shard_{{shard}}.npz", shard=SHARDS),
        embeddings=f"{RESULTS}/embeddings/{NET}.npy",
        labels=f"{RESULTS}/embeddings/{NET}.labels.npy",
        keep=lambda wc: pool_keep(wc.method),
    output:
        f"{RESULTS}/subsets/{{method}}_ipc{{ipc}}.npz",
    log:
        f"{RESULTS}/logs/select_{{method}}_ipc{{ipc}}.log",
    wildcard_constraints:
        method="random_synthetic|kmeans|herding|kcenter",
        ipc=r"\d+",
    priority: 45
    conda:
        "../envs/histodistill.yaml"
    params:
        seed=config["select"]["baseline_seed"],
    script:
        "../workflow_scripts/select_pool_baseline.py"


rule select_random_real:
    input:
        real=f"{RESULTS}/data/real.npz",
    output:
        f"{RESULTS}/subsets/random_real_ipc{{ipc}}.npz",
    log:
        f"{RESULTS}/logs/select_random_real_ipc{{ipc}}.log",
    wildcard_constraints:
        ipc=r"\d+",
    conda:
        "../envs/histodistill.yaml"
    params:
        seed=config["select"]["baseline_seed"],
    script:
        "../workflow_scripts/select_random_real.py"
