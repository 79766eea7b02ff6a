# histodistill: distil a private medical image dataset into a small, shareable synthetic training set.
# `snakemake --cores all` runs the default config (embedded digits); `--configfile configs/<preset>.yaml` others.


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/generator.smk"
include: "rules/pool.smk"
include: "rules/embed.smk"
include: "rules/graph.smk"
include: "rules/select.smk"
include: "rules/distill.smk"
include: "rules/evaluate.smk"
include: "rules/figures.smk"
include: "rules/privacy.smk"
include: "rules/share.smk"


if DP_ON:

    include: "rules/dp.smk"


rule all:
    default_target: True
    input:
        f"{RESULTS}/tables/summary.csv",
        f"{RESULTS}/tables/summary.md",
        f"{RESULTS}/figures/accuracy.png",
        POOL_QUALITY,
        f"{RESULTS}/tables/privacy.csv",
        f"{RESULTS}/tables/privacy.md",
        POOL_PRIVACY,
        f"{RESULTS}/share",
        expand(f"{RESULTS}/figures/samples_{{subset}}.png", subset=SAMPLE_GRIDS),


# Every table and figure of the paper, and what the report shows: `snakemake --cores all figures`, then
# `snakemake figures --report report.html` (or `make report`, which also takes a screenshot in headless Chromium).
FIGURE_FILES = [
    f"{RESULTS}/figures/accuracy.png",
    *expand(f"{RESULTS}/figures/{{metric}}_ipc.png", metric=["acc", "auc"]),
    *expand(f"{RESULTS}/figures/classes_{{subset}}.png", subset=FIG_SUBSETS),
    *expand(f"{RESULTS}/figures/graph_{{subset}}.png", subset=list(FIG_GRAPHS)),
    *expand(f"{RESULTS}/figures/embedding_{{subset}}.png", subset=list(FIG_GRAPHS)),
    *expand(f"{RESULTS}/figures/samples_{{subset}}.png", subset=SAMPLE_GRIDS),
    *expand(f"{RESULTS}/figures/privacy_{{kind}}_{{subset}}.png", kind=["pairs", "dcr"], subset=PRIVACY_SUBSETS),
    f"{RESULTS}/figures/privacy_overview.png",
]
if DP_ON:
    FIGURE_FILES.append(f"{RESULTS}/figures/privacy_budget.png")
TABLE_FILES = expand(
    f"{RESULTS}/tables/{{name}}", name=["methods.md", "methods.tex", "summary.html", "privacy.html", "config.html"]
)


rule figures:
    input:
        FIGURE_FILES,
        TABLE_FILES,
    localrule: True
