"""Rule build_graph_kept (DP mode with the pool vote): each class's graph among the images the vote kept, in the
class's node numbering (the others isolated), so that communities, hubs and walks describe the kept pool."""

import logging

import numpy as np

from histodistill.graph import GraphConfig, build_graph_among, write_edges
from histodistill.io import check_embedding_file, load_npy, load_npz
from histodistill.workflow import run_job


def main(smk, device):
    emb = load_npy(smk.input.embeddings)
    labels = load_npy(smk.input.labels)
    check_embedding_file(smk.input.embeddings, emb, len(labels))
    keep = load_npz(smk.input.keep, required=("keep",))["keep"]
    config = GraphConfig(**smk.params.graph)
    for c, out in zip(smk.params.classes, smk.output, strict=True):
        members = np.where(labels == c)[0]
        graph = build_graph_among(emb[members], keep[members], config, where=f"{smk.input.embeddings} (class {c})")
        logging.getLogger("histodistill").info(
            "class %d: %d nodes, %d kept, %d edges", c, graph.n_nodes, int(keep[members].sum()), graph.n_edges
        )
        write_edges(out, graph)


run_job(snakemake, main)  # noqa: F821
