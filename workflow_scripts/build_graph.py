"""Rule build_graph: the directed softmax-of-inverse-distance graph of one class, as a gzipped edge list."""

import logging

import numpy as np

from histodistill.io import check_embedding_file
from histodistill.graph import GraphConfig, build_graph, write_edges
from histodistill.io import load_npy
from histodistill.workflow import run_job


def main(smk, device):
    emb = load_npy(smk.input.embeddings)
    labels = load_npy(smk.input.labels)
    check_embedding_file(smk.input.embeddings, emb, len(labels))
    c = int(smk.wildcards.c)
    members = np.where(labels == c)[0]
    graph = build_graph(emb[members], GraphConfig(**smk.params.graph), where=f"{smk.input.embeddings} (class {c})")
    logging.getLogger("histodistill").info(
        "class %d: %d nodes, %d edges (density %.4f)", c, graph.n_nodes, graph.n_edges, graph.density
    )
    write_edges(smk.output[0], graph)


run_job(snakemake, main)  # noqa: F821
