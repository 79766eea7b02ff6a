"""The paper's figures, drawn from workflow files only: real/pool/selected images, graphs, embeddings, metric
against IPC, privacy (closest pairs, DCR histograms) and sample grids."""

from __future__ import annotations

import os
import textwrap
from typing import Sequence

import numpy as np
import pandas as pd

from .plot_style import (
    HIGHLIGHT,
    LINESTYLES,
    MARKERS,
    PALETTE,
    community_colours,
    community_legend_handles,
    mosaic,
    save,
    show_image,
    style,
)


def closest_pairs_figure(
    shared_images: np.ndarray,
    real_images: np.ndarray,
    dcr: np.ndarray,
    nn: np.ndarray,
    path: str | os.PathLike,
    n: int = 8,
    title: str = "",
    threshold: float | None = None,
) -> None:
    """The `n` shared images closest to a real train image (top row) above that real image (bottom row)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plot_style import show_image

    order = np.argsort(dcr, kind="stable")[:n]
    cols = max(1, len(order))
    fig, axes = plt.subplots(2, cols, figsize=(1.3 * cols + 0.6, 3.2), squeeze=False)
    for c in range(cols):
        for r in range(2):
            axes[r][c].axis("off")
    for c, i in enumerate(order):
        for r, img in enumerate((shared_images[i], real_images[nn[i]])):
            axes[r][c].axis("on")
            show_image(axes[r][c], img)
        flag = " *" if threshold is not None and dcr[i] <= threshold else ""
        axes[0][c].set_title(f"d={dcr[i]:.3g}{flag}", fontsize=7)
    axes[0][0].set_ylabel("shared", fontsize=8)
    axes[1][0].set_ylabel("closest real", fontsize=8)
    fig.suptitle(
        (title + " — " if title else "") + "closest shared/real-train pairs, embedder distance d (* = near copy)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def dcr_histogram(
    panels: Sequence[tuple[str, np.ndarray, np.ndarray, float]], path: str | os.PathLike, title: str = ""
) -> None:
    """Per panel (name, shared DCR, reference DCR, near-copy threshold): normalised histograms and the threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 3.6), squeeze=False)
    for ax, (name, shared, ref, threshold) in zip(axes[0], panels):
        hi = float(max(np.max(shared), np.max(ref))) or 1.0
        bins = np.linspace(0.0, hi * 1.02, 40)
        ax.hist(ref, bins=bins, density=True, alpha=0.5, label=f"real holdout → train (n={len(ref)})")
        ax.hist(shared, bins=bins, density=True, alpha=0.6, label=f"shared → train (n={len(shared)})")
        ax.axvline(threshold, color="k", ls="--", lw=1, label="near-copy threshold")
        ax.set_xlabel(f"distance to closest real train record ({name})")
        ax.set_ylabel("density")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def real_pool_selected_figure(
    real: tuple[np.ndarray, np.ndarray],
    pool: tuple[np.ndarray, np.ndarray],
    selected: tuple[np.ndarray, np.ndarray],
    class_names: Sequence[str],
    path: str | os.PathLike,
    per_block: int = 6,
    seed: int = 0,
    title: str = "",
    dpi: int = 150,
) -> None:
    """One row per class: `per_block` random real train images, `per_block` random pool images and (up to
    `per_block` of) the selected images, side by side. Each pair (images, labels) is uint8 NHWC and int labels."""
    rng = np.random.default_rng(seed)
    blocks = (("real (train)", real), ("synthetic pool", pool), ("selected", selected))
    classes = sorted(set(np.unique(real[1]).tolist()) | set(np.unique(selected[1]).tolist()))
    cols = max(1, per_block)
    with style() as plt:
        h = real[0].shape[1]
        fig, axes = plt.subplots(
            len(classes), 3, figsize=(3 * (0.55 * cols + 0.3) + 1.2, 0.62 * len(classes) + 0.8), squeeze=False
        )
        for r, c in enumerate(classes):
            for q, (name, (images, labels)) in enumerate(blocks):
                members = np.flatnonzero(labels == c)
                if name != "selected" and len(members) > cols:
                    members = np.sort(rng.choice(members, cols, replace=False))
                members = members[:cols]
                ax = axes[r][q]
                if len(members):
                    show_image(ax, mosaic(images[members], cols))
                    ax.set_xlim(-0.5, cols * (h + 1) - 1.5)  # same width for short rows
                else:
                    ax.set_axis_off()
                if r == 0:
                    ax.set_title(name)
            cname = class_names[int(c)] if int(c) < len(class_names) else str(c)
            axes[r][0].set_ylabel(textwrap.fill(cname, 18), rotation=0, ha="right", va="center")
        if title:
            fig.suptitle(title)
        fig.set_layout_engine("constrained")
        save(fig, path, dpi)


def strongest_edges(edges: pd.DataFrame, nodes: np.ndarray, per_node: int) -> pd.DataFrame:
    """The edges among `nodes`, keeping for each node its `per_node` heaviest (an edge stays if either end keeps
    it): a readable drawing of a dense graph that keeps each node's strongest ties."""
    keep = set(np.asarray(nodes).tolist())
    e = edges[edges["source"].isin(keep) & edges["target"].isin(keep)]
    both = pd.concat([e.assign(node=e["source"]), e.assign(node=e["target"])], ignore_index=True).sort_values(
        ["node", "weight", "source", "target"], ascending=[True, False, True, True], kind="stable"
    )
    top = both.groupby("node", sort=False).head(per_node)
    return top[["source", "target", "weight"]].drop_duplicates().reset_index(drop=True)


def graph_nodes(communities: pd.DataFrame, selected: np.ndarray, max_nodes: int, seed: int) -> np.ndarray:
    """The nodes to draw: every selected node, then a random sample of the others (at most `max_nodes` in all)."""
    nodes = communities["node"].to_numpy()
    chosen = np.intersect1d(nodes, selected)
    others = np.setdiff1d(nodes, chosen)
    room = max(0, max_nodes - len(chosen))
    if len(others) > room:
        others = np.random.default_rng(seed).choice(others, room, replace=False)
    return np.sort(np.concatenate([chosen, others]))


def graph_figure(
    edges: pd.DataFrame,
    communities: pd.DataFrame,
    selected: np.ndarray,
    path: str | os.PathLike,
    max_nodes: int = 250,
    edges_per_node: int = 3,
    seed: int = 0,
    title: str = "",
    dpi: int = 150,
) -> None:
    """One class's similarity graph (networkx spring layout): nodes coloured by Infomap community, node size by
    flow, selected nodes as large black-ringed stars. Big graphs are drawn on a node sample (selected nodes always
    in) with each node's strongest edges, as the subtitle says."""
    import networkx as nx

    nodes = graph_nodes(communities, selected, max_nodes, seed)
    keep = set(nodes.tolist())
    among = edges[edges["source"].isin(keep) & edges["target"].isin(keep)]
    full = nx.Graph()  # the layout sees every edge among the drawn nodes; the drawing shows the strongest only
    full.add_nodes_from(nodes.tolist())
    full.add_weighted_edges_from(among[["source", "target", "weight"]].itertuples(index=False, name=None))
    pos = nx.spring_layout(full, seed=seed, weight="weight", iterations=100)
    drawn = strongest_edges(among, nodes, edges_per_node)
    g = nx.Graph()
    g.add_nodes_from(nodes.tolist())
    g.add_weighted_edges_from(drawn.itertuples(index=False, name=None))
    info = communities.set_index("node").loc[nodes]
    colours, legend = community_colours(communities["module"].to_numpy())
    colour_of = dict(zip(communities["node"].tolist(), colours.tolist()))
    flow = info["flow"].to_numpy(dtype=float)
    sizes = 15 + 185 * (flow / flow.max() if flow.max() > 0 else flow)
    chosen = np.isin(nodes, selected)
    with style() as plt:
        fig, ax = plt.subplots(figsize=(7.5, 6.0))
        nx.draw_networkx_edges(g, pos, ax=ax, width=0.4, alpha=0.25, edge_color="#555555")
        plain = nodes[~chosen].tolist()
        nx.draw_networkx_nodes(
            g,
            pos,
            nodelist=plain,
            ax=ax,
            node_size=sizes[~chosen],
            node_color=[colour_of[n] for n in plain],
            linewidths=0,
        )
        picked = nodes[chosen].tolist()
        if picked:
            nx.draw_networkx_nodes(
                g,
                pos,
                nodelist=picked,
                ax=ax,
                node_size=260,
                node_shape="*",
                node_color=[colour_of[n] for n in picked],
                edgecolors=HIGHLIGHT,
                linewidths=1.2,
            )
        handles = community_legend_handles(legend, len(picked))
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        ax.set_axis_off()
        sub = (
            f"{len(nodes)} of {len(communities)} nodes, each node's {edges_per_node} strongest edges"
            if len(nodes) < len(communities)
            else f"{len(nodes)} nodes, each node's {edges_per_node} strongest edges"
        )
        ax.set_title(f"{textwrap.fill(title, 80)}\n{sub}; node size = flow" if title else f"{sub}; node size = flow")
        fig.set_layout_engine("constrained")
        save(fig, path, dpi)


def projections(points: np.ndarray, seed: int) -> dict[str, np.ndarray | None]:
    """2-D PCA and t-SNE (scikit-learn, seeded) of the rows; t-SNE is None below 5 rows (its perplexity needs more)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = np.asarray(points, dtype=np.float64)
    out: dict[str, np.ndarray | None] = {"PCA": PCA(n_components=2, random_state=seed).fit_transform(x)}
    if len(x) >= 5:
        perplexity = float(min(30.0, (len(x) - 1) / 3.0))
        out["t-SNE"] = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    else:
        out["t-SNE"] = None
    return out


def embedding_figure(
    pool_emb: np.ndarray,
    modules: np.ndarray,
    selected: np.ndarray,
    real_emb: np.ndarray | None,
    path: str | os.PathLike,
    max_points: int = 1500,
    seed: int = 0,
    title: str = "",
    dpi: int = 150,
) -> None:
    """One class's pool embeddings in 2-D (PCA | t-SNE, fitted on pool and real rows together), coloured by
    community, selected images as black-ringed stars, real train images of the class as a faint grey background.
    Above `max_points` pool (and real) rows a random sample is drawn; selected rows are always in."""
    rng = np.random.default_rng(seed)
    n = len(pool_emb)
    chosen = np.zeros(n, dtype=bool)
    chosen[np.asarray(selected, dtype=np.int64)] = True
    rows = np.flatnonzero(chosen)
    rest = np.flatnonzero(~chosen)
    if len(rows) + len(rest) > max_points:
        rest = np.sort(rng.choice(rest, max(0, max_points - len(rows)), replace=False))
    rows = np.sort(np.concatenate([rows, rest]))
    real = np.zeros((0, pool_emb.shape[1])) if real_emb is None else np.asarray(real_emb, dtype=np.float64)
    if len(real) > max_points:
        real = real[np.sort(rng.choice(len(real), max_points, replace=False))]
    xy = projections(np.concatenate([np.asarray(pool_emb[rows], dtype=np.float64), real]), seed)
    colours, legend = community_colours(np.asarray(modules))
    is_sel = chosen[rows]
    with style() as plt:
        from matplotlib.lines import Line2D

        fig, axes = plt.subplots(1, 2, figsize=(11.0, 4.8), squeeze=False)
        for ax, (name, p) in zip(axes[0], xy.items()):
            ax.set_title(name)
            ax.set_xticks([])
            ax.set_yticks([])
            if p is None:
                ax.text(
                    0.5,
                    0.5,
                    f"t-SNE needs at least 5 images\n(this class has {len(rows) + len(real)})",
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                )
                continue
            pool_xy, real_xy = p[: len(rows)], p[len(rows) :]
            if len(real_xy):
                ax.scatter(real_xy[:, 0], real_xy[:, 1], s=8, c="#999999", alpha=0.25, linewidths=0)
            ax.scatter(
                pool_xy[~is_sel, 0], pool_xy[~is_sel, 1], s=14, c=list(colours[rows][~is_sel]), alpha=0.85, linewidths=0
            )
            ax.scatter(
                pool_xy[is_sel, 0],
                pool_xy[is_sel, 1],
                s=170,
                marker="*",
                c=list(colours[rows][is_sel]),
                edgecolors=HIGHLIGHT,
                linewidths=1.1,
                zorder=3,
            )
        handles = community_legend_handles(legend, int(chosen.sum()))
        if len(real):
            handles.append(
                Line2D([], [], ls="", marker="o", color="#999999", alpha=0.5, label=f"real train ({len(real)})")
            )
        axes[0][1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        shown = f"{len(rows)} of {n} pool images" if len(rows) < n else f"{n} pool images"
        fig.suptitle(textwrap.fill(f"{title}: {shown}" if title else shown, 110))
        fig.set_layout_engine("constrained")
        save(fig, path, dpi)


METRIC_LABELS = {"acc": "test accuracy (%)", "auc": "test AUC (%)", "f1": "test macro F1 (%)"}


def ipc_figure(summary: pd.DataFrame, metric: str, path: str | os.PathLike, title: str = "", dpi: int = 150) -> None:
    """`metric` (acc, auc or f1; mean ± std over seeds, in %) against IPC: one panel per network, one line per
    method (colour and marker, each shifted sideways by a few percent of the IPC so that equal values do not hide
    each other), full real data as a dashed line with its ± std band."""
    if metric not in METRIC_LABELS:
        raise ValueError(f"metric must be one of {sorted(METRIC_LABELS)}, not {metric!r}")
    models = list(dict.fromkeys(summary["model"]))
    methods = [
        m for m in dict.fromkeys(summary["method"]) if not (summary.loc[summary["method"] == m, "ipc"] == "all").all()
    ]
    with style() as plt:
        fig, axes = plt.subplots(1, len(models), figsize=(5.6 * len(models) + 1.8, 4.2), squeeze=False, sharey=True)
        for ax, model in zip(axes[0], models):
            s = summary[summary["model"] == model]
            for k, method in enumerate(methods):
                grp = s[(s["method"] == method) & (s["ipc"] != "all")]
                if grp.empty:
                    continue
                # a small sideways dodge per method (log axis), so that methods with equal values (e.g. two
                # selectors that pick the same images at IPC 1) stay visible side by side
                dodge = 10 ** (0.015 * (k - (len(methods) - 1) / 2))
                grp = grp.assign(x=grp["ipc"].astype(int) * dodge).sort_values("x")
                ax.errorbar(
                    grp["x"],
                    100 * grp[f"{metric}_mean"],
                    yerr=100 * grp[f"{metric}_std"],
                    capsize=3,
                    color=PALETTE[k % len(PALETTE)],
                    marker=MARKERS[k % len(MARKERS)],
                    ls=LINESTYLES[(k // len(PALETTE)) % len(LINESTYLES)],
                    label=method,
                )
            full = s[s["ipc"] == "all"]
            for _, r in full.iterrows():
                m, sd = 100 * r[f"{metric}_mean"], 100 * r[f"{metric}_std"]
                ax.axhline(m, color=HIGHLIGHT, ls="--", lw=1, label=f"{r['method']} ({m:.1f})")
                ax.axhspan(m - sd, m + sd, color=HIGHLIGHT, alpha=0.08, lw=0)
            xs = sorted({int(v) for v in s["ipc"] if v != "all"})
            ax.set_xscale("log")
            ax.set_xticks(xs, [str(v) for v in xs])
            ax.minorticks_off()
            ax.set_xlabel("images per class (IPC)")
            ax.set_title(model)
        axes[0][0].set_ylabel(METRIC_LABELS[metric])
        axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        if title:
            fig.suptitle(title)
        fig.set_layout_engine("constrained")
        save(fig, path, dpi)


def privacy_figure(table: pd.DataFrame, path: str | os.PathLike, title: str = "", dpi: int = 150) -> None:
    """Per shared set (method, IPC): left, the distance attack's AUC with its 95 % CI (0.5 = cannot tell members
    from unseen images); right, the DCR share (shared images closer to train than to holdout) with its CI beside
    the share of unseen validation images (the null)."""
    t = table.assign(label=table["method"].astype(str) + " · IPC " + table["ipc"].astype(str)).reset_index(drop=True)
    y = np.arange(len(t))[::-1]
    with style() as plt:
        fig, axes = plt.subplots(1, 2, figsize=(10.5, 0.42 * len(t) + 1.6), squeeze=False, sharey=True)
        ax = axes[0][0]
        lo = (t["mia_auc"] - t["mia_auc_lo"]).clip(lower=0)
        hi = (t["mia_auc_hi"] - t["mia_auc"]).clip(lower=0)
        ax.errorbar(t["mia_auc"], y, xerr=[lo, hi], ls="", marker="o", color=PALETTE[0], capsize=3)
        ax.axvline(0.5, color=HIGHLIGHT, ls="--", lw=1)
        ax.set_xlabel("distance-attack AUC [95 % CI]")
        ax.set_yticks(y, t["label"])
        ax = axes[0][1]
        for k, space in enumerate(("pixel", "embedding")):
            col = f"dcr_share_{space}"
            if col not in t:
                continue
            off = (k - 0.5) * 0.25
            lo = (t[col] - t[f"{col}_lo"]).clip(lower=0)
            hi = (t[f"{col}_hi"] - t[col]).clip(lower=0)
            ax.errorbar(
                t[col],
                y + off,
                xerr=[lo, hi],
                ls="",
                marker=MARKERS[k],
                color=PALETTE[k + 1],
                capsize=3,
                label=f"{space} space",
            )
            ax.scatter(
                t[f"null_share_{space}"],
                y + off,
                marker="|",
                s=160,
                linewidths=2.2,
                color=HIGHLIGHT,
                zorder=3,
                label="null: unseen validation images" if k == 0 else None,
            )
        ax.set_xlabel("DCR share [95 % CI]")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        if title:
            fig.suptitle(title)
        fig.set_layout_engine("constrained")
        save(fig, path, dpi)


def sample_grid(
    images: np.ndarray,
    labels: np.ndarray,
    path: str | os.PathLike,
    max_per_class: int = 10,
    title: str = "",
    class_names: list[str] | None = None,
) -> None:
    """One row per class, up to `max_per_class` images each, titled by the class name (or number)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plot_style import show_image

    classes = np.unique(labels)
    cols = max(1, min(max_per_class, max(int((labels == c).sum()) for c in classes)))
    fig, axes = plt.subplots(len(classes), cols, figsize=(cols * 0.8 + 0.6, len(classes) * 0.8 + 0.4), squeeze=False)
    for r, c in enumerate(classes):
        members = images[labels == c][:cols]
        for k in range(cols):
            ax = axes[r][k]
            ax.axis("off")
            if k < len(members):
                show_image(ax, members[k])
        axes[r][0].set_title(class_names[int(c)] if class_names else str(c), fontsize=7, loc="left")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
