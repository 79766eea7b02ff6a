"""Share packages (PNGs, labels.csv, datasheet.md, SHA256SUMS) round-trip; the privacy filter and its config keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from histodistill.base import HistodistillError, check_schema
from histodistill.privacy import privacy_filter, removed_per_class
from histodistill.reporting import datasheet, load, png_bytes, privacy_tests, verify, write_package
from histodistill.selection import infodist_indices

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


def test_verify_rejects_a_file_the_checksums_do_not_list(tmp_path):
    subset = {"images": np.zeros((2, 4, 4, 1), np.uint8), "labels": np.array([0, 1])}
    write_package(tmp_path / "pkg", subset, "# sheet\n")
    verify(tmp_path / "pkg")
    (tmp_path / "pkg" / "extra").mkdir()
    (tmp_path / "pkg" / "extra" / "patient_0001.png").write_bytes(b"not ours")
    with pytest.raises(HistodistillError, match="patient_0001.png: not listed"):
        verify(tmp_path / "pkg")


def _audit_report(power_leak):
    dcr = {
        "share": 0.5,
        "ci95": [0.2, 0.8],
        "null_share": 0.5,
        "difference_ci95": [-0.3, 0.3],
        "power": {"smallest_detectable_leak": power_leak},
    }
    attack = {"auc": 0.5, "auc_ci95": [0.3, 0.7], "power": {"smallest_detectable_leak": None}}
    return {
        "source": "pool",
        "init": "",
        "n_shared": 10,
        "n_train": 987,
        "n_test": 540,
        "release": {"n": 10, "level": 0.0025, "flagged": [], "exact_copies": []},
        "dcr": {"pixel": dcr, "embedding": dict(dcr)},
        "mia_distance": {"pixel": attack, "embedding": dict(attack)},
    }


def test_datasheet_claims_only_what_has_power_and_carries_no_local_paths():
    gate = {"dcr_share_margin": 0.0, "mia_auc": 0.6, "release_alpha": 0.05, "share_real_init": False}
    subset = {"images": np.zeros((10, 4, 4, 1), np.uint8), "labels": np.arange(10)}
    settings = {
        "dataset": {"name": "custom", "path": "/data/hospital/patients", "data_dir": "/srv/medmnist"},
        "results": "/home/me/results",
        "set": {"file": "/home/me/results/x_16/subsets/kmeans_ipc1.npz"},
    }
    detected = {"ipc": {"1": {k: {"n": 10, "detected": True} for k in ("near_copy", "decoded_copy")}}}
    sheet = datasheet("kmeans_ipc1", subset, _audit_report(None), {}, settings, gate, detected)
    assert "No formal privacy guarantee" in sheet and "Threat model" in sheet
    assert "/data/hospital" not in sheet and "/srv/" not in sheet and "/home/me" not in sheet
    assert "kmeans_ipc1.npz" in sheet
    tests = privacy_tests(_audit_report(None), gate, detected)
    verdicts = {t["test"].split(" (")[0].split(":")[0]: t["verdict"] for t in tests}
    assert verdicts["per image"] == "pass"  # both planted copies found at this size
    assert verdicts["DCR share, pixel"] == "not assessed"  # no power at 10 images: never "pass"
    assert verdicts["distance attack, pixel"] == "not assessed"
    assert {t["verdict"] for t in privacy_tests(_audit_report(0.5), gate, detected)} >= {"pass", "not assessed"}
    dcr_rows = [t for t in privacy_tests(_audit_report(0.5), gate, detected) if t["test"].startswith("DCR")]
    assert all(t["verdict"] == "pass" for t in dcr_rows)
    missed = {"ipc": {"1": {"near_copy": {"n": 10, "detected": False}}}}
    assert privacy_tests(_audit_report(None), gate, missed)[0]["verdict"] == "not assessed"


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
    # another quantile: the 25 % quantile of 1..20 (linear interpolation) is 5 + 0.75 = 5.75; of 10..200, 57.5
    pool = {"pixel": np.array([5.0, 5.75, 6.0, 6.0]), "embedding": np.array([100.0, 100, 100, 57.5])}
    np.testing.assert_array_equal(privacy_filter(pool, holdout, 0.25), [False, False, True, False])


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
    from histodistill.selection import prototype_indices

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
        ("privacy", "gate", {"dcr_share_margin": -0.1}),
        ("privacy", "gate", {"mia_auc": 1.5}),
        ("privacy", "gate", {"release_alpha": 0.0}),
        ("privacy", "release_tail", 2),
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
