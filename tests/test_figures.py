"""The figure and table helpers on hand-built inputs whose answers are known, and the figures and report of the
smoke run (built by the session's smoke fixture: `snakemake all figures`)."""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import planned_jobs, snakemake

from histodistill.reporting import (
    OTHER,
    PALETTE,
    class_nodes,
    community_colours,
    graph_nodes,
    html_table,
    method_tables,
    mosaic,
    strongest_edges,
)


def summary_rows(rows: list[tuple]) -> pd.DataFrame:
    cols = ["method", "ipc", "model", "acc_mean", "acc_std", "auc_mean", "auc_std", "f1_mean", "f1_std"]
    return pd.DataFrame(rows, columns=cols)


def test_method_table_bolds_the_best_of_each_column_per_network_and_never_full_real():
    s = summary_rows(
        [
            ("a", "1", "convnet", 0.50, 0.01, 0.90, 0, 0.40, 0),
            ("b", "1", "convnet", 0.60, 0.02, 0.80, 0, 0.40, 0),  # F1 tie with a: both bold
            ("a", "10", "convnet", 0.70, 0.01, 0.95, 0, 0.69, 0),
            ("b", "10", "convnet", 0.65, 0.01, 0.97, 0, 0.70, 0),
            ("a", "1", "resnet18", 0.30, 0.01, 0.70, 0, 0.20, 0),  # another network: its own best
            ("full_real", "all", "convnet", 0.99, 0.001, 0.999, 0, 0.99, 0),
        ]
    )
    md, tex = method_tables(s)
    rows = {tuple(c.strip() for c in line.strip("|").split("|")[:2]): line for line in md.splitlines()[2:]}
    cells = {k: [c.strip() for c in v.strip().strip("|").split("|")[2:]] for k, v in rows.items()}
    # columns: IPC 1 ACC, AUC, F1 | IPC 10 ACC, AUC, F1 | IPC all ACC, AUC, F1
    assert cells[("a", "convnet")][:6] == ["50.0 ± 1.0", "**90.0**", "**40.0**", "**70.0 ± 1.0**", "95.0", "69.0"]
    assert cells[("b", "convnet")][:6] == ["**60.0 ± 2.0**", "80.0", "**40.0**", "65.0 ± 1.0", "**97.0**", "**70.0**"]
    assert cells[("a", "resnet18")][:3] == ["**30.0 ± 1.0**", "**70.0**", "**20.0**"]
    assert cells[("full_real", "convnet")][6:] == ["99.0 ± 0.1", "99.9", "99.0"]  # the upper bound is not ranked
    assert "\\textbf{60.0 $\\pm$ 2.0}" in tex and "full\\_real & convnet & -- &" in tex
    assert tex.count("\\textbf{") == md.count("**") // 2
    assert tex.startswith("\\begin{tabular}{llrrrrrrrrr}") and tex.rstrip().endswith("\\end{tabular}")


def test_html_table_keeps_every_cell_and_the_bold_ones():
    md = "| m | n | x |\n|---|---|---:|\n| a | c | **1.0** |\n| b<i> | c | 2.0 |\n"
    page = html_table(md, "t")
    assert "<th>m</th><th>n</th><th>x</th>" in page
    assert "<td>a</td><td>c</td><td><b>1.0</b></td>" in page and "<td>b&lt;i&gt;</td>" in page


def test_community_colours_give_the_largest_communities_the_palette_and_the_rest_grey():
    # sizes: module 9 -> 10 nodes, module 1..8 -> 9..2 nodes; ties (none) broken by id
    modules = np.concatenate([np.full(10, 9)] + [np.full(10 - m, m) for m in range(1, 9)])
    colours, legend = community_colours(modules)
    order = [9, 1, 2, 3, 4, 5, 6]  # the seven largest
    for k, m in enumerate(order):
        assert set(colours[modules == m]) == {PALETTE[k]}
    assert set(colours[np.isin(modules, [7, 8])]) == {OTHER}
    assert legend[-1] == ("2 other communities (5)", OTHER) and legend[0] == ("community 9 (10)", PALETTE[0])
    # equal sizes: the lower id comes first
    _, legend = community_colours(np.array([5, 5, 2, 2]))
    assert [lab for lab, _ in legend] == ["community 2 (2)", "community 5 (2)"]


def test_strongest_edges_keep_each_drawn_nodes_heaviest_ties():
    edges = pd.DataFrame(
        {"source": [0, 0, 0, 1, 2, 3], "target": [1, 2, 3, 2, 3, 4], "weight": [0.9, 0.1, 0.5, 0.8, 0.2, 1.0]}
    )
    kept = strongest_edges(edges, np.array([0, 1, 2, 3]), per_node=1)  # node 4 is not drawn
    got = set(map(tuple, kept[["source", "target"]].to_numpy().tolist()))
    # 0 -> (0,1) 0.9; 1 -> (0,1) 0.9; 2 -> (1,2) 0.8; 3 -> (0,3) 0.5 (its edge to 4 is not drawn)
    assert got == {(0, 1), (1, 2), (0, 3)}


def test_graph_nodes_always_include_the_selected_and_respect_the_cap():
    communities = pd.DataFrame({"node": np.arange(100), "module": 1})
    selected = np.array([3, 97, 50])
    nodes = graph_nodes(communities, selected, max_nodes=10, seed=0)
    assert len(nodes) == 10 and set(selected) <= set(nodes) and np.all(np.diff(nodes) > 0)
    assert len(graph_nodes(communities, selected, max_nodes=1000, seed=0)) == 100


def test_class_nodes_are_positions_among_the_classs_pool_rows():
    labels = np.array([1, 0, 1, 1, 0, 1])  # class 1 rows: 0, 2, 3, 5
    np.testing.assert_array_equal(class_nodes(labels, np.array([5, 4, 0, 1]), 1), [3, 0])
    np.testing.assert_array_equal(class_nodes(labels, np.array([4, 1]), 0), [1, 0])


def test_mosaic_tiles_images_in_rows_with_white_padding():
    imgs = np.stack([np.full((2, 2, 1), v, np.uint8) for v in (10, 20, 30)])
    m = mosaic(imgs, cols=2, pad=1)
    assert m.shape == (5, 5, 1)
    assert m[0, 0, 0] == 10 and m[0, 3, 0] == 20 and m[3, 0, 0] == 30 and m[2, 2, 0] == 255 and m[4, 4, 0] == 255


# ------------------------------------------------------------------------------------- smoke run (workflow)


def png_size(path) -> tuple[int, int]:
    """Width and height of a valid PNG (signature, IHDR, every chunk's CRC, IEND); else AssertionError."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"{path}: bad CRC in {kind!r}"
        chunks.append((kind, body))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND", f"{path}: truncated PNG"
    return struct.unpack(">II", chunks[0][1][:8])


def smoke_figures(out) -> list:
    fig = out / "figures"
    names = ["accuracy", "acc_ipc", "auc_ipc", "privacy_overview"]
    names += [f"{k}_{s}" for k in ("classes", "graph", "embedding") for s in ("infodist_ipc2", "infodist_plus_ipc2")]
    return [fig / f"{n}.png" for n in names] + sorted(fig.glob("samples_*.png")) + sorted(fig.glob("privacy_*_*.png"))


@pytest.mark.workflow
def test_smoke_run_builds_every_figure_and_a_report_holding_them_and_both_tables(smoke_run, tmp_path):
    config, out = smoke_run
    figures = smoke_figures(out)
    assert len(figures) >= 10 + 9 * 2
    for path in figures:
        width, height = png_size(path)
        assert min(width, height) >= 150 and path.stat().st_size > 3000, (path, width, height)
    tex = (out / "tables" / "methods.tex").read_text()
    assert "\\textbf{" in tex and "infodist\\_plus" in tex
    report = tmp_path / "report.html"
    snakemake(config, "figures", "--report", str(report), check=True)
    embedded = report_results(report.read_text())
    missing = [p.name for p in figures if p.name not in embedded]
    assert not missing, f"the report lacks {missing}"
    for path in figures:
        assert embedded[path.name] == path.read_bytes(), path.name  # the figure itself, embedded
    for table, marker in (("summary.html", "infodist_plus"), ("privacy.html", "DCR share"), ("config.html", "seed")):
        assert marker in embedded[table].decode(), table


def report_results(page: str) -> dict[str, bytes]:
    """File name -> bytes of every result embedded in a snakemake HTML report (its `results` script, data URIs)."""
    import json

    block = page[page.index('<script id="results">') :]
    block = block[: block.index("</script>")]
    results = json.loads(block[block.index("{") : block.rindex("}") + 1])
    return {r["filename"]: base64.b64decode(r["data_uri"].split("base64,", 1)[1]) for r in results.values()}


@pytest.mark.workflow
def test_changing_a_plotting_setting_reruns_only_figure_and_report_rules(smoke_run, tmp_path):
    config, _ = smoke_run
    settings = yaml.safe_load(config.read_text())  # same results directory, other plotting settings
    settings["figures"] = {"dpi": 90, "images_per_class": 4}
    changed = tmp_path / "plot.yaml"
    changed.write_text(yaml.safe_dump(settings))
    jobs = planned_jobs(changed, "figures")
    figure_rules = {"figure_classes", "figure_graph", "figure_embedding", "figure_metric_ipc", "figure_privacy"}
    assert set(jobs) - {"figures", "report_tables"} == figure_rules, jobs


def test_screenshot_without_chromium_says_how_to_install_it(tmp_path, monkeypatch):
    from histodistill.base import HistodistillError
    from histodistill.reporting import browser

    page = tmp_path / "r.html"
    page.write_text("<html><body>x</body></html>")
    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    with pytest.raises(HistodistillError, match="apt-get install chromium"):
        browser.screenshot(page, tmp_path / "r.png")


@pytest.mark.skipif(not any(__import__("shutil").which(b) for b in ("chromium", "google-chrome")), reason="no Chromium")
def test_screenshot_of_a_page_in_headless_chromium_shows_the_page(tmp_path):
    """A red page gives a red screenshot of the asked size (Chromium really rendered it)."""
    from histodistill.reporting import screenshot

    page = tmp_path / "r.html"
    page.write_text("<html><body style='margin:0;background:#ff0000'></body></html>")
    png = screenshot(page, tmp_path / "r.png", width=320, height=200)
    import matplotlib.image

    img = matplotlib.image.imread(png)
    assert img.shape[:2] == (200, 320)
    assert np.allclose(img[100, 160, :3], [1.0, 0.0, 0.0], atol=0.02)
