"""Rule figure_graph: for each figure subset picked from communities, one class's similarity graph, nodes coloured by
community, the selected images highlighted."""

import pandas as pd

from histodistill.base import load_npy, load_npz, run_job
from histodistill.reporting import class_nodes, graph_figure, read_edge_table


def main(smk, device):
    p, c = smk.params.figures, int(smk.params.figures["class"])
    labels = load_npy(smk.input.labels)
    files = zip(smk.params.subsets, smk.params.graphs, smk.input.edges, smk.input.communities, smk.input.subsets)
    for (name, graph, edges, communities, subset), figure in zip(files, smk.output, strict=True):
        graph_figure(
            read_edge_table(edges),
            pd.read_csv(communities, sep="\t"),
            class_nodes(labels, load_npz(subset, required=("indices",))["indices"], c),
            figure,
            max_nodes=p["graph_nodes"],
            edges_per_node=p["graph_edges_per_node"],
            seed=p["seed"],
            title=f"{smk.params.dataset}, class {smk.params.class_names[c]}: graph {graph}, selected = {name}",
            dpi=p["dpi"],
        )


run_job(snakemake, main)  # noqa: F821
