"""One style for every figure: palette, markers, saving, and the small drawing helpers."""

from __future__ import annotations

import os
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
