"""Rule figure_embedding: for each figure subset picked from communities, one class's pool embeddings in 2-D (PCA,
t-SNE), coloured by community, selected images marked, real train images of the class as a faint background."""

import numpy as np
import pandas as pd

from histodistill.base import load_npy, load_npz, run_job
from histodistill.reporting import class_nodes, embedding_figure


def main(smk, device):
    p, c = smk.params.figures, int(smk.params.figures["class"])
    labels = load_npy(smk.input.labels)
    emb = np.asarray(load_npy(smk.input.embeddings, mmap_mode="r")[np.flatnonzero(labels == c)])
    real = None
    if smk.input.get("real_embeddings"):  # the same embedder's train-split embeddings (the privacy audit's)
        real_labels = load_npz(smk.input.real, required=("train_labels",), only_required=True)["train_labels"]
        real = load_npy(smk.input.real_embeddings, mmap_mode="r")[np.flatnonzero(real_labels.reshape(-1) == c)]
    files = zip(smk.params.subsets, smk.params.graphs, smk.input.communities, smk.input.subsets)
    for (name, graph, communities, subset), figure in zip(files, smk.output, strict=True):
        embedding_figure(
            emb,
            pd.read_csv(communities, sep="\t").sort_values("node")["module"].to_numpy(),
            class_nodes(labels, load_npz(subset, required=("indices",))["indices"], c),
            real,
            figure,
            max_points=p["projection_points"],
            seed=p["seed"],
            title=f"{smk.params.dataset}, class {smk.params.class_names[c]}, {name} (communities of graph {graph})",
            dpi=p["dpi"],
        )


run_job(snakemake, main)  # noqa: F821
