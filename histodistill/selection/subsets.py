"""Subset files: `results/{ds}/subsets/{method}_ipc{ipc}.npz` with images, labels and source indices."""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np
import pandas as pd

from histodistill.base.errors import HistodistillError
from histodistill.base.io import load_npz, save_npz

from .baselines import check_budget
from .graph import read_edges
from .infodist import COMMUNITY_COLUMNS, select_by_communities
from .plus import community_prototypes


def save_subset(
    path: str | os.PathLike,
    images: np.ndarray,
    labels: np.ndarray,
    indices: np.ndarray,
    source: str,
    init: str | None = None,
    learned_lr: float | None = None,
    model_images: np.ndarray | None = None,
    zca: str | None = None,
) -> None:
    """Write a subset; `indices` point into the pool (source 'pool') or the real train split (source 'real');
    a distilled set ('distilled', started from noise) has none (-1). `init` ('real', 'noise' or 'pool') marks a
    distilled set's starting point; a real-init set is source 'real' with the indices of the real images it started
    from. `learned_lr`: MTT's learned learning rate, which the distillation protocol trains the set with.
    `model_images` (float32 NHWC) and `zca` (the transform's digest): a set distilled in ZCA-whitened space, which
    the evaluation trains on as distilled (`images` then holds its unwhitened pixels, for people and the audit)."""
    extra = {} if init is None else {"init": np.asarray(init)}
    if learned_lr is not None:
        extra["learned_lr"] = np.asarray(float(learned_lr))
    if model_images is not None:
        if zca is None:
            raise HistodistillError("a subset with model_images must name its ZCA transform (zca digest)")
        extra["model_images"] = np.ascontiguousarray(model_images, dtype=np.float32)
        extra["zca"] = np.asarray(zca)
    save_npz(
        path,
        images=np.ascontiguousarray(images, dtype=np.uint8),
        labels=np.asarray(labels, dtype=np.int64),
        indices=np.asarray(indices, dtype=np.int64),
        source=np.asarray(source),
        **extra,
    )


def save_distilled(
    path: str | os.PathLike, result: Any, init: str, learned_lr: float | None = None, zca: str | None = None
) -> None:
    """A distiller's set (`distill.Distilled`: images, labels, indices, model_images under ZCA) as a subset: source
    'real' where it started from real training images (init 'real', with their indices), else 'distilled' (init
    'noise' or 'pool'). `zca`: the digest of the transform a ZCA set was distilled under."""
    source = "real" if init == "real" else "distilled"
    model_images = getattr(result, "model_images", None)
    save_subset(
        path,
        result.images,
        result.labels,
        result.indices,
        source,
        init=init,
        learned_lr=learned_lr,
        model_images=model_images,
        zca=zca if model_images is not None else None,
    )


def pool_keep_flags(keep_files: list[str], labels: np.ndarray) -> np.ndarray:
    """The keep flags a pool selector reads: the privacy filter's file (or the DP vote's), or every pool image where
    the selector is configured to read the whole pool (`select.privacy_filter.unfiltered`: no file given)."""
    if not keep_files:
        return np.ones(len(labels), dtype=bool)
    keep = load_npz(keep_files[0], required=("keep",))["keep"].astype(bool)
    if keep.shape != labels.shape:
        raise HistodistillError(f"{keep_files[0]}: {keep.shape} keep flags for {labels.shape} pool images; rerun it")
    return keep


def subset_init(subset: dict[str, np.ndarray]) -> str:
    """A distilled set's init ('real' or 'noise'); '' for selected subsets."""
    return str(subset["init"]) if "init" in subset else ""


def load_subset(path: str | os.PathLike) -> dict[str, np.ndarray]:
    return load_npz(path, required=("images", "labels"))


def per_class_selection(
    labels: np.ndarray, ipc: int, pick: Callable[[int, np.ndarray], np.ndarray], where: str
) -> np.ndarray:
    """Apply `pick(class, member_indices) -> local indices` to every class; returns global indices, class by class."""
    classes = np.unique(labels)
    check_budget(ipc, {int(c): int((labels == c).sum()) for c in classes}, where)
    out = []
    for c in classes:
        members = np.where(labels == c)[0]
        local = pick(int(c), members)
        if len(local) != ipc or len(set(local.tolist())) != ipc:
            raise AssertionError(f"selector returned {len(local)} indices for class {c}, expected {ipc} distinct")
        out.append(members[local])
    return np.concatenate(out).astype(np.int64)


def check_class_nodes(path: str | os.PathLike, found: int, c: int, n_images: int) -> None:
    """A class's graph or community file must hold one node per pool image of the class (else it is stale)."""
    if found != n_images:
        raise HistodistillError(f"{path}: has {found} nodes but class {c} has {n_images} pool images; rerun the graph")


def read_communities(path: str | os.PathLike, c: int, n_nodes: int) -> pd.DataFrame:
    df = pd.read_csv(path, sep="\t")
    missing = [col for col in COMMUNITY_COLUMNS if col not in df.columns]
    if missing:
        raise HistodistillError(f"{path}: missing columns {missing}")
    check_class_nodes(path, len(df), c, n_nodes)
    if set(df["node"]) != set(range(n_nodes)):
        raise HistodistillError(f"{path}: node ids are not 0..{n_nodes - 1}; rerun the graph")
    return df


def _select_from_communities(
    labels: np.ndarray,
    community_files: list[str],
    ipc: int,
    keep: np.ndarray | None,
    select_class: Callable[[int, np.ndarray, pd.DataFrame], np.ndarray],
    method: str,
) -> np.ndarray:
    """Global pool indices for every class (community file c holds class c): `select_class(c, class_nodes,
    communities)` picks node ids from the class's communities, restricted to the images the keep-mask (the privacy
    filter) keeps."""
    keep = np.ones(len(labels), dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    if keep.shape != labels.shape:
        raise HistodistillError(f"privacy filter: {keep.shape} keep flags for {labels.shape} pool images; rerun it")
    kept = np.where(keep)[0]

    def pick(c: int, members: np.ndarray) -> np.ndarray:  # members: positions in `kept` of class c
        class_nodes = np.where(labels == c)[0]
        df = read_communities(community_files[c], c, len(class_nodes))
        local = np.searchsorted(class_nodes, kept[members])  # kept images' node ids within the class
        chosen = select_class(c, class_nodes, df[df["node"].isin(local)])
        return np.searchsorted(local, chosen)

    where = f"select {method} (IPC {ipc}, after the filter)"
    return kept[per_class_selection(labels[kept], ipc, pick, where=where)]


def infodist_indices(
    labels: np.ndarray, community_files: list[str], ipc: int, rank: str, keep: np.ndarray | None = None
) -> np.ndarray:
    """Global pool indices chosen by InfoDist for every class (community file c holds class c). With a keep-mask
    (the privacy filter), the communities are restricted to the kept images before the selection."""
    return _select_from_communities(
        labels, community_files, ipc, keep, lambda c, nodes, df: select_by_communities(df, ipc, rank), "infodist"
    )


def prototype_indices(
    labels: np.ndarray,
    emb: np.ndarray,
    community_files: list[str],
    ipc: int,
    keep: np.ndarray | None = None,
    pick: str = "medoid",
    quota: str = "size",
    merge: bool = True,
    seed: int = 0,
    graph_files: list[str] | None = None,
    certainty: np.ndarray | None = None,
    certainty_weight: float = 1.0,
    kernel: str = "heat",
    certainty_decay: float = 2.0,
) -> np.ndarray:
    """Global pool indices chosen by `infodist_plus` (community file c holds class c, and edge list c, needed by the
    `part_hub` pick, its graph; `emb` holds every pool image's embedding in pool order); with a keep-mask, among the
    kept images only."""

    def select_class(c: int, class_nodes: np.ndarray, df: pd.DataFrame) -> np.ndarray:
        class_emb = np.asarray(emb[class_nodes], dtype=np.float64)
        graph = None
        if pick == "part_hub":
            if not graph_files:
                raise HistodistillError("select.infodist_plus.pick: part_hub needs the class graphs' edge lists")
            graph = read_edges(graph_files[c])
            check_class_nodes(graph_files[c], graph.n_nodes, c, len(class_nodes))
        class_certainty = None if certainty is None else np.asarray(certainty)[class_nodes]
        return community_prototypes(
            class_emb,
            df,
            ipc,
            pick,
            quota,
            merge,
            seed=seed + c,
            graph=graph,
            certainty=class_certainty,
            certainty_weight=certainty_weight,
            kernel=kernel,
            certainty_decay=certainty_decay,
        )

    return _select_from_communities(labels, community_files, ipc, keep, select_class, "infodist_plus")
