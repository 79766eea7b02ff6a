"""Rule build_graph: the directed softmax-of-inverse-distance graph of each class, as gzipped edge lists."""

import logging

import numpy as np

from histodistill.graph import GraphConfig, build_graph, write_edges
from histodistill.io import check_embedding_file, load_npy
from histodistill.workflow import run_job


def main(smk, device):
    emb = load_npy(smk.input.embeddings)
    labels = load_npy(smk.input.labels)
    check_embedding_file(smk.input.embeddings, emb, len(labels))
    config = GraphConfig(**smk.params.graph)
    for c, out in zip(smk.params.classes, smk.output, strict=True):
        members = np.where(labels == c)[0]
        graph = build_graph(emb[members], config, where=f"{smk.input.embeddings} (class {c})")
        logging.getLogger("histodistill").info(
            "class %d: %d nodes, %d edges (density %.4f)", c, graph.n_nodes, graph.n_edges, graph.density
        )
        write_edges(out, graph)


run_job(snakemake, main)  # noqa: F821
