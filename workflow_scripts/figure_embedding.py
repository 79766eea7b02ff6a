"""Rule figure_embedding: one class's pool embeddings in 2-D (PCA, t-SNE), coloured by community, selected images
marked, real train images of the class as a faint background."""

import numpy as np
import pandas as pd

from histodistill.figures import class_nodes, embedding_figure
from histodistill.io import load_npy, load_npz
from histodistill.workflow import run_job


def main(smk, device):
    p, c = smk.params.figures, int(smk.params.figures["class"])
    labels = load_npy(smk.input.labels)
    rows = np.flatnonzero(labels == c)
    emb = load_npy(smk.input.embeddings, mmap_mode="r")
    communities = pd.read_csv(smk.input.communities, sep="\t").sort_values("node")
    subset = load_npz(smk.input.subset, required=("indices",))
    real = None
    if smk.input.get("real_embeddings"):  # the same embedder's train-split embeddings (the privacy audit's)
        real_labels = load_npz(smk.input.real, required=("train_labels",), only_required=True)["train_labels"]
        real = load_npy(smk.input.real_embeddings, mmap_mode="r")[np.flatnonzero(real_labels.reshape(-1) == c)]
    embedding_figure(
        np.asarray(emb[rows]),
        communities["module"].to_numpy(),
        class_nodes(labels, subset["indices"], c),
        real,
        smk.output[0],
        max_points=p["projection_points"],
        seed=p["seed"],
        title=f"{smk.params.dataset}, class {smk.params.class_names[c]}, {smk.wildcards.subset} "
        f"(communities of graph {smk.params.graph})",
        dpi=p["dpi"],
    )


run_job(snakemake, main)  # noqa: F821
