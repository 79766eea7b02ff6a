"""Selection: quota and top-up rule on hand-built communities, Infomap on planted graphs, baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from histodistill.base import HistodistillError
from histodistill.selection import (
    Graph,
    allocate_quota,
    find_communities,
    select_by_communities,
    select_herding,
    select_kcenter,
    select_kmeans,
)


def communities(sizes: list[int], flows: list[float] | None = None, seed: int = 0) -> pd.DataFrame:
    """Modules 1..K with the given sizes; module flow split evenly over its nodes; random distinct centralities."""
    rng = np.random.default_rng(seed)
    flows = flows or [float(s) for s in sizes]
    rows, node = [], 0
    for m, (size, flow) in enumerate(zip(sizes, flows), start=1):
        for c in rng.permutation(size):
            rows.append((node, m, float(c) + rng.random() * 0.1, flow / size, flow / size, flow / size))
            node += 1
    return pd.DataFrame(rows, columns=["node", "module", "modular_centrality", "flow", "enter_flow", "exit_flow"])


def picked_per_module(df: pd.DataFrame, chosen: np.ndarray) -> list[int]:
    counts = df.set_index("node").loc[chosen, "module"].value_counts()
    return [int(counts.get(m, 0)) for m in sorted(df["module"].unique())]


def test_quota_k7_budget100():
    assert allocate_quota(7, 100) == [15, 15, 14, 14, 14, 14, 14]


def test_single_module_gives_its_top_centrality_nodes():
    df = communities([40])
    chosen = select_by_communities(df, 10)
    expected = df.sort_values("modular_centrality", ascending=False)["node"].to_numpy()[:10]
    assert chosen.tolist() == expected.tolist()


def test_seven_modules_budget_100_largest_flow_modules_get_the_extra():
    # Flows deliberately not in module-id order: modules 4 and 6 are the largest.
    df = communities([30] * 7, flows=[1, 2, 3, 9, 4, 8, 5])
    chosen = select_by_communities(df, 100)
    assert len(set(chosen.tolist())) == 100
    assert picked_per_module(df, chosen) == [14, 14, 14, 15, 14, 15, 14]


def test_more_modules_than_budget_takes_one_from_each_of_the_largest():
    flows = [5, 1, 7, 3, 6, 2, 4]
    df = communities([3] * 7, flows=flows)
    chosen = select_by_communities(df, 4)
    assert picked_per_module(df, chosen) == [1, 0, 1, 0, 1, 0, 1]
    # and from each, its most central node
    for node in chosen:
        m = df.loc[df["node"] == node, "module"].item()
        assert (
            df.loc[df["module"] == m, "modular_centrality"].max()
            == df.loc[df["node"] == node, "modular_centrality"].item()
        )


def test_small_module_shortfall_is_topped_up_from_the_largest_module():
    # K=3, B=9 -> quotas 3,3,3; module 3 has 1 node -> 2 more from the largest (module 1), next in centrality.
    df = communities([10, 8, 1], flows=[10, 8, 1])
    chosen = select_by_communities(df, 9)
    assert picked_per_module(df, chosen) == [5, 3, 1]
    m1 = df[df["module"] == 1].sort_values("modular_centrality", ascending=False)["node"].tolist()
    assert [n for n in chosen if n in m1] == m1[:5]


def test_ties_are_broken_by_module_then_node_id():
    df = pd.DataFrame(
        {
            "node": range(6),
            "module": [1, 1, 1, 2, 2, 2],
            "modular_centrality": [0.5] * 6,
            "flow": [1 / 6] * 6,
            "enter_flow": [0.1] * 6,
            "exit_flow": [0.1] * 6,
        }
    )
    assert select_by_communities(df, 3).tolist() == [0, 1, 3]
    assert select_by_communities(df.sample(frac=1, random_state=3), 3).tolist() == [0, 1, 3]


def test_each_rank_really_changes_the_order():
    rng = np.random.default_rng(1)
    df = pd.DataFrame(
        {
            "node": range(50),
            "module": 1,
            **{c: rng.random(50) for c in ("modular_centrality", "flow", "enter_flow", "exit_flow")},
        }
    )
    orders = {
        r: tuple(select_by_communities(df, 10, r)) for r in ("modular_centrality", "flow", "enter_flow", "exit_flow")
    }
    assert len(set(orders.values())) == 4
    for r, chosen in orders.items():
        assert list(chosen) == df.sort_values(r, ascending=False)["node"].tolist()[:10]


def test_budget_larger_than_class_is_an_error():
    with pytest.raises(HistodistillError, match="larger than"):
        select_by_communities(communities([3, 3]), 7)


def planted_graph(sizes=(12, 10, 8), p_in=0.9, p_out=0.02, seed=0) -> tuple[Graph, np.ndarray]:
    rng = np.random.default_rng(seed)
    block = np.repeat(np.arange(len(sizes)), sizes)
    n = len(block)
    src, dst = [], []
    for i in range(n):
        for j in range(n):
            if i != j and rng.random() < (p_in if block[i] == block[j] else p_out):
                src.append(i)
                dst.append(j)
    return Graph(n, np.array(src), np.array(dst), np.ones(len(src))), block


def test_infomap_recovers_planted_communities_and_selection_takes_their_top_nodes():
    graph, block = planted_graph()
    df = find_communities(graph, trials=5, seed=42)
    assert df["module"].nunique() == 3
    # modules coincide with the planted blocks (up to relabelling)
    for b in range(3):
        assert df.loc[block == b, "module"].nunique() == 1
    chosen = select_by_communities(df, 6)
    for b in range(3):
        members = df[block == b].sort_values(["modular_centrality", "node"], ascending=[False, True])
        assert set(members["node"][:2]) <= set(chosen.tolist())
    assert {"enter_flow", "exit_flow"} <= set(df.columns)


def test_infomap_is_deterministic_for_a_seed():
    graph, _ = planted_graph(seed=3)
    a = find_communities(graph, trials=3, seed=7)
    b = find_communities(graph, trials=3, seed=7)
    pd.testing.assert_frame_equal(a, b)


def test_coreset_baselines_pick_distinct_sensible_images():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10]], float)
    emb = np.concatenate([c + rng.normal(size=(30, 2)) for c in centres])
    km = select_kmeans(emb, 3, seed=0)
    assert sorted(set(km.tolist() and (km // 30).tolist())) == [0, 1, 2]  # one per blob
    kc = select_kcenter(emb, 3)
    assert sorted((kc // 30).tolist()) == [0, 1, 2]
    hd = select_herding(emb, 6)
    assert len(set(hd.tolist())) == 6
    assert np.linalg.norm(emb[hd].mean(0) - emb.mean(0)) < np.linalg.norm(emb[:6].mean(0) - emb.mean(0))


def test_bad_selection_inputs_name_the_file_and_class():
    from histodistill.base import check_embedding_file
    from histodistill.selection import check_budget, per_class_selection

    with pytest.raises(HistodistillError, match=r"emb\.npy: 9 embedding rows but the pool has 10"):
        check_embedding_file("emb.npy", np.zeros((9, 4)), 10)
    bad = np.zeros((10, 4))
    bad[3, 2] = np.nan
    with pytest.raises(HistodistillError, match=r"emb\.npy: 1 rows contain NaN/inf \(first: \[3\]\)"):
        check_embedding_file("emb.npy", bad, 10)
    with pytest.raises(HistodistillError, match="pool.npz: IPC 5 is larger than the 2 images of class 1"):
        check_budget(5, {0: 8, 1: 2}, "pool.npz")
    labels = np.array([0] * 6 + [1] * 3)
    with pytest.raises(HistodistillError, match="class 1"):
        per_class_selection(labels, 4, lambda c, m: np.arange(4), where="pool.npz")


def test_kmeans_memory_does_not_grow_with_feature_width_times_budget():
    """Raw-pixel features are wide (150,528 at 224 px RGB): the distances to the centroids must not be formed as an
    N x budget x width temporary (here that would be 40 MB against 2 MB of features)."""
    import tracemalloc

    import sklearn.cluster  # noqa: F401  (imported before tracing: module import allocations are not the selection's)

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(20, 5_000))
    emb = (np.repeat(centres, 5, axis=0) + 0.01 * rng.normal(size=(100, 5_000))).astype(np.float32)
    tracemalloc.start()
    try:
        chosen = select_kmeans(emb, 20, seed=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sorted((chosen // 5).tolist()) == list(range(20))  # one image of each blob
    assert peak < 10 * emb.nbytes, f"peak {peak / 1e6:.0f} MB for {emb.nbytes / 1e6:.0f} MB of features"


# ------------------------------------------------------------------------------------------------ infodist_plus


def test_ward_merge_weighs_by_size_where_centroid_distance_would_not():
    """A (1 node at 0), B (1 node at 2), C (100 nodes at 3.9): B is nearer C (1.9) than A (2.0), but merging B into C
    costs 100/101 * 1.9² = 3.57 and into A only 1/2 * 2² = 2 -> Ward merges A with B."""
    from histodistill.selection import merge_communities

    emb = np.array([[0.0], [2.0]] + [[3.9]] * 100)
    groups = np.array([7, 5] + [9] * 100)
    merged = merge_communities(emb, groups, 2)
    assert merged[0] == merged[1] != merged[2] and len(set(merged[2:].tolist())) == 1
    assert (merge_communities(emb, groups, 1) == 0).all()
    assert merge_communities(emb, groups, 3).tolist() == [0, 1] + [2] * 100  # nothing to merge


def test_proportional_quota_is_dhondt_with_one_each_and_capacity():
    from histodistill.selection import proportional_quota

    assert proportional_quota(np.array([10, 5, 1]), np.array([10, 5, 1]), 6).tolist() == [4, 1, 1]
    assert proportional_quota(np.array([10, 5, 1]), np.array([2, 5, 1]), 6).tolist() == [2, 3, 1]  # group 0 full
    assert proportional_quota(np.array([1, 1]), np.array([3, 3]), 3).tolist() == [2, 1]  # tie: lower index
    # 10:8 over 5 images: D'Hondt gives [3, 2] (5 > 4, 4 > 3.33, 3.33 > 2.67); all-to-the-largest would give [4, 1]
    assert proportional_quota(np.array([10, 8]), np.array([9, 9]), 5).tolist() == [3, 2]
    with pytest.raises(HistodistillError):
        proportional_quota(np.array([1, 1, 1]), np.array([3, 3, 3]), 2)


def line_communities(points: list[list[float]], centrality: list[list[float]]) -> tuple[np.ndarray, pd.DataFrame]:
    """1-D embeddings, one list per module (module 1 has the largest flow), node ids in order."""
    emb, rows, node = [], [], 0
    for m, (pts, cen) in enumerate(zip(points, centrality), start=1):
        for x, c in zip(pts, cen):
            emb.append([x])
            rows.append((node, m, c, 1.0 / (m + 1), 0.0, 0.0))
            node += 1
    return np.array(emb), pd.DataFrame(
        rows, columns=["node", "module", "modular_centrality", "flow", "enter_flow", "exit_flow"]
    )


def test_ipc1_with_merge_gives_the_class_medoid_not_the_largest_modules_hub():
    from histodistill.selection import community_prototypes

    # module 1 (largest flow): 0, 1, 2 (hub: node 0); module 2: 5, 20. Class mean 5.6 -> nearest is node 3 (x = 5).
    emb, df = line_communities([[0, 1, 2], [5, 20]], [[0.9, 0.5, 0.1], [0.3, 0.2]])
    assert community_prototypes(emb, df, 1).tolist() == [3]
    assert community_prototypes(emb, df, 1, pick="hub", quota="equal", merge=False).tolist() == [0]  # the paper
    assert community_prototypes(emb, df, 1, pick="medoid", merge=False).tolist() == [1]  # module 1's medoid
    assert select_by_communities(df, 1).tolist() == [0]


def test_each_community_gives_its_medoid_or_its_hub_with_quota_by_size():
    from histodistill.selection import community_prototypes

    # module 1: 0, 1, 2, 3, 10 (mean 3.2 -> node 3; hub node 4); module 2: 20, 21, 25 (mean 22 -> node 6; hub 5).
    emb, df = line_communities([[0, 1, 2, 3, 10], [20, 21, 25]], [[0.1, 0.2, 0.3, 0.4, 0.9], [0.8, 0.1, 0.2]])
    assert sorted(community_prototypes(emb, df, 2).tolist()) == [3, 6]
    assert sorted(community_prototypes(emb, df, 2, pick="hub").tolist()) == [4, 5]
    # budget 5 by size (D'Hondt 5:3 -> [3, 2]) vs the paper's equal quota ([3, 2] as well: 5 = 2 + 2 + 1 extra)
    by_size = community_prototypes(emb, df, 6, pick="hub")  # [4, 2]: 5/2 = 2.5 > 3/2, 5/3 > 3/2, 5/4 < 3/2
    assert sorted(picked_per_module(df, by_size)) == [2, 4]
    equal = community_prototypes(emb, df, 6, pick="hub", quota="equal")
    assert picked_per_module(df, equal) == [3, 3]
    assert community_prototypes(emb, df, 8).tolist().__len__() == 8


def test_local_hub_takes_the_most_visited_node_of_each_part():
    from histodistill.selection import community_prototypes

    # one module: two clumps, at 0-2 and at 10-12; flow peaks at node 2 (first clump) and node 3 (second clump)
    emb, df = line_communities([[0, 1, 2, 10, 11, 12]], [[0.1, 0.2, 0.3, 0.6, 0.5, 0.4]])
    df["flow"] = [0.10, 0.15, 0.20, 0.25, 0.18, 0.12]
    assert community_prototypes(emb, df, 1, pick="local_hub").tolist() == [3]  # the class's most visited node
    assert sorted(community_prototypes(emb, df, 2, pick="local_hub").tolist()) == [2, 3]  # one per clump
    assert sorted(community_prototypes(emb, df, 2, pick="hub").tolist()) == [3, 4]  # top-2: both in one clump
    assert sorted(community_prototypes(emb, df, 2, pick="medoid").tolist()) == [1, 4]


def test_bad_infodist_plus_settings_name_the_key():
    from histodistill.selection import community_prototypes

    emb, df = line_communities([[0, 1]], [[0.1, 0.2]])
    with pytest.raises(HistodistillError, match="select.infodist_plus.pick"):
        community_prototypes(emb, df, 1, pick="centre")
    with pytest.raises(HistodistillError, match="select.infodist_plus.quota"):
        community_prototypes(emb, df, 1, quota="area")


def digits_class_communities(knn: int | None) -> tuple[np.ndarray, pd.DataFrame]:
    """Real Infomap output: the paper's graph (or a capped one) over one class of scikit-learn digits, pixel space."""
    from sklearn.datasets import load_digits

    from histodistill.selection import GraphConfig, build_graph

    d = load_digits()
    emb = d.data[d.target == 3].astype(np.float64)
    return emb, find_communities(build_graph(emb, GraphConfig(knn=knn)), trials=2, seed=42)


def test_on_real_infomap_output_every_infomap_rank_orders_a_module_alike_and_the_medoid_does_not():
    """The docstring's claim, on real output: within every module modular centrality is monotone in node flow, and a
    node's enter and exit flow equal its flow (no self-links), so the four rank options select the same images; the
    embedding-based medoid pick of infodist_plus differs."""
    from histodistill.selection import RANKS, community_prototypes

    emb, df = digits_class_communities(knn=10)
    assert df["module"].nunique() >= 3
    for _, grp in df.groupby("module"):
        orders = {r: grp.sort_values([r, "node"], ascending=[False, True])["node"].tolist() for r in RANKS}
        assert len({tuple(o) for o in orders.values()}) == 1, orders
    budget = 2 * df["module"].nunique()
    mc = select_by_communities(df, budget, "modular_centrality")
    for rank in RANKS:
        assert select_by_communities(df, budget, rank).tolist() == mc.tolist()
    hubs = community_prototypes(emb, df, budget, pick="hub", quota="equal", merge=False)
    assert set(hubs.tolist()) == set(mc.tolist())  # the equal-quota hub pick is the paper's selection
    medoids = community_prototypes(emb, df, budget, quota="equal", merge=False)
    assert len(set(medoids.tolist()) - set(mc.tolist())) >= df["module"].nunique()  # most modules' picks differ


def test_kmeans_on_large_features_centres_them_in_place_and_picks_the_same_images(monkeypatch):
    """Above the byte limit, k-means does not copy the class's features (pixels at 224 px are GBs): the traced peak
    stays below twice the features' own size (scikit-learn's tolerance takes one feature-sized temporary; the copying
    path peaks at about 8x here), and the chosen images are those of the copying path."""
    import tracemalloc

    from histodistill.selection import baselines

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 5, size=(4, 4000)).astype(np.float32)
    emb = (centres[rng.integers(0, 4, 600)] + rng.normal(0, 1, size=(600, 4000))).astype(np.float32)  # 9.6 MB
    copied = baselines.select_kmeans(emb.copy(), 4, seed=0)
    monkeypatch.setattr(baselines, "KMEANS_COPY_LIMIT", 1024 * 1024)
    work = emb.copy()
    tracemalloc.start()
    in_place = baselines.select_kmeans(work, 4, seed=0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    np.testing.assert_array_equal(in_place, copied)
    assert peak < 2 * emb.nbytes, (peak, emb.nbytes)
    np.testing.assert_allclose(work, emb, atol=1e-4)  # restored after centring


def test_preferred_number_of_modules_follows_the_budget_down_the_planted_hierarchy():
    # four blocks, paired: blocks 0-1 and 2-3 are linked more densely to each other than across the pairs
    rng = np.random.default_rng(0)
    block = np.repeat(np.arange(4), 10)
    p = np.where(block[:, None] == block[None], 0.9, np.where(block[:, None] // 2 == block[None] // 2, 0.08, 0.01))
    link = (rng.random((40, 40)) < p) & ~np.eye(40, dtype=bool)
    src, dst = np.nonzero(link)
    graph = Graph(40, src, dst, np.ones(len(src)))

    def partition(df):
        return {frozenset(np.where(df["module"].to_numpy() == m)[0].tolist()) for m in df["module"].unique()}

    blocks = {frozenset(np.where(block == b)[0].tolist()) for b in range(4)}
    pairs = {frozenset(np.where(block // 2 == b)[0].tolist()) for b in range(2)}
    assert partition(find_communities(graph)) == blocks  # the map equation alone: the four blocks
    assert partition(find_communities(graph, modules=4)) == blocks
    assert partition(find_communities(graph, modules=2)) == pairs
    assert partition(find_communities(graph, modules=1)) == {frozenset(range(40))}
    with pytest.raises(HistodistillError, match="below 1"):
        find_communities(graph, modules=0)


def test_subgraph_keeps_the_inner_edges_renumbered_in_the_given_order():
    from histodistill.selection import subgraph

    g = Graph(5, np.array([0, 1, 2, 3, 4, 4]), np.array([1, 2, 3, 4, 0, 2]), np.array([1.0, 2, 3, 4, 5, 6]))
    sub = subgraph(g, np.array([4, 2, 3]))  # 4 -> 0, 2 -> 1, 3 -> 2; inner edges 2→3, 3→4, 4→2
    assert sub.n_nodes == 3
    assert sorted(zip(sub.source.tolist(), sub.target.tolist(), sub.weight.tolist())) == [
        (0, 1, 6.0),
        (1, 2, 3.0),
        (2, 0, 4.0),
    ]


def two_stars_pulled_to_one_leaf() -> tuple[np.ndarray, Graph]:
    """Star A: centre 0, leaves 1-3 (at x≈0); star B: centre 4, leaves 5-7 (at x≈10). Every node of A also sends a
    strong edge to B's leaf 7, which sends the walk back to A: on the whole graph 7 is B's most visited node, while
    inside B the walk centres on 4."""
    emb = np.array([[0.0], [-0.5], [0.2], [0.5], [10.0], [9.5], [10.2], [10.5]])
    edges = [(0, leaf, 1.0) for leaf in (1, 2, 3)] + [(leaf, 0, 1.0) for leaf in (1, 2, 3)]
    edges += [(4, leaf, 1.0) for leaf in (5, 6, 7)] + [(leaf, 4, 1.0) for leaf in (5, 6)] + [(7, 4, 0.1)]
    edges += [(a, 7, 3.0) for a in (0, 1, 2, 3)] + [(7, 0, 3.0)]
    s, t, w = map(np.array, zip(*edges))
    return emb, Graph(8, s, t, w)


def test_part_hub_takes_each_parts_own_centre_where_local_hub_takes_the_node_the_class_walk_visits_most():
    from histodistill.selection import community_prototypes

    emb, graph = two_stars_pulled_to_one_leaf()
    df = find_communities(graph, trials=2, seed=1, modules=1)  # one module: the pick alone decides
    flow = df.set_index("node")["flow"]
    assert flow[7] > max(flow[4], flow[5], flow[6])  # the premise: on the whole graph, 7 leads star B
    assert sorted(community_prototypes(emb, df, 2, pick="part_hub", graph=graph).tolist()) == [0, 4]
    module_0 = df.assign(module=0)  # group 0 with seed 0: Infomap takes no seed below 1, the flow needs none
    assert sorted(community_prototypes(emb, module_0, 2, pick="part_hub", graph=graph, seed=0).tolist()) == [0, 4]
    assert 7 in community_prototypes(emb, df, 2, pick="local_hub").tolist()  # the control
    with pytest.raises(HistodistillError, match="part_hub needs the class graph"):
        community_prototypes(emb, df, 2, pick="part_hub")


def test_part_hub_at_one_image_is_the_papers_pick_on_a_one_module_class():
    from histodistill.selection import GraphConfig, build_graph, community_prototypes

    emb, _ = digits_class_communities(None)
    graph = build_graph(emb, GraphConfig())
    df = find_communities(graph, trials=2, seed=42)
    assert df["module"].nunique() == 1  # the paper's graph keeps this class in one module
    assert (
        community_prototypes(emb, df, 1, pick="part_hub", graph=graph).tolist() == select_by_communities(df, 1).tolist()
    )


def test_infodist_plus_reads_each_class_graph_for_part_hub_and_names_a_stale_one(tmp_path):
    from histodistill.selection import prototype_indices, write_edges

    emb, graph = two_stars_pulled_to_one_leaf()
    df = find_communities(graph, trials=2, seed=1, modules=1)
    df.to_csv(tmp_path / "class_0.tsv", sep="\t", index=False)
    write_edges(tmp_path / "class_0.edges.tsv.gz", graph)
    labels = np.zeros(8, dtype=np.int64)
    files = dict(community_files=[str(tmp_path / "class_0.tsv")], ipc=2, pick="part_hub")
    edges = [str(tmp_path / "class_0.edges.tsv.gz")]
    assert sorted(prototype_indices(labels, emb, graph_files=edges, **files).tolist()) == [0, 4]
    with pytest.raises(HistodistillError, match="part_hub needs the class graphs"):
        prototype_indices(labels, emb, **files)
    write_edges(tmp_path / "class_0.edges.tsv.gz", Graph(9, graph.source, graph.target, graph.weight))
    with pytest.raises(HistodistillError, match="has 9 nodes but class 0 has 8 .*rerun the graph"):
        prototype_indices(labels, emb, graph_files=edges, **files)
    # a community file from a smaller pool: the class now has one image more than the file has nodes
    with pytest.raises(HistodistillError, match="class_0.tsv: has 8 nodes but class 0 has 9 .*rerun the graph"):
        prototype_indices(np.zeros(9, dtype=np.int64), np.vstack([emb, emb[:1]]), **{**files, "pick": "medoid"})


def test_typicality_is_the_inverse_mean_distance_to_the_k_nearest_other_images():
    from histodistill.selection import typicality

    # 0, 1, 3, 7 with k = 2: mean distances 2, 1.5, 2.5 and 5, by hand
    assert np.allclose(typicality(np.array([[0.0], [1.0], [3.0], [7.0]]), k=2), [1 / 2, 1 / 1.5, 1 / 2.5, 1 / 5])
    assert np.allclose(typicality(np.array([[0.0], [4.0]]), k=20), [1 / 4, 1 / 4])  # k capped at n - 1
    assert typicality(np.array([[3.0]])).tolist() == [1.0]  # alone


def clump_and_spread() -> np.ndarray:
    """21 images in a tight clump around 0 (node 10 at its centre) and 30 spread evenly over [20, 30]: the class's
    mean (14.7) lies between them, nearest to the spread's first image (node 21)."""
    x = np.concatenate([np.linspace(-0.1, 0.1, 21), np.linspace(20.0, 30.0, 30)])
    return np.stack([x, np.zeros_like(x)], axis=1)


def test_part_typical_takes_the_densest_image_where_the_medoid_takes_the_one_nearest_the_mean(tmp_path):
    from histodistill.selection import community_prototypes, prototype_indices

    emb = clump_and_spread()
    df = communities([len(emb)])  # one module: the pick alone decides
    assert community_prototypes(emb, df, 1, pick="part_typical").tolist() == [10]  # the clump's centre
    assert community_prototypes(emb, df, 1, pick="medoid").tolist() == [21]  # the control
    two = community_prototypes(emb, df, 2, pick="part_typical").tolist()
    assert sorted(two)[0] == 10 and 21 <= sorted(two)[1] <= 50  # k-means parts: the clump and the spread
    df.to_csv(tmp_path / "class_0.tsv", sep="\t", index=False)  # the workflow's path needs no edge lists for it
    labels = np.zeros(len(emb), dtype=np.int64)
    files = [str(tmp_path / "class_0.tsv")]
    assert prototype_indices(labels, emb, files, 1, pick="part_typical").tolist() == [10]


def stars_in_communities() -> tuple[np.ndarray, Graph, pd.DataFrame]:
    """Community A = nodes 0-3, a star centred on 1 (x ≈ −100). Community B = nodes 4-9: a star centred on 6 over
    4, 5 (x ≈ 0) and a star centred on 8 over 7, 9 (x ≈ 100), joined by 6 ↔ 8. Node ids and row positions inside a
    community differ everywhere but in A: a walk run on the wrong nodes picks the wrong centres."""
    emb = np.array([[-100.0], [-100.5], [-99.5], [-100.2], [0.0], [0.5], [0.2], [100.0], [100.2], [99.6]])
    pairs = [(0, 1), (2, 1), (3, 1), (4, 6), (5, 6), (7, 8), (9, 8), (6, 8)]
    s, t = map(np.array, zip(*(pairs + [(b, a) for a, b in pairs])))
    graph = Graph(10, s, t, np.ones(len(s)))
    df = pd.DataFrame(
        {
            "node": np.arange(10),
            "module": [1] * 4 + [2] * 6,
            "modular_centrality": np.ones(10),
            "flow": np.full(10, 0.1),
        }
    )
    return emb, graph, df


def test_part_hub_walks_each_parts_own_nodes_across_communities_quota_merge_and_filter():
    """Picks worked out by hand: the centre of a star is its walk's most visited node (degree 3 or 2 against 1)."""
    from histodistill.selection import community_prototypes

    emb, graph, df = stars_in_communities()
    # budget 2: one per community; B as one part is the star pair, whose walk centres on 6 and 8 equally: the
    # lower row, 6
    assert sorted(community_prototypes(emb, df, 2, pick="part_hub", graph=graph).tolist()) == [1, 6]
    # budget 3, size quota (D'Hondt: A 4 images, B 6 -> B's second image): B splits into its two stars, each part
    # walked on its own subgraph: centres 6 and 8
    assert sorted(community_prototypes(emb, df, 3, pick="part_hub", graph=graph).tolist()) == [1, 6, 8]
    # three communities (B split into its stars B1 = 4-6, B2 = 7-9) for a budget of two, A moved far away: Ward
    # merges B1 and B2, and the merged group is walked as one (centres 6 and 8 tie: the lower, 6)
    far = emb.copy()
    far[:4] -= 1000
    three = df.assign(module=[1] * 4 + [2] * 3 + [3] * 3)
    assert sorted(community_prototypes(far, three, 2, pick="part_hub", graph=graph).tolist()) == [1, 6]
    # the privacy filter removed B's centre 6: the part {4, 5} has no edge left, its walk is uniform: the lower node
    kept = df[df["node"] != 6]
    assert sorted(community_prototypes(emb, kept, 3, pick="part_hub", graph=graph).tolist()) == [1, 4, 8]
