"""Rule find_communities: two-level directed Infomap on each class graph; per-node module, centrality, flows."""

import logging

from histodistill.base import atomic_write_bytes, run_job, write_json
from histodistill.selection import find_communities, read_edges


def main(smk, device):
    outputs = zip(smk.params.classes, smk.input, smk.output.communities, smk.output.stats, strict=True)
    for c, edges, communities, stats_file in outputs:
        graph = read_edges(edges)
        df = find_communities(graph, trials=smk.params.trials, seed=smk.params.seed)
        stats = {
            "graph": smk.wildcards.gkey,
            "class": int(c),
            "n_nodes": graph.n_nodes,
            "n_edges": graph.n_edges,
            "edge_density": graph.density,
            "n_modules": int(df["module"].nunique()),
        }
        logging.getLogger("histodistill").info("%s", stats)
        atomic_write_bytes(communities, df.to_csv(sep="\t", index=False, float_format="%.10g").encode())
        write_json(stats_file, stats)


run_job(snakemake, main)  # noqa: F821
