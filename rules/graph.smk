rule build_graph:
    input:
        embeddings=f"{RESULTS}/embeddings/{{net}}.npy",
        labels=f"{RESULTS}/embeddings/{{net}}.labels.npy",
    output:
        f"{RESULTS}/graph/{{net}}/class_{{c}}.edges.tsv.gz",
    log:
        f"{RESULTS}/logs/build_graph_{{net}}_class_{{c}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/build_graph_{{net}}_class_{{c}}.tsv"
    conda:
        "../envs/histodistill.yaml"
    threads: 1
    params:
        graph=config["graph"],
    script:
        "../workflow_scripts/build_graph.py"
