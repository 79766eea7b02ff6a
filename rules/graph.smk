# One job per graph builds every class's graph: they all read one embedding file, so they go stale together, and
# a job per class cost more in start-up than the graphs take to build.
# {gkey} is the embedder (main graph, settings from graph:) or `{net}+{name}` (an ablation.graphs setting).
rule build_graph:
    input:
        unpack(graph_embeddings),
    output:
        expand(f"{RESULTS}/graph/{{{{gkey}}}}/class_{{c}}.edges.tsv.gz", c=CLASSES),
    log:
        f"{RESULTS}/logs/build_graph_{{gkey}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/build_graph_{{gkey}}.tsv"
    wildcard_constraints:
        gkey=r"(convnet|resnet18|pixels)(\+[A-Za-z0-9]+)?",
    priority: 45
    conda:
        "../envs/histodistill.yaml"
    threads: 1
    params:
        graph=lambda wc: graph_settings(config, wc.gkey),
        classes=CLASSES,
    script:
        "../workflow_scripts/build_graph.py"
