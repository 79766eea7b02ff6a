"""Your own data (dataset.name: custom): image folders and .npz files, the split, the checks, two workflow runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import snakemake, write_config
from PIL import Image

from histodistill.base import HistodistillError, load_npz
from histodistill.data import (
    check_custom_dataset,
    check_image_files,
    load_custom,
    split_counts,
    split_plan,
    square_resize,
)

# Solid class colours make every pixel an exact oracle (JPEG within a few levels).
COLOURS = {"adipose": (200, 30, 30), "lymphocytes": (30, 200, 30), "tumour": (30, 30, 200)}
SIZES = [(20, 20), (32, 24), (12, 12), (16, 40)]  # (width, height): square, landscape, small, portrait
GREY_FILE = "tumour/img_03.png"
GREY_VALUE = 128


def write_image_folder(root: Path, per_class: int = 9) -> Path:
    """3 classes, PNG and JPEG alternating, four sizes, one grey image among RGB ones."""
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            w, h = SIZES[i % len(SIZES)]
            rel = f"{name}/img_{i:02d}.png" if i % 2 == 0 or i == 3 else f"{name}/img_{i:02d}.jpg"
            if rel == GREY_FILE:
                Image.new("L", (w, h), GREY_VALUE).save(root / rel)
            else:
                Image.new("RGB", (w, h), colour).save(root / rel, quality=95)
    return root


def write_npz(path: Path, n=(12, 4, 6), n_classes: int = 3, size: int = 12, seed: int = 0, **extra) -> Path:
    """MedMNIST layout: grey (N, H, W) uint8 images, (N, 1) uint8 labels; pixel value = 40 + 60 × label."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in zip(("train", "val", "test"), n):
        labels = (np.arange(count) % n_classes).astype(np.uint8)
        images = np.broadcast_to((40 + 60 * labels)[:, None, None], (count, size, size)).astype(np.uint8)
        arrays[f"{split}_images"] = images
        arrays[f"{split}_labels"] = labels.reshape(-1, 1)
    arrays.update(extra)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


def dataset(path: Path, **kw) -> dict:
    return {
        "name": "custom",
        "id": "mine",
        "path": str(path),
        "size": 8,
        "split_seed": 0,
        "val_fraction": 0.15,
        "test_fraction": 0.3,
        "channels": "auto",
        "aspect": "crop",
        **kw,
    }


# ----------------------------------------------------------------------------------------- split


def test_unsplit_folder_is_split_stratified_seeded_and_reproducible(tmp_path):
    root = write_image_folder(tmp_path / "tiles", per_class=9)
    (root / "tumour" / "extra.png").write_bytes((root / "tumour" / "img_00.png").read_bytes())  # 10 tumour images
    plan, names = split_plan(dataset(root))
    assert names == ["adipose", "lymphocytes", "tumour"]
    assert len(plan) == 28 and plan["source"].is_unique
    assert (plan["class"].map(names.index) == plan["label"]).all()
    assert all(plan["source"].str.split("/").str[0] == plan["class"])
    counts = pd.crosstab(plan["class"], plan["split"])
    # round-half-up of n × fraction: 9 → test 3 (2.7), val 1 (1.35); 10 → test 3, val 2 (1.5)
    assert counts.loc["adipose"].to_dict() == {"test": 3, "train": 5, "val": 1}
    assert counts.loc["tumour"].to_dict() == {"test": 3, "train": 5, "val": 2}
    again, _ = split_plan(dataset(root))
    assert again.equals(plan)
    other, _ = split_plan(dataset(root, split_seed=1))
    assert sorted(other["source"]) == sorted(plan["source"])
    assert not other.set_index("source")["split"].sort_index().equals(plan.set_index("source")["split"].sort_index())


@pytest.mark.parametrize("n", range(3, 40))
def test_split_counts_follow_the_fractions(n):
    train, val, test = split_counts(n, 0.15, 0.3)
    assert train + val + test == n and val >= 1 and test >= 1
    assert abs(test - 0.3 * n) <= 0.5  # rounded to the nearest count
    assert abs(val - 0.15 * n) <= 0.5 or (val == 1 and 0.15 * n < 0.5)  # or the minimum of one image


def test_presplit_folder_keeps_its_split_and_carves_val_from_train(tmp_path):
    root = tmp_path / "tiles"
    write_image_folder(root / "train", per_class=8)
    write_image_folder(root / "test", per_class=2)
    plan, names = split_plan(dataset(root))
    assert names == ["adipose", "lymphocytes", "tumour"]
    from_test = plan["source"].str.startswith("test/")
    assert (plan.loc[from_test, "split"] == "test").all() and (plan.loc[~from_test, "split"] != "test").all()
    # val carved from train with share 0.15 / 0.7: round(8 × 0.214) = 2 per class
    assert plan[plan["split"] == "val"].groupby("class").size().to_dict() == {n: 2 for n in COLOURS}
    assert plan[plan["split"] == "train"].groupby("class").size().to_dict() == {n: 6 for n in COLOURS}
    write_image_folder(root / "val", per_class=1)
    plan, _ = split_plan(dataset(root))
    assert (plan["split"] == plan["source"].str.split("/").str[0]).all()


def write_patient_folder(root: Path, patients: int = 10, tiles: int = 4) -> Path:
    """root/<class>/patient_<class>_<k>/tile_<j>.png: every patient's tiles in a folder of their own."""
    for name, colour in COLOURS.items():
        for k in range(patients):
            folder = root / name / f"patient_{name}_{k}"
            folder.mkdir(parents=True)
            for j in range(tiles):
                Image.new("RGB", (12, 12), colour).save(folder / f"tile_{j}.png")
    return root


def test_grouped_split_keeps_every_patient_in_one_split_and_follows_the_fractions(tmp_path):
    root = write_patient_folder(tmp_path / "tiles")
    plan, _ = split_plan(dataset(root, groups="folder"))
    assert (plan["group"] == plan["source"].str.split("/").str[1]).all()
    assert plan.groupby("group")["split"].nunique().max() == 1  # group-disjoint
    # 10 patients of 4 tiles per class: test takes patients until it holds round(40 × 0.3) = 12 tiles (3 patients),
    # val until round(40 × 0.15) = 6 (2 patients: 8 tiles), train the other 5
    per_class = plan.groupby(["class", "split"])["group"].nunique().unstack()
    assert (per_class["test"] == 3).all() and (per_class["val"] == 2).all() and (per_class["train"] == 5).all()
    again, _ = split_plan(dataset(root, groups="folder"))
    assert again.equals(plan)
    # per image (no groups) the same folder spreads patients over splits: the property above is the grouping's
    ungrouped, _ = split_plan(dataset(root))
    ungrouped["patient"] = ungrouped["source"].str.split("/").str[1]
    assert ungrouped.groupby("patient")["split"].nunique().max() > 1


def test_groups_from_a_csv_and_a_given_split_that_mixes_a_patient_is_refused(tmp_path):
    root = tmp_path / "tiles"
    write_image_folder(root / "train", per_class=6)
    write_image_folder(root / "test", per_class=2)
    plan, _ = split_plan(dataset(root))
    table = pd.DataFrame({"source": plan["source"], "group": [f"p{i}" for i in range(len(plan))]})
    first_test = int(np.flatnonzero(plan["source"].str.startswith("test/"))[0])
    table.loc[first_test, "group"] = "p0"  # patient p0: a training tile and a test tile
    table.to_csv(tmp_path / "groups.csv", index=False)
    with pytest.raises(HistodistillError, match="group 'p0' has images in test and train"):
        split_plan(dataset(root, groups=str(tmp_path / "groups.csv")))
    table["group"] = plan["split"] + "_" + plan["class"]
    table.to_csv(tmp_path / "groups.csv", index=False)
    plan, _ = split_plan(dataset(root, groups=str(tmp_path / "groups.csv")))
    assert plan.groupby("group")["split"].nunique().max() == 1
    table.iloc[:-1].to_csv(tmp_path / "groups.csv", index=False)
    with pytest.raises(HistodistillError, match="gives no group for 1 images"):
        split_plan(dataset(root, groups=str(tmp_path / "groups.csv")))


def test_folder_groups_need_a_patient_folder(tmp_path):
    root = write_image_folder(tmp_path / "tiles", per_class=4)
    with pytest.raises(HistodistillError, match="lies directly in its class folder"):
        split_plan(dataset(root, groups="folder"))


# ----------------------------------------------------------------------------------------- reading


def test_folder_images_are_read_resized_and_converted_consistently(tmp_path):
    root = write_image_folder(tmp_path / "tiles", per_class=6)
    plan, names = split_plan(dataset(root))
    arrays = load_custom(dataset(root), plan, names)
    assert list(arrays["class_names"]) == names and int(arrays["n_classes"]) == 3
    total = 0
    for split in ("train", "val", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        assert images.dtype == np.uint8 and labels.dtype == np.int64
        assert images.shape[1:] == (8, 8, 3)  # one RGB image makes every image RGB
        rows = plan[plan["split"] == split]
        assert labels.tolist() == rows["label"].tolist()
        for img, source in zip(images, rows["source"]):
            expected = (GREY_VALUE,) * 3 if source == GREY_FILE else COLOURS[source.split("/")[0]]
            assert np.abs(img.astype(int) - np.array(expected)).max() <= 3, source
        total += len(images)
    assert total == 18
    again = load_custom(dataset(root), plan, names)
    assert all(np.array_equal(arrays[k], again[k]) for k in arrays)


def test_all_grey_folder_stays_grey_and_channels_can_be_forced(tmp_path):
    root = tmp_path / "grey"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(4):
            Image.new("L", (10, 10), 50 + 100 * (c == "b")).save(root / c / f"{i}.png")
    plan, names = split_plan(dataset(root))
    grey = load_custom(dataset(root), plan, names)
    assert grey["train_images"].shape[-1] == 1
    assert set(np.unique(grey["train_images"][grey["train_labels"] == 1])) == {150}
    rgb = load_custom(dataset(root, channels="rgb"), plan, names)
    assert rgb["train_images"].shape[-1] == 3 and np.array_equal(rgb["train_images"][..., 2:], grey["train_images"])


def test_sixteen_bit_tiff_and_rgba_png_are_read_as_eight_bit(tmp_path):
    root = tmp_path / "modes"
    (root / "deep").mkdir(parents=True)
    (root / "alpha").mkdir()
    for i in range(4):
        Image.fromarray(np.full((10, 10), 257 * 100, np.uint16)).save(root / "deep" / f"{i}.tif")
        Image.new("RGBA", (10, 10), (10, 20, 30, 40)).save(root / "alpha" / f"{i}.png")
    plan, names = split_plan(dataset(root))
    arrays = load_custom(dataset(root), plan, names)
    images, labels = arrays["train_images"], arrays["train_labels"]
    assert (images[labels == names.index("deep")] == 100).all()
    assert (images[labels == names.index("alpha")] == (10, 20, 30)).all()


def test_non_square_images_are_centre_cropped_or_stretched():
    img = np.zeros((24, 32, 3), np.uint8)  # h × w: red 4-pixel bands left and right of a green 24 × 24 centre
    img[:, :4] = img[:, -4:] = (255, 0, 0)
    img[:, 4:-4] = (0, 255, 0)
    cropped, was_cropped, resized = square_resize(img, 12, "crop")
    assert was_cropped and resized and (cropped == (0, 255, 0)).all()
    stretched, was_cropped, _ = square_resize(img, 12, "stretch")
    assert not was_cropped and stretched[:, 0, 0].min() > 127 and stretched[:, 6, 1].min() == 255
    same, _, resized = square_resize(img[:, 4:-4], 24, "crop")
    assert not resized and np.array_equal(same, img[:, 4:-4])


def test_npz_in_medmnist_layout_is_read_with_class_names(tmp_path):
    path = write_npz(tmp_path / "mine.npz")
    ds = dataset(path, classes=["benign", "malignant", "normal"])
    plan, names = split_plan(ds)
    assert names == ["benign", "malignant", "normal"]
    arrays = load_custom(ds, plan, names)
    assert arrays["train_images"].shape == (12, 8, 8, 1)
    assert np.array_equal(arrays["train_images"][:, 0, 0, 0], 40 + 60 * arrays["train_labels"])
    assert arrays["test_labels"].tolist() == sorted(np.arange(6) % 3)  # rows ordered by label
    # without val: carved from train; without any split: split here
    unsplit = tmp_path / "unsplit.npz"
    np.savez(unsplit, images=np.zeros((30, 5, 5, 3), np.uint8), labels=np.arange(30) % 2)
    plan, names = split_plan(dataset(unsplit))
    assert names == ["0", "1"] and pd.crosstab(plan["label"], plan["split"]).loc[0].to_dict() == {
        "test": 5,
        "train": 8,
        "val": 2,
    }


# ----------------------------------------------------------------------------------------- bad input


def _bad_folder(tmp_path: Path, case: str) -> tuple[dict, str, int]:
    """(dataset block, path the message must name, training images needed per class) for each bad folder."""
    root = write_image_folder(tmp_path / "tiles", per_class=6)
    if case == "empty class":
        (root / "stroma").mkdir()
        return dataset(root), str(root / "stroma"), 1
    if case == "too few for ipc":
        return dataset(root), str(root / "adipose"), 4  # 6 images: 3 train after the split
    if case == "not an image":
        (root / "adipose" / "img_01.jpg").write_bytes(b"this is not a jpeg")
        return dataset(root), str(root / "adipose" / "img_01.jpg"), 1
    if case == "truncated jpeg":  # noise, so that the cut falls in the image data, not in the header
        noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(noise).save(root / "lymphocytes" / "img_01.jpg", quality=95)
        data = (root / "lymphocytes" / "img_01.jpg").read_bytes()
        (root / "lymphocytes" / "img_01.jpg").write_bytes(data[: int(len(data) * 0.7)])
        return dataset(root), str(root / "lymphocytes" / "img_01.jpg"), 1
    if case == "truncated png":
        data = (root / "tumour" / "img_00.png").read_bytes()
        (root / "tumour" / "img_00.png").write_bytes(data[: len(data) - 20])
        return dataset(root), str(root / "tumour" / "img_00.png"), 1
    if case == "split and unsplit":
        write_image_folder(root / "train", per_class=2)
        return dataset(root), str(root), 1
    if case == "test class not in train":
        split = tmp_path / "split"
        write_image_folder(split / "train", per_class=4)
        write_image_folder(split / "test", per_class=2)
        (split / "test" / "necrosis").mkdir()
        (split / "test" / "adipose" / "img_00.png").rename(split / "test" / "necrosis" / "img_00.png")
        return dataset(split), str(split / "test" / "necrosis"), 1
    raise ValueError(case)


def _bad_npz(tmp_path: Path, case: str) -> tuple[dict, str, int]:
    if case == "npz label out of range":
        path = write_npz(tmp_path / "bad.npz")
        return dataset(path, classes=["a", "b"]), str(path), 1  # labels 0..2, two names
    if case == "npz negative label":
        path = write_npz(tmp_path / "bad.npz", test_labels=np.array([[0], [1], [-1], [2], [0], [1]]))
        return dataset(path), str(path), 1
    if case == "npz test class not in train":
        path = write_npz(tmp_path / "bad.npz", test_labels=np.array([[0], [1], [3], [2], [0], [1]]))
        return dataset(path), str(path), 1
    raise ValueError(case)


FOLDER_CASES = [
    ("empty class", "empty class folder"),
    ("too few for ipc", "needs 4 training images"),
    ("not an image", "unreadable or truncated image"),
    ("truncated jpeg", "unreadable or truncated image"),
    ("truncated png", "unreadable or truncated image"),
    ("split and unsplit", "mixes split folders (train) with class folders"),
    ("test class not in train", "is in test but not in train"),
]
NPZ_CASES = [
    ("npz label out of range", "label 2 outside 0..1"),
    ("npz negative label", "label -1 outside 0..2"),
    ("npz test class not in train", "is in test but not in train"),
]


@pytest.mark.parametrize("case, message", FOLDER_CASES + NPZ_CASES)
def test_bad_custom_data_gives_one_line_naming_the_path(tmp_path, case, message):
    ds, where, needed = (_bad_npz if case.startswith("npz") else _bad_folder)(tmp_path, case)
    with pytest.raises(HistodistillError) as err:
        check_custom_dataset(ds, needed, "select.ipc", check_files=True)
    text = str(err.value)
    assert message in text and where in text and "\n" not in text


def test_a_truncated_image_is_named_when_read(tmp_path):
    ds, where, _ = _bad_folder(tmp_path, "truncated jpeg")
    plan, names = split_plan(ds)
    with pytest.raises(HistodistillError, match="unreadable or truncated image") as err:
        load_custom(ds, plan, names)
    assert where in str(err.value)
    good = write_image_folder(tmp_path / "good", per_class=4)
    check_image_files(good, split_plan(dataset(good))[0]["source"])  # the intact fixture passes


# ----------------------------------------------------------------------------------------- workflow


def tiny_config(tmp_path: Path, ds: dict, methods: list[str]) -> Path:
    """The smallest run of the whole DAG: 8 px, one IPC, one seed, a few steps each, no ablation."""
    config = write_config(
        tmp_path,
        dataset=ds,
        generator={"autoencoder": {"steps": 5}, "denoiser": {"steps": 5, "checkpoint_every": 0}},
        pool={"shards": 1, "per_class": 4, "steps": 2, "compile": False},
        embed={"epochs": 1},
        select={"ipc": [1], "trials": 1, "methods": methods},
        evaluate={"seeds": [0], "epochs": 2, "batch_seeds": False, "dsa": False},
    )
    cfg = yaml.safe_load(config.read_text())
    cfg["ablation"] = {}
    config.write_text(yaml.safe_dump(cfg))
    return config


@pytest.mark.workflow
def test_image_folder_runs_through_the_workflow_with_class_names(tmp_path):
    root = write_image_folder(tmp_path / "tiles", per_class=6)
    config = tiny_config(tmp_path, dataset(root), ["infodist"])
    out = tmp_path / "results" / "mine_8"
    # up to the tables: data, generator, pool, graph, selection and evaluation (not the audit of the subset)
    snakemake(config, str(out / "tables" / "summary.csv"), check=True)
    summary = pd.read_csv(out / "tables" / "summary.csv")
    assert {f"acc[{n}]" for n in COLOURS} <= set(summary.columns)
    assert set(summary["method"]) == {"infodist"}
    assert "adipose | lymphocytes | tumour" in (out / "tables" / "summary.md").read_text()
    split = pd.read_csv(out / "data" / "split.csv", dtype=str, keep_default_na=False)
    assert split.values.tolist() == split_plan(dataset(root))[0].astype(str).values.tolist()
    real = load_npz(out / "data" / "real.npz")
    assert real["train_images"].shape[1:] == (8, 8, 3) and list(real["class_names"]) == list(COLOURS)
    log = (out / "logs" / "data.log").read_text()
    assert "sizes found" in log and "resized to 8 px" in log and "tumour" in log


@pytest.mark.workflow
def test_npz_runs_through_the_workflow_with_class_names(tmp_path):
    path = write_npz(tmp_path / "mine.npz")
    """The generator half of the DAG does not depend on where the data came from (the folder run covers it), so this
    run stops at the tables: data, random real subsets, their evaluation and privacy audit."""
    names = ["benign", "malignant", "normal"]
    config = tiny_config(tmp_path, dataset(path, classes=names, id="scans"), ["random_real"])
    out = tmp_path / "results" / "scans_8"
    snakemake(config, str(out / "tables" / "summary.csv"), str(out / "tables" / "privacy.csv"), check=True)
    summary = pd.read_csv(out / "tables" / "summary.csv")
    assert {f"acc[{n}]" for n in names} <= set(summary.columns) and summary["acc[benign]"].between(0, 1).all()
    real = load_npz(out / "data" / "real.npz")
    assert real["train_images"].shape == (12, 8, 8, 1) and list(real["class_names"]) == names
    split = pd.read_csv(out / "data" / "split.csv")
    assert split.groupby("split").size().to_dict() == {"test": 6, "train": 12, "val": 4}  # the file's own split


@pytest.mark.workflow
@pytest.mark.parametrize(
    "case, message",
    [FOLDER_CASES[0], FOLDER_CASES[1], FOLDER_CASES[3], FOLDER_CASES[5], FOLDER_CASES[6], NPZ_CASES[0]],
)
def test_bad_custom_data_stops_the_workflow_before_anything_is_created(tmp_path, case, message):
    ds, where, needed = (_bad_npz if case.startswith("npz") else _bad_folder)(tmp_path, case)
    config = write_config(tmp_path, dataset=ds, select={"ipc": [1, needed]} if needed > 1 else {})
    proc = snakemake(config)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and message in out and where in out
    assert "Traceback" not in out
    assert not (tmp_path / "results").exists()


def test_custom_dataset_needs_an_id_that_is_not_a_built_in_name(tmp_path):
    from histodistill.workflow import check_custom_config

    root = write_image_folder(tmp_path / "tiles", per_class=6)
    cfg = yaml.safe_load(write_config(tmp_path, dataset=dataset(root)).read_text())
    check_custom_config(cfg)
    for bad, message in ((None, "dataset.id: required"), ("pathmnist", "built-in dataset"), ("digits", "built-in")):
        cfg["dataset"]["id"] = bad
        with pytest.raises(HistodistillError, match=message):
            check_custom_config(cfg)


def test_image_files_are_checked_until_these_very_files_are_imported(tmp_path):
    """The parse-time file check reads every image; it is skipped once real.npz holds the same files' fingerprint."""
    import os

    from histodistill.base import save_npz
    from histodistill.data import source_fingerprint
    from histodistill.workflow import check_custom_config

    root = write_image_folder(tmp_path / "tiles", per_class=6)
    (root / "adipose" / "img_01.jpg").write_bytes(b"broken")
    cfg = {
        "results": str(tmp_path / "results"),
        "dataset": dataset(root),
        "select": {"ipc": [1], "methods": ["infodist"]},
    }
    with pytest.raises(HistodistillError, match="img_01.jpg"):
        check_custom_config(cfg)
    real = tmp_path / "results" / "mine_8" / "data" / "real.npz"
    save_npz(real, source_fingerprint=np.asarray(source_fingerprint(dataset(root))))
    check_custom_config(cfg)  # these files were imported: not read again
    os.utime(root / "tumour" / "img_00.png", ns=(0, 0))  # a changed file: everything is checked again
    with pytest.raises(HistodistillError, match="img_01.jpg"):
        check_custom_config(cfg)


def test_class_names_head_per_class_accuracy_columns(tmp_path):
    import json

    from histodistill.classifier import per_class_accuracy
    from histodistill.reporting import (
        aggregate,
        class_accuracy,
        class_accuracy_markdown,
        collect_results,
        with_class_accuracy,
    )

    logits = np.array([[2.0, 0, 0], [0, 2, 0], [2, 0, 0], [0, 0, 2]])
    assert per_class_accuracy(logits, np.array([0, 1, 1, 2]), 3) == [1.0, 0.5, 1.0]
    assert per_class_accuracy(logits, np.array([0, 1, 1, 2]), 4)[3] is None  # no test image of class 3
    paths = []
    for seed, accs in ((0, [1.0, 0.5, 1.0]), (1, [0.0, 0.5, None])):
        paths.append(tmp_path / f"seed{seed}.json")
        paths[-1].write_text(
            json.dumps(
                {
                    "subset": "infodist_ipc1",
                    "model": "convnet",
                    "seed": seed,
                    "acc": 0.5,
                    "auc": 0.5,
                    "f1": 0.5,
                    "per_class_acc": accs,
                }
            )
        )
    summary = with_class_accuracy(aggregate(collect_results(paths)), class_accuracy(paths, ["a", "b", "c"]))
    assert len(summary) == 1 and summary.loc[0, "acc[a]"] == 0.5 and summary.loc[0, "acc[c]"] == 1.0  # mean over seeds
    assert "| method | IPC | network | a | b | c |" in class_accuracy_markdown(summary)
