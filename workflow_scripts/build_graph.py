"""Rule build_graph: the directed softmax-of-inverse-distance graph of each class, as gzipped edge lists; with DP
mode's pool vote (input `keep`), among the kept images only, the others isolated nodes of the class's numbering."""

import logging

import numpy as np

from histodistill.base import check_embedding_file, load_npy, load_npz, run_job
from histodistill.selection import GraphConfig, build_graph_among, write_edges


def main(smk, device):
    emb = load_npy(smk.input.embeddings)
    labels = load_npy(smk.input.labels)
    check_embedding_file(smk.input.embeddings, emb, len(labels))
    keep = load_npz(smk.input.keep, required=("keep",))["keep"] if smk.input.get("keep") else np.ones(len(labels), bool)
    config = GraphConfig(**smk.params.graph)
    for c, out in zip(smk.params.classes, smk.output, strict=True):
        members = np.where(labels == c)[0]
        graph = build_graph_among(emb[members], keep[members], config, where=f"{smk.input.embeddings} (class {c})")
        logging.getLogger("histodistill").info(
            "class %d: %d nodes (%d kept), %d edges (density %.4f)",
            c,
            graph.n_nodes,
            int(keep[members].sum()),
            graph.n_edges,
            graph.density,
        )
        write_edges(out, graph)


run_job(snakemake, main)  # noqa: F821
