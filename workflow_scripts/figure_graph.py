"""Rule figure_graph: one class's similarity graph, nodes coloured by community, the selected images highlighted."""

import pandas as pd

from histodistill.figures import class_nodes, graph_figure, read_edge_table
from histodistill.io import load_npy, load_npz
from histodistill.workflow import run_job


def main(smk, device):
    p, c = smk.params.figures, int(smk.params.figures["class"])
    subset = load_npz(smk.input.subset, required=("indices",))
    graph_figure(
        read_edge_table(smk.input.edges),
        pd.read_csv(smk.input.communities, sep="\t"),
        class_nodes(load_npy(smk.input.labels), subset["indices"], c),
        smk.output[0],
        max_nodes=p["graph_nodes"],
        edges_per_node=p["graph_edges_per_node"],
        seed=p["seed"],
        title=f"{smk.params.dataset}, class {smk.params.class_names[c]}: graph {smk.params.graph}, "
        f"selected = {smk.wildcards.subset}",
        dpi=p["dpi"],
    )


run_job(snakemake, main)  # noqa: F821
