import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("8.0")

# The package lives beside the Snakefile (one folder above this file, also when another workflow, such as
# workflows/feasibility.smk, uses this one as a module); make it importable without an install.
REPO = Path(workflow.current_basedir).parent
sys.path.insert(0, str(REPO))

from histodistill.data import source_fingerprint
from histodistill.generator import dp_curve_of, dp_denoiser_settings, public_dataset_of
from histodistill.base import SCHEMA, HistodistillError, check_schema, visible_gpus
from histodistill.workflow import (
    ablation_variants,
    check_config,
    class_names_of,
    data_params,
    dataset_id,
    figure_graphs,
    figure_subsets,
    graph_keys,
    graph_settings,
    n_classes_of,
    plus_settings,
    subset_names,
    uses_pool,
)

try:
    check_schema(config, SCHEMA)
    validate(config, schema="../schemas/config.schema.yaml")
    check_config(config)
except HistodistillError as exc:
    raise WorkflowError(f"histodistill config error: {exc}")

DS = dataset_id(config)
RESULTS = f"{config['results']}/{DS}"
CLASSES = list(range(n_classes_of(config["dataset"]["name"], config["dataset"])))
CLASS_NAMES = class_names_of(config)
CUSTOM = config["dataset"]["name"] == "custom"
DATA_PARAMS = data_params(config)
CUSTOM_FINGERPRINT = source_fingerprint(config["dataset"]) if CUSTOM else None
SHARDS = list(range(config["pool"]["shards"]))
NET = config["embed"]["net"]
SUBSETS = subset_names(config)
GRAPH_KEYS = graph_keys(config)
ABLATION = ablation_variants(config)
PLUS = plus_settings(config)
# the embedder's certainty of every pool image, where infodist_plus weighs it (pick facility, or the certainty gate)
PLUS_CERTAINTY = (
    [f"{RESULTS}/embedder/{NET}.pt"]
    if NET != "pixels" and (PLUS["pick"] == "facility" or PLUS["certainty_gate"] > 0)
    else []
)
SAMPLE_GRIDS = [s for s in SUBSETS if not s.startswith(("full_real", "random_real", "infodist-"))]
# `snakemake figures`: plotting settings live in config["figures"] and reach only figure and report rules.
FIGURES = config["figures"]
FIG_SUBSETS = figure_subsets(config)
FIG_GRAPHS = figure_graphs(config)  # subset -> graph key whose communities chose it
FIG_CLASS = FIGURES["class"]


# Differential privacy (privacy.dp): rules/dp.smk, included only in DP mode, replaces the autoencoder, denoiser and
# embedder rules (ruleorder) with versions that read public data, train with DP-SGD and train on the pool.
DP = config["privacy"]["dp"]
DP_ON = DP["enabled"]
PUBLIC = public_dataset_of(config)
PUBLIC_PRETRAIN = DP_ON and PUBLIC is not None and DP["pretrain_denoiser"]
DP_VOTE = DP_ON and DP["vote_share"] > 0
# the whole run's guarantee: DP-SGD's alone, or composed with the pool vote's release (rule dp_vote)
DP_BUDGET = [f"{RESULTS}/{'pool' if DP_VOTE else 'generator'}/dp_budget.json"] if DP_ON else []
DP_CURVE = dp_curve_of(config, REPO) if DP_ON else []

# The pool's quality report only where a run uses the synthetic pool (a distillers-only run needs no generator).
USES_POOL = uses_pool(config)
POOL_QUALITY = [f"{RESULTS}/pool/quality.json"] if USES_POOL else []
POOL_PRIVACY = [f"{RESULTS}/tables/privacy_pool.csv"] if USES_POOL else []


# A local run on a GPU machine runs at most one GPU job per leasable device slot (histodistill.base.gpu: the visible GPUs,
# or HISTODISTILL_GPUS), unless `--resources gpu=N` (profiles/gpu) says otherwise: waiting GPU jobs then queue in
# snakemake's scheduler, where rule priorities apply (the generator's chain first), instead of all starting at once
# and waiting on the lease's lock files. No limit without a visible GPU (CPU runs stay parallel) or on a cluster.
if workflow.local_exec and "gpu" not in workflow.global_resources:
    _GPU_SLOTS = len(visible_gpus())
    if _GPU_SLOTS:
        workflow.register_resource("gpu", _GPU_SLOTS)


# Threads per job are fixed, never taken from --cores: torch splits a network's floating-point sums among its
# threads, so a count that followed --cores would make the pool, and every number after it, depend on the machine's
# core count. Network training (generator, embedder, full-real evaluation) runs on 2 threads (1.6-1.8x faster than
# one on 2 cores: the default run's critical path), every other job on one. For more speed on a large CPU machine,
# at the price of that reproducibility: `--set-threads train_denoiser=8` (the SLURM profile does so).
TRAINING_THREADS = 2


# Input functions (kept here so that rule files hold rules only).

# Pool selectors that choose from the whole pool although the privacy filter is on (select.privacy_filter.unfiltered;
# the paper preset's infodist). In DP mode the keep flags are the pool vote's (or all true) and bind every selector.
UNFILTERED = set() if DP_ON else set(config["select"]["privacy_filter"]["unfiltered"])


def pool_keep(method):
    """The keep flags a pool selector reads: the privacy filter's (or the DP vote's), none for an unfiltered one."""
    return [] if method in UNFILTERED else [f"{RESULTS}/pool/privacy_filter.npz"]


def figure_embedding_input(wildcards):
    """The real train split's embeddings (the background of the projection) where they are in the pool embedder's
    space: the privacy audit embeds the train split with the convnet embedder."""
    if NET != "convnet":
        return {}
    return {
        "real": f"{RESULTS}/data/real.npz",
        "real_embeddings": f"{RESULTS}/privacy/train_embeddings.npy",
    }


def data_input(wildcards):
    return {"split": f"{RESULTS}/data/split.csv"} if CUSTOM else {}


def embedder_input(wildcards):
    return [] if wildcards.net == "pixels" else [f"{RESULTS}/embedder/{wildcards.net}.pt"]


def graph_embeddings(wildcards):
    """The pool's embeddings and labels; with DP mode's pool vote also its keep flags: the class graphs are then built
    among the kept images, so that communities, hubs and walks describe what the selectors may take."""
    net = wildcards.gkey.partition("+")[0]
    vote = {"keep": f"{RESULTS}/pool/privacy_filter.npz"} if DP_VOTE else {}
    return {
        "embeddings": f"{RESULTS}/embeddings/{net}.npy",
        "labels": f"{RESULTS}/embeddings/{net}.labels.npy",
        **vote,
    }


# distill.mtt.zca: the transform the experts, MTT and the evaluation of MTT's sets share (rule fit_zca)
ZCA = [f"{RESULTS}/experts/zca.npz"] if config["distill"]["mtt"]["zca"] else []


def zca_input(wildcards):
    return ZCA if wildcards.subset.startswith("mtt_ipc") else []


def subset_input(wildcards):
    if wildcards.subset == "full_real_ipcall":
        return []
    return [f"{RESULTS}/subsets/{wildcards.subset}.npz"]
