"""Share packages (PNGs, labels.csv, datasheet.md, SHA256SUMS) round-trip; the privacy filter and its config keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from histodistill.errors import HistodistillError
from histodistill.select import privacy_filter, removed_per_class
from histodistill.share import load, png_bytes, verify, write_package
from histodistill.subsets import infodist_indices
from histodistill.workflow import check_schema

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("channels", [1, 3])
def test_package_round_trip_and_tamper_detection(tmp_path, channels):
    rng = np.random.default_rng(channels)
    subset = {
        "images": rng.integers(0, 256, (7, 6, 5, channels), dtype=np.uint8),
        "labels": np.array([0, 0, 1, 1, 2, 2, 9]),
    }
    files = write_package(tmp_path / "pkg", subset, "# sheet\n")
    assert len([f for f in files if f.endswith(".png")]) == 7 and "SHA256SUMS" in files
    back = load(tmp_path / "pkg")
    np.testing.assert_array_equal(back["images"], subset["images"])
    np.testing.assert_array_equal(back["labels"], subset["labels"])
    assert png_bytes(subset["images"][0]) == png_bytes(subset["images"][0].copy())  # deterministic bytes
    victim = tmp_path / "pkg" / next(f for f in files if f.endswith(".png"))
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 1
    victim.write_bytes(bytes(data))
    with pytest.raises(HistodistillError, match="checksum mismatch"):
        verify(tmp_path / "pkg")


def test_privacy_filter_hand_case():
    holdout = {"pixel": np.arange(1.0, 21.0), "embedding": np.arange(1.0, 21.0) * 10}
    # 5 % quantile of 1..20 (linear interpolation) = 1.95; of 10..200 = 19.5
    pool = {"pixel": np.array([0.0, 1.95, 2.0, 5.0, 5.0]), "embedding": np.array([100.0, 100, 100, 19.5, 30])}
    keep = privacy_filter(pool, holdout, 0.05)
    np.testing.assert_array_equal(keep, [False, False, True, False, True])
    table = removed_per_class(
        np.array([0, 0, 1, 1, 1]), keep, {s: pool[s] <= np.quantile(holdout[s], 0.05) for s in pool}
    )
    assert table.to_dict("list") == {
        "class": [0, 1],
        "pool": [2, 3],
        "removed_pixel": [2, 0],
        "removed_embedding": [0, 1],
        "removed": [2, 1],
        "kept": [0, 2],
    }
    with pytest.raises(HistodistillError, match="select.privacy_filter.quantile"):
        privacy_filter(pool, holdout, 0.7)


def test_infodist_selection_skips_filtered_images(tmp_path):
    labels = np.repeat([0, 1], 6)
    files = []
    for c in (0, 1):
        df = pd.DataFrame(
            {
                "node": range(6),
                "module": [0, 0, 0, 1, 1, 1],
                "modular_centrality": [0.9, 0.5, 0.1, 0.8, 0.4, 0.2],
                "flow": [0.2, 0.2, 0.1, 0.2, 0.2, 0.1],
                "enter_flow": 0.0,
                "exit_flow": 0.0,
            }
        )
        files.append(tmp_path / f"class_{c}.tsv")
        df.to_csv(files[-1], sep="\t", index=False)
    plain = infodist_indices(labels, files, 2, "modular_centrality")
    np.testing.assert_array_equal(plain, [0, 3, 6, 9])
    np.testing.assert_array_equal(infodist_indices(labels, files, 2, "modular_centrality", np.ones(12, bool)), plain)
    keep = np.ones(12, bool)
    keep[[0, 9]] = False  # the most central image of module 0 (class 0) and of module 1 (class 1) removed
    # class 0: module 1 now has more flow (0.5 vs 0.3) and comes first
    np.testing.assert_array_equal(infodist_indices(labels, files, 2, "modular_centrality", keep), [3, 1, 6, 10])


def test_infodist_plus_selection_skips_filtered_images_and_maps_class_nodes_to_pool_rows(tmp_path):
    from histodistill.subsets import prototype_indices

    labels = np.repeat([0, 1], 6)
    # 1-D embeddings: per class module 0 at 0, 1, 2 (medoid node 1) and module 1 at 10, 11, 12 (medoid node 4)
    emb = np.tile([0.0, 1.0, 2.0, 10.0, 11.0, 12.0], 2)[:, None]
    files = []
    for c in (0, 1):
        df = pd.DataFrame(
            {"node": range(6), "module": [0, 0, 0, 1, 1, 1], "modular_centrality": 0.5, "flow": 1 / 6}
            | {"enter_flow": 0.0, "exit_flow": 0.0}
        )
        files.append(tmp_path / f"class_{c}.tsv")
        df.to_csv(files[-1], sep="\t", index=False)
    np.testing.assert_array_equal(sorted(prototype_indices(labels, emb, files, 2)), [1, 4, 7, 10])
    keep = np.ones(12, bool)
    keep[[1, 2, 10]] = False  # class 0 keeps 0 and module 1; class 1 loses the medoid of its module 1
    picked = sorted(prototype_indices(labels, emb, files, 2, keep))
    assert picked == [0, 4, 7, 9] or picked == [0, 4, 7, 11]  # 11 and 12: nearest the kept mean 11.5
    assert not set(picked) & {1, 2, 10}


@pytest.mark.parametrize(
    "section, key, value",
    [
        ("privacy", "gate", {"dcr_share": 0.4}),
        ("privacy", "gate", {"mia_auc": 1.5}),
        ("privacy", "gate", {"near_copy_rate": -0.1}),
        ("privacy", "near_copy_quantile", 0.0),
        ("select", "privacy_filter", {"quantile": 0.7}),
    ],
)
def test_thresholds_outside_their_ranges_are_rejected_naming_the_key(section, key, value):
    config = {section: {key: value}}
    with pytest.raises(HistodistillError) as err:
        check_schema(config, REPO / "schemas" / "config.schema.yaml")
    name = f"{section}.{key}" + (f".{next(iter(value))}" if isinstance(value, dict) else "")
    assert name in str(err.value)
