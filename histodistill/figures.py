"""The paper's figures and tables, drawn from workflow files only, in one style.

Style: Okabe–Ito colours (distinguishable with the common colour-vision deficiencies), 9–11 pt fonts, constrained
layout and `bbox_inches="tight"` so that no label is cut or overlaps. Categorical colours beyond the palette's seven
are not told apart reliably by anyone, so a figure coloured by community gives the seven largest communities their own
colour and draws the rest in grey as "other" (the legend says so).

Every function takes arrays or tables and writes one file; the rules in rules/figures.smk read the workflow files.
"""

from __future__ import annotations

import os
import textwrap
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

# Okabe & Ito (2008), without black (reserved for highlights) and yellow last (weakest on white).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442")
OTHER = "#BBBBBB"
HIGHLIGHT = "#000000"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*")
LINESTYLES = ("-", "--", "-.", ":")

STYLE: dict[str, Any] = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "figure.titlesize": 12,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.05,
    "image.interpolation": "nearest",
}


@contextmanager
def style() -> Iterator[Any]:
    """matplotlib.pyplot (Agg backend) under the project's style, with the palette as the colour cycle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from cycler import cycler

    with plt.rc_context({**STYLE, "axes.prop_cycle": cycler(color=list(PALETTE))}):
        yield plt


def save(fig: Any, path: str | os.PathLike, dpi: int) -> None:
    """Write a figure (PNG, tight bounding box) and close it. Metadata without a date: same figure, same bytes."""
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=dpi, metadata={"Software": None})
    plt.close(fig)


# ------------------------------------------------------------------------------------------ helpers


def community_colours(modules: np.ndarray) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Per node, the colour of its community: the len(PALETTE) largest communities (ties: lower id first) get the
    palette's colours, the rest OTHER. Returns the colours and the legend entries (label, colour)."""
    modules = np.asarray(modules)
    ids, counts = np.unique(modules, return_counts=True)
    order = ids[np.lexsort((ids, -counts))]
    named = {int(m): PALETTE[k] for k, m in enumerate(order[: len(PALETTE)])}
    colours = np.array([named.get(int(m), OTHER) for m in modules], dtype=object)
    size = dict(zip(ids.tolist(), counts.tolist()))
    legend = [(f"community {m} ({size[m]})", c) for m, c in named.items()]
    rest = order[len(PALETTE) :]
    if len(rest):
        legend.append((f"{len(rest)} other communities ({int(sum(size[int(m)] for m in rest))})", OTHER))
    return colours, legend


def community_legend_handles(legend: list[tuple[str, str]], n_selected: int) -> list[Any]:
    """Legend entries of a figure coloured by community: one dot per `community_colours` entry, then the star that
    marks the selected images."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], ls="", marker="o", color=c, label=lab) for lab, c in legend]
    star = dict(marker="*", markersize=13, color="white", markeredgecolor=HIGHLIGHT)
    handles.append(Line2D([], [], ls="", label=f"selected ({n_selected})", **star))
    return handles


def mosaic(images: np.ndarray, cols: int, pad: int = 1) -> np.ndarray:
    """uint8 NHWC images tiled into one uint8 HxWxC picture, `cols` per row, white padding between them."""
    n, h, w, c = images.shape
    cols = max(1, min(cols, n)) if n else 1
    rows = max(1, -(-n // cols))
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, c), 255, dtype=np.uint8)
    for k in range(n):
        r, q = divmod(k, cols)
        out[r * (h + pad) : r * (h + pad) + h, q * (w + pad) : q * (w + pad) + w] = images[k]
    return out


def show_image(ax: Any, img: np.ndarray) -> None:
    """An HWC uint8 image (grey for one channel) on its 0–255 scale, without ticks, grid or frame."""
    grey = img.shape[-1] == 1
    ax.imshow(img[..., 0] if grey else img, cmap="gray" if grey else None, vmin=0, vmax=255)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)


def class_nodes(pool_labels: np.ndarray, indices: np.ndarray, c: int) -> np.ndarray:
    """The class-local node ids (positions among class c's pool rows, as in the graph and community files) of the
    pool `indices` that belong to class c."""
    rows = np.flatnonzero(np.asarray(pool_labels) == c)
    picked = np.asarray(indices, dtype=np.int64)
    picked = picked[np.isin(picked, rows)]
    return np.searchsorted(rows, picked)


def read_edge_table(path: str | os.PathLike) -> pd.DataFrame:
    """A graph file (graph/{key}/class_{c}.edges.tsv.gz: '# nodes=N', then source, target, weight) as a table."""
    return pd.read_csv(path, sep="\t", comment="#")


def ipc_order(values: Sequence[Any]) -> list[Any]:
    return sorted(set(values), key=lambda v: 10**9 if str(v) == "all" else int(v))


# ------------------------------------------------------------------------------------------ figures


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


# ------------------------------------------------------------------------------------------ tables


def _best_in_columns(summary: pd.DataFrame, ipcs: list[Any], metrics: Sequence[str]) -> set[tuple[str, str, Any, str]]:
    """(method, model, ipc, metric) of the best mean per network, IPC and metric among the selected and distilled
    sets (full real data, the upper bound, is not in the race); ties are all best."""
    best = set()
    for (model, ipc), grp in summary[summary["ipc"] != "all"].groupby(["model", "ipc"], sort=False):
        for metric in metrics:
            vals = grp[f"{metric}_mean"].round(3)
            if vals.notna().any():
                top = vals.max()
                best |= {(m, model, ipc, metric) for m, v in zip(grp["method"], vals) if v == top}
    return best


def method_tables(summary: pd.DataFrame, metrics: Sequence[str] = ("acc", "auc", "f1")) -> tuple[str, str]:
    """The method × IPC table in the paper's layout (per IPC: ACC ± std, AUC, F1, in %) as Markdown and LaTeX
    (booktabs), the best value of each column per network in bold."""
    ipcs = ipc_order(summary["ipc"].astype(str).tolist())
    summary = summary.assign(ipc=summary["ipc"].astype(str))
    best = _best_in_columns(summary, ipcs, metrics)
    names = {"acc": "ACC", "auc": "AUC", "f1": "F1"}
    md = [
        "| method | network | " + " | ".join(f"IPC {i}: {names[m]}" for i in ipcs for m in metrics) + " |",
        "|---|---|" + "---:|" * (len(ipcs) * len(metrics)),
    ]
    tex_cols = "ll" + "r" * (len(ipcs) * len(metrics))
    tex = [
        f"\\begin{{tabular}}{{{tex_cols}}}",
        "\\toprule",
        "& & " + " & ".join(f"\\multicolumn{{{len(metrics)}}}{{c}}{{IPC {i}}}" for i in ipcs) + " \\\\",
        " ".join(f"\\cmidrule(lr){{{3 + k * len(metrics)}-{2 + (k + 1) * len(metrics)}}}" for k in range(len(ipcs))),
        "Method & Network & " + " & ".join(names[m] for _ in ipcs for m in metrics) + " \\\\",
        "\\midrule",
    ]

    def tex_escape(s: str) -> str:
        return s.replace("\\", "\\textbackslash{}").replace("_", "\\_").replace("%", "\\%").replace("&", "\\&")

    for (method, model), grp in summary.groupby(["method", "model"], sort=False):
        md_cells, tex_cells = [], []
        for i in ipcs:
            row = grp[grp["ipc"] == i]
            for m in metrics:
                if row.empty or pd.isna(row.iloc[0][f"{m}_mean"]):
                    md_cells.append("")
                    tex_cells.append("--")
                    continue
                r = row.iloc[0]
                text = f"{100 * r[f'{m}_mean']:.1f}"
                tex_text = text
                if m == "acc":
                    text += f" ± {100 * r[f'{m}_std']:.1f}"
                    tex_text += f" $\\pm$ {100 * r[f'{m}_std']:.1f}"
                bold = (method, model, i, m) in best
                md_cells.append(f"**{text}**" if bold else text)
                tex_cells.append(f"\\textbf{{{tex_text}}}" if bold else tex_text)
        md.append(f"| {method} | {model} | " + " | ".join(md_cells) + " |")
        tex.append(f"{tex_escape(str(method))} & {tex_escape(str(model))} & " + " & ".join(tex_cells) + " \\\\")
    tex += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(md) + "\n", "\n".join(tex) + "\n"


def html_table(markdown: str, title: str) -> str:
    """A Markdown pipe table (bold as **x**) as a small self-contained HTML page, for the snakemake report."""
    import html

    lines = [ln for ln in markdown.strip().splitlines() if ln.startswith("|")]
    if len(lines) < 2:
        body = f"<p>{html.escape(markdown)}</p>"
    else:

        def cells(line: str) -> list[str]:
            return [c.strip() for c in line.strip().strip("|").split("|")]

        def fmt(c: str) -> str:
            c = html.escape(c)
            return f"<b>{c[2:-2]}</b>" if c.startswith("**") and c.endswith("**") and len(c) > 4 else c

        head = "".join(f"<th>{fmt(c)}</th>" for c in cells(lines[0]))
        rows = "".join("<tr>" + "".join(f"<td>{fmt(c)}</td>" for c in cells(ln)) + "</tr>" for ln in lines[2:])
        body = f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    css = (
        "body{font-family:sans-serif;font-size:13px;margin:8px}table{border-collapse:collapse}"
        "th,td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right;white-space:nowrap}"
        "th:first-child,td:first-child,th:nth-child(2),td:nth-child(2){text-align:left}th{background:#f2f2f2}"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{css}</style></head><body><h3>{html.escape(title)}</h3>{body}</body></html>\n"
    )


def config_html(config: dict[str, Any], title: str) -> str:
    """The run's configuration (schema defaults filled in) as YAML in a small HTML page, for the report."""
    import html

    import yaml

    text = yaml.safe_dump(config, sort_keys=False, default_flow_style=None, width=110)
    css = "body{font-family:sans-serif;font-size:13px;margin:8px}pre{font-size:12px;background:#f6f6f6;padding:8px}"
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{css}</style>"
        f"</head><body><h3>{html.escape(title)}</h3><pre>{html.escape(text)}</pre></body></html>\n"
    )
