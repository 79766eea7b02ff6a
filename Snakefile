# histodistill: distil a private medical image dataset into a small, shareable synthetic training set.
# `snakemake --cores all` runs the default config (embedded digits); `--configfile configs/<preset>.yaml` others.


configfile: "config.yaml"


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
