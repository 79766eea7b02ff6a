"""Graph construction: the paper's softmax-of-inverse-distance semantics, chunking, approximation, file format."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax

from histodistill.base import HistodistillError
from histodistill.selection import GraphConfig, approximate_graph, build_graph, exact_graph, read_edges, write_edges


def dense_reference(emb: np.ndarray, threshold="1/N") -> dict[tuple[int, int], float]:
    """Straight from the definition, with a dense N×N matrix."""
    n = len(emb)
    d = np.linalg.norm(emb[:, None] - emb[None], axis=-1)
    with np.errstate(divide="ignore"):
        logits = 1.0 / d
    np.fill_diagonal(logits, 0.0)
    w = softmax(logits, axis=1)
    edges = {}
    for i in range(n):
        row = np.delete(w[i], i)
        thr = (
            1.0 / n
            if threshold == "1/N"
            else (np.sort(row)[(len(row) - 1) // 2] if threshold == "median" else threshold)
        )
        for j in range(n):
            if j != i and w[i, j] >= thr:
                edges[(i, j)] = w[i, j]
    return edges


def as_dict(g) -> dict[tuple[int, int], float]:
    return {(int(s), int(t)): float(w) for s, t, w in zip(g.source, g.target, g.weight)}


def test_threshold_semantics_on_a_tiny_embedding():
    # Three points on a line at 0, 1, 3: hand-computed weights.
    emb = np.array([[0.0], [1.0], [3.0]])
    g = as_dict(exact_graph(emb, GraphConfig(threshold="1/N")))
    # Row 0: logits (self 0, 1/1, 1/3) -> softmax; keep >= 1/3.
    e = np.exp([0, 1, 1 / 3])
    w01, w02 = e[1] / e.sum(), e[2] / e.sum()
    assert w01 > 1 / 3 > w02
    assert g[(0, 1)] == pytest.approx(w01) and (0, 2) not in g
    # Row 1: logits (1, 0, 1/2): both neighbours above 1/3?
    e = np.exp([1, 0, 0.5])
    assert g[(1, 0)] == pytest.approx(e[0] / e.sum())
    assert ((1, 2) in g) == (e[2] / e.sum() >= 1 / 3)
    assert all(s != t for s, t in g)  # no self loops


def test_numeric_and_median_thresholds():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(30, 4))
    assert as_dict(exact_graph(emb, GraphConfig(threshold=0.05))).keys() == dense_reference(emb, 0.05).keys()
    med = exact_graph(emb, GraphConfig(threshold="median"))
    assert as_dict(med).keys() == dense_reference(emb, "median").keys()
    assert med.n_edges >= 30 * 29 // 2


def test_chunked_exact_graph_equals_dense_graph_n500():
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(500, 8))
    ref = dense_reference(emb)
    got = as_dict(exact_graph(emb, GraphConfig(chunk=37)))
    assert got.keys() == ref.keys()
    assert max(abs(got[k] - ref[k]) for k in ref) < 1e-6


def test_knn_cap_and_temperature_sparsify():
    rng = np.random.default_rng(2)
    emb = rng.normal(size=(100, 8))
    dense = exact_graph(emb, GraphConfig())
    capped = exact_graph(emb, GraphConfig(knn=5))
    sharp = exact_graph(emb, GraphConfig(distance_scale="median", temperature=0.05))
    assert capped.n_edges <= 5 * 100 and np.bincount(capped.source, minlength=100).max() <= 5
    assert sharp.n_edges < dense.n_edges


def test_approximate_graph_with_all_neighbours_is_exact():
    rng = np.random.default_rng(3)
    emb = rng.normal(size=(200, 6))
    ex = as_dict(exact_graph(emb, GraphConfig()))
    ap = as_dict(approximate_graph(emb, GraphConfig(approx_neighbours=199)))
    assert ap.keys() == ex.keys()
    assert max(abs(ap[k] - ex[k]) for k in ex) < 1e-6  # neighbour distances are float32


def test_nan_embeddings_are_rejected_with_the_file_name():
    emb = np.zeros((5, 3))
    emb[2, 1] = np.nan
    with pytest.raises(HistodistillError, match="pool.npy .*NaN"):
        build_graph(emb, GraphConfig(), where="pool.npy (class 4)")


def test_edge_file_roundtrip_and_reproducible_bytes(tmp_path):
    rng = np.random.default_rng(4)
    g = exact_graph(rng.normal(size=(40, 3)), GraphConfig())
    write_edges(tmp_path / "a.tsv.gz", g)
    write_edges(tmp_path / "b.tsv.gz", g)
    assert (tmp_path / "a.tsv.gz").read_bytes() == (tmp_path / "b.tsv.gz").read_bytes()
    back = read_edges(tmp_path / "a.tsv.gz")
    assert (
        back.n_nodes == 40 and np.array_equal(back.source, g.source) and np.allclose(back.weight, g.weight, rtol=1e-9)
    )


def kept_mass_ratio(approx, exact) -> float:
    """Fraction of the exact graph's kept weight that the approximate graph keeps on the same edges."""
    ex, ap = as_dict(exact), as_dict(approx)
    return sum(ex[k] for k in ap if k in ex) / sum(ex.values())


def test_approximate_graph_keeps_the_exact_graphs_weight_on_real_digits():
    # Real images (all 1,797 scikit-learn digits, 8x8 pixels as 64-d embeddings), the capped graph the default uses.
    from histodistill.data import load_real
    from histodistill.selection import embed

    real = load_real("digits", 8)
    images = np.concatenate([real[f"{s}_images"] for s in ("train", "val", "test")])
    emb = embed(images, None, "cpu")
    cfg = GraphConfig(knn=10, distance_scale="median", temperature=0.1, approx_neighbours=32, approx_sample=512)
    exact = exact_graph(emb, cfg)
    approx = approximate_graph(emb, cfg)
    assert exact.n_edges > 0
    assert kept_mass_ratio(approx, exact) >= 0.95


# ---------------------------------------------------------------------------------------------- hubness reduction


def test_local_scales_are_distances_to_the_kth_neighbour():
    import torch

    from histodistill.selection import local_scales

    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]], dtype=torch.float64)
    # by hand: neighbours of 0 are at 1, 3, 7; of 1 at 1, 2, 6; of 3 at 2, 3, 4; of 7 at 4, 6, 7
    assert local_scales(x, 1, chunk=2).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert local_scales(x, 2, chunk=3).tolist() == [3.0, 2.0, 3.0, 6.0]
    assert local_scales(x, 9, chunk=4).tolist() == [7.0, 6.0, 4.0, 7.0]  # fewer than k others: the farthest


def test_local_scaling_gives_a_ten_times_wider_copy_of_a_cluster_the_same_edges():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(8, 2))
    x = np.vstack([a, 10 * a + 1000.0])  # the same shape, ten times wider, far away

    def within(graph, offset):
        return {
            (int(s) - offset, int(t) - offset)
            for s, t in zip(graph.source, graph.target)
            if s >= offset and t >= offset and (offset or (s < 8 and t < 8))
        }

    scaled = build_graph(x, GraphConfig(hubness="local_scaling", scaling_k=3))
    assert within(scaled, 0) == within(scaled, 8) and within(scaled, 0)
    plain = build_graph(x, GraphConfig())  # the control: without scaling the wide copy is wired differently
    assert within(plain, 0) != within(plain, 8)


def test_mutual_edges_keep_only_reciprocated_neighbours():
    # 1-D points 0, 1, 3, 7; each keeps its one strongest edge: 0→1, 1→0, 3→1, 7→3. Only 0↔1 is mutual.
    x = np.array([[0.0], [1.0], [3.0], [7.0]])
    one = GraphConfig(threshold=0.0, knn=1)
    assert set(as_dict(build_graph(x, one))) == {(0, 1), (1, 0), (2, 1), (3, 2)}
    g = build_graph(x, GraphConfig(threshold=0.0, knn=1, hubness="mutual"))
    assert as_dict(g) == pytest.approx(
        {k: v for k, v in as_dict(build_graph(x, one)).items() if k in {(0, 1), (1, 0)}}, rel=1e-12
    )


def test_local_scaling_and_mutual_edges_take_in_links_away_from_hubs():
    # 500 Gaussian points in 50 dimensions: the classic setting where a few points are in many 10-NN lists.
    x = np.random.default_rng(0).normal(size=(500, 50))
    indegree = {
        h: np.bincount(build_graph(x, GraphConfig(knn=10, hubness=h)).target, minlength=500)
        for h in ("none", "local_scaling", "mutual")
    }
    assert indegree["none"].max() > 100  # hubs: more than ten times the out-degree
    assert indegree["local_scaling"].max() < indegree["none"].max() / 2
    assert indegree["mutual"].max() <= 10  # an in-link is kept only with its out-link, at most 10 of those


def test_local_scaling_on_the_approximate_graph_says_what_to_set():
    x = np.random.default_rng(0).normal(size=(30, 3))
    with pytest.raises(HistodistillError, match="graph.method: exact"):
        build_graph(x, GraphConfig(method="approximate", hubness="local_scaling"))
    with pytest.raises(HistodistillError, match="graph.hubness"):
        build_graph(x, GraphConfig(hubness="snn"))


def test_hubness_is_a_graph_setting_the_config_accepts_and_the_default_graph_does_not_carry(tmp_path):
    import yaml
    from conftest import REPO

    from histodistill.base import check_schema, config_with_defaults
    from histodistill.workflow import check_config, graph_settings

    default = config_with_defaults(REPO / "config.yaml")
    # unset keys stay out of the graph rules' params, so runs made before these settings existed do not rerun
    assert "hubness" not in graph_settings(default, "convnet+plus") and "scaling_k" not in default["graph"]
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["select"]["infodist_plus"]["graph"] = {"knn": 10, "hubness": "local_scaling", "scaling_k": 5}
    cfg["ablation"] = {"graphs": {"mutual10": {"knn": 10, "hubness": "mutual"}}}
    check_schema(cfg, REPO / "schemas" / "config.schema.yaml")
    check_config(cfg)
    assert graph_settings(cfg, "convnet+plus")["hubness"] == "local_scaling"
    GraphConfig(**graph_settings(cfg, "convnet+mutual10"))  # every key is one the graph builder takes
    cfg["graph"]["hubness"] = "snn"
    with pytest.raises(HistodistillError, match="graph.hubness.*snn"):
        check_schema(cfg, REPO / "schemas" / "config.schema.yaml")


@pytest.mark.parametrize("cfg", [GraphConfig(), GraphConfig(knn=3)])
def test_the_graph_among_kept_rows_is_the_kept_rows_own_graph_in_the_class_numbering(cfg):
    from histodistill.selection import build_graph_among

    rng = np.random.default_rng(3)
    emb = rng.normal(size=(12, 4))
    kept = np.array([1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1], dtype=bool)
    graph = build_graph_among(emb, kept, cfg)
    assert graph.n_nodes == 12
    removed = set(np.flatnonzero(~kept).tolist())
    assert not (set(graph.source.tolist()) | set(graph.target.tolist())) & removed
    # oracle: the graph of the kept rows alone (N = 8 for the 1/N threshold), its node i being kept row i
    own = build_graph(emb[kept], cfg)
    rows = np.flatnonzero(kept)
    theirs = sorted(zip(rows[own.source].tolist(), rows[own.target].tolist(), own.weight.round(12).tolist()))
    ours = sorted(zip(graph.source.tolist(), graph.target.tolist(), graph.weight.round(12).tolist()))
    assert ours == theirs and len(ours) > 0
    with pytest.raises(HistodistillError, match="keep flags"):
        build_graph_among(emb, kept[:5], cfg)
