# One job draws every grid: each takes a fraction of a second, less than a job's start-up.
rule sample_grids:
    input:
        expand(f"{RESULTS}/subsets/{{subset}}.npz", subset=SAMPLE_GRIDS),
    output:
        report(
            expand(f"{RESULTS}/figures/samples_{{subset}}.png", subset=SAMPLE_GRIDS),
            caption="../report/samples.rst",
            category="3. Selected images",
        ),
    log:
        f"{RESULTS}/logs/sample_grids.log",
    conda:
        "../envs/histodistill.yaml"
    params:
        class_names=CLASS_NAMES,
        subsets=SAMPLE_GRIDS,
    script:
        "../workflow_scripts/sample_grids.py"


# ----------------------------------------------------------------------------- `snakemake figures` and the report
# Every figure rule reads workflow files only and takes its plotting settings from config["figures"] (params), so
# changing a plotting setting reruns figure and report rules and nothing upstream. One job draws every file of its
# figure (as sample_grids does): each takes a second or two, less than a job's start-up.


rule figure_classes:
    input:
        real=f"{RESULTS}/data/real.npz",
        train_images=f"{RESULTS}/data/train_images.npy",
        shards=expand(f"{RESULTS}/pool/shard_{{shard}}.npz", shard=SHARDS),
        subsets=expand(f"{RESULTS}/subsets/{{subset}}.npz", subset=FIG_SUBSETS),
    output:
        report(
            expand(f"{RESULTS}/figures/classes_{{subset}}.png", subset=FIG_SUBSETS),
            caption="../report/classes.rst",
            category="3. Selected images",
        ),
    log:
        f"{RESULTS}/logs/figure_classes.log",
    conda:
        "../envs/histodistill.yaml"
    params:
        figures=FIGURES,
        class_names=CLASS_NAMES,
        dataset=DS,
        subsets=FIG_SUBSETS,
    script:
        "../workflow_scripts/figure_classes.py"


rule figure_graph:
    input:
        edges=[f"{RESULTS}/graph/{g}/class_{FIG_CLASS}.edges.tsv.gz" for g in FIG_GRAPHS.values()],
        communities=[f"{RESULTS}/communities/{g}/class_{FIG_CLASS}.tsv" for g in FIG_GRAPHS.values()],
        labels=f"{RESULTS}/embeddings/{NET}.labels.npy",
        subsets=expand(f"{RESULTS}/subsets/{{subset}}.npz", subset=list(FIG_GRAPHS)),
    output:
        report(
            expand(f"{RESULTS}/figures/graph_{{subset}}.png", subset=list(FIG_GRAPHS)),
            caption="../report/graph.rst",
            category="2. Graph and communities",
        ),
    log:
        f"{RESULTS}/logs/figure_graph.log",
    conda:
        "../envs/histodistill.yaml"
    params:
        figures=FIGURES,
        class_names=CLASS_NAMES,
        dataset=DS,
        subsets=list(FIG_GRAPHS),
        graphs=list(FIG_GRAPHS.values()),
    script:
        "../workflow_scripts/figure_graph.py"


rule figure_embedding:
    input:
        unpack(figure_embedding_input),
        embeddings=f"{RESULTS}/embeddings/{NET}.npy",
        labels=f"{RESULTS}/embeddings/{NET}.labels.npy",
        communities=[f"{RESULTS}/communities/{g}/class_{FIG_CLASS}.tsv" for g in FIG_GRAPHS.values()],
        subsets=expand(f"{RESULTS}/subsets/{{subset}}.npz", subset=list(FIG_GRAPHS)),
    output:
        report(
            expand(f"{RESULTS}/figures/embedding_{{subset}}.png", subset=list(FIG_GRAPHS)),
            caption="../report/embedding.rst",
            category="2. Graph and communities",
        ),
    log:
        f"{RESULTS}/logs/figure_embedding.log",
    conda:
        "../envs/histodistill.yaml"
    params:
        figures=FIGURES,
        class_names=CLASS_NAMES,
        dataset=DS,
        subsets=list(FIG_GRAPHS),
        graphs=list(FIG_GRAPHS.values()),
    script:
        "../workflow_scripts/figure_embedding.py"


rule figure_metric_ipc:
    input:
        f"{RESULTS}/tables/summary.csv",
    output:
        report(
            expand(f"{RESULTS}/figures/{{metric}}_ipc.png", metric=["acc", "auc"]),
            caption="../report/metric_ipc.rst",
            category="1. Accuracy",
        ),
    log:
        f"{RESULTS}/logs/figure_metric_ipc.log",
    conda:
        "../envs/histodistill.yaml"
    params:
        figures=FIGURES,
        dataset=DS,
        metrics=["acc", "auc"],
    script:
        "../workflow_scripts/figure_metric_ipc.py"


rule figure_privacy:
    input:
        f"{RESULTS}/tables/privacy.csv",
    output:
        report(
            f"{RESULTS}/figures/privacy_overview.png",
            caption="../report/privacy_overview.rst",
            category="4. Privacy",
        ),
    log:
        f"{RESULTS}/logs/figure_privacy.log",
    conda:
        "../envs/histodistill.yaml"
    params:
        figures=FIGURES,
        dataset=DS,
    script:
        "../workflow_scripts/figure_privacy.py"


rule report_tables:
    input:
        summary=f"{RESULTS}/tables/summary.csv",
        privacy=f"{RESULTS}/tables/privacy.md",
        dp_budget=DP_BUDGET,
    output:
        markdown=f"{RESULTS}/tables/methods.md",
        latex=f"{RESULTS}/tables/methods.tex",
        summary_html=report(
            f"{RESULTS}/tables/summary.html",
            caption="../report/summary_table.rst",
            category="0. Tables",
        ),
        privacy_html=report(
            f"{RESULTS}/tables/privacy.html",
            caption="../report/privacy_table.rst",
            category="0. Tables",
        ),
        config_html=report(
            f"{RESULTS}/tables/config.html",
            caption="../report/config.rst",
            category="0. Tables",
        ),
    log:
        f"{RESULTS}/logs/report_tables.log",
    conda:
        "../envs/histodistill.yaml"
    params:
        dataset=DS,
        config=config,  # shown in the report; this cheap job reruns on any config change
    script:
        "../workflow_scripts/report_tables.py"
