# {gkey} is the embedder (main graph, settings from graph:) or `{net}+{name}` (an ablation.graphs setting).
rule build_graph:
    input:
        unpack(graph_embeddings),
    output:
        f"{RESULTS}/graph/{{gkey}}/class_{{c}}.edges.tsv.gz",
    log:
        f"{RESULTS}/logs/build_graph_{{gkey}}_class_{{c}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/build_graph_{{gkey}}_class_{{c}}.tsv"
    wildcard_constraints:
        gkey=r"(convnet|resnet18|pixels)(\+[A-Za-z0-9]+)?",
    priority: 45
    conda:
        "../envs/histodistill.yaml"
    threads: 1
    params:
        graph=lambda wc: graph_settings(config, wc.gkey),
    script:
        "../workflow_scripts/build_graph.py"
