"""InfoDist's selection (Li & Kainz 2024): Infomap communities of each class graph, the IPC budget spread over
them, and each community's images in descending modular centrality."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from histodistill.base.errors import HistodistillError

from .graph import Graph

RANKS = ("modular_centrality", "flow", "enter_flow", "exit_flow")
COMMUNITY_COLUMNS = ["node", "module", "modular_centrality", "flow", "enter_flow", "exit_flow"]


def _infomap_leaves(graph: Graph, options: dict, run_options: dict) -> pd.DataFrame:
    """Directed two-level Infomap on a weighted graph; one row per node (isolated ones included), in node order."""
    import infomap

    im = infomap.Infomap(two_level=True, directed=True, silent=True, **options)
    im.add_nodes(range(graph.n_nodes))
    if graph.n_edges:
        im.add_links(zip(graph.source.tolist(), graph.target.tolist(), graph.weight.tolist()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        im.run(**run_options)
        rows = [
            (n.node_id, n.module_id, n.modular_centrality, n.data.flow, n.data.enterFlow, n.data.exitFlow)
            for n in im.tree
            if n.is_leaf
        ]
    df = pd.DataFrame(rows, columns=COMMUNITY_COLUMNS)
    return df.sort_values("node", kind="stable").reset_index(drop=True)


def find_communities(graph: Graph, trials: int = 5, seed: int = 42, modules: int | None = None) -> pd.DataFrame:
    """Two-level directed Infomap on a weighted graph; one row per node (all nodes, isolated ones included).

    `modules`: Infomap's preferred number of modules (its `--preferred-number-of-modules`, a penalty on the code
    length of partitions with another number), so that the number of communities can follow the budget; None lets
    the map equation alone decide (the paper)."""
    if modules is not None and modules < 1:
        raise HistodistillError(f"find_communities: preferred number of modules {modules} is below 1")
    run_options = {} if modules is None else {"preferred_number_of_modules": int(modules)}
    return _infomap_leaves(graph, {"num_trials": trials, "seed": seed}, run_options)


def node_flow(graph: Graph) -> np.ndarray:
    """Every node's Infomap flow (the stationary visit rate of its random walk), in node order; Infomap's flow step
    alone, without the search for modules (whose result the flow does not depend on)."""
    return _infomap_leaves(graph, {"no_infomap": True}, {})["flow"].to_numpy()


def module_order(communities: pd.DataFrame) -> pd.DataFrame:
    """Modules sorted largest first: by total flow, then size, then module id (deterministic)."""
    mods = communities.groupby("module").agg(flow=("flow", "sum"), size=("node", "size")).reset_index()
    return mods.sort_values(["flow", "size", "module"], ascending=[False, False, True], kind="stable").reset_index(
        drop=True
    )


def allocate_quota(n_modules: int, budget: int) -> list[int]:
    """Quota per module, modules given largest first: ⌊B/K⌋ each, +1 for the first B mod K."""
    if n_modules < 1:
        raise HistodistillError("cannot allocate a budget over zero modules")
    base, extra = divmod(budget, n_modules)
    return [base + (1 if i < extra else 0) for i in range(n_modules)]


def select_by_communities(communities: pd.DataFrame, budget: int, rank: str = "modular_centrality") -> np.ndarray:
    """Node ids of the selected images, in selection order (module by module, then the top-up)."""
    if rank not in RANKS:
        raise HistodistillError(f"select.rank: unknown {rank!r}; use one of {list(RANKS)}")
    n = len(communities)
    if budget > n:
        raise HistodistillError(f"budget {budget} is larger than the {n} images available")
    mods = module_order(communities)
    quota = allocate_quota(len(mods), budget)
    ranked = {
        m: grp.sort_values([rank, "node"], ascending=[False, True], kind="stable")["node"].to_numpy()
        for m, grp in communities.groupby("module")
    }
    chosen: list[int] = []
    taken: dict[int, int] = {}
    for m, q in zip(mods["module"], quota):
        take = ranked[m][:q]
        chosen.extend(int(v) for v in take)
        taken[m] = len(take)
    shortfall = budget - len(chosen)
    for m in mods["module"]:  # top-up: largest module first, next-highest score first
        if shortfall == 0:
            break
        extra = ranked[m][taken[m] : taken[m] + shortfall]
        chosen.extend(int(v) for v in extra)
        taken[m] += len(extra)
        shortfall -= len(extra)
    return np.asarray(chosen, dtype=np.int64)
