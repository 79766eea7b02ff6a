"""A user's own dataset (`dataset.name: custom`): an image folder or an `.npz` in the MedMNIST layout.

Two steps, so that the split can be audited and reproduced:
1. `split_plan` lists every image with its class and split (a table: split, label, class, source). It needs only
   the folder listing or the `.npz` labels, so the Snakefile calls it at parse time to count the classes and to
   check the layout before anything is created; rule `custom_split` writes it to `data/split.csv`.
2. `load_custom` reads the images of a plan (Pillow; any size and mode), converts them to one channel layout
   (grey if every image is grey, RGB otherwise, or as `dataset.channels` says), crops to a centred square (or
   stretches) and resizes to `dataset.size`, giving the same arrays as the embedded datasets.

Folder layouts: `root/<class>/*.png|jpg|…` (split here, stratified and seeded) or `root/train|val|test/<class>/…`
(val optional: carved out of train when absent). Class names are the folder names, labels their sorted order.
`.npz` layouts: `train_images, train_labels, test_*` (+ optional `val_*`) or unsplit `images, labels`; class names
from `dataset.classes`, else `0..C-1`.
"""

from __future__ import annotations

import logging
import math
import os
import zipfile
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from .errors import HistodistillError

SPLITS = ("train", "val", "test")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
PLAN_COLUMNS = ("split", "label", "class", "source", "group")
GREY_MODES = ("1", "L", "LA", "I;16", "I;16B", "I;16L", "I;16N")
MIN_SIZE, MAX_SIZE = 8, 1024
LAYOUT_HELP = "use root/<class>/<images> or root/train|val|test/<class>/<images>"

log = logging.getLogger("histodistill")


# ----------------------------------------------------------------------------------------- the split


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def split_counts(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """(train, val, test) image counts of a class of `n` images: test and val get round(n × fraction), at least 1
    each when the fraction is positive; train gets the rest (may be ≤ 0 for tiny classes: the caller says so)."""
    n_test = max(1, _round_half_up(n * test_fraction)) if test_fraction > 0 else 0
    n_val = max(1, _round_half_up(n * val_fraction)) if val_fraction > 0 else 0
    return n - n_val - n_test, n_val, n_test


def stratified_split(labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int) -> np.ndarray:
    """Split name per item: each class is shuffled by its own seeded generator ([seed, class]) and cut into test,
    val and train by `split_counts`, so every split holds each class in proportion."""
    labels = np.asarray(labels)
    out = np.empty(len(labels), dtype=object)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        order = members[np.random.default_rng([seed, int(c)]).permutation(len(members))]
        _, n_val, n_test = split_counts(len(members), val_fraction, test_fraction)
        out[order[:n_test]] = "test"
        out[order[n_test : n_test + n_val]] = "val"
        out[order[n_test + n_val :]] = "train"
    return out


def grouped_split(
    labels: np.ndarray, groups: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> np.ndarray:
    """Split name per item with whole groups (patients, slides) kept together: groups are stratified by their
    majority class; within each class the groups are shuffled (seeded, [seed, class]) and go to test until it holds
    round(n × test_fraction) of the class's items or more, then to val likewise, the rest to train. Every split is
    group-disjoint; the fractions hold up to one group's size."""
    labels, groups = np.asarray(labels), np.asarray(groups).astype(str)
    out = np.empty(len(labels), dtype=object)
    names, inverse = np.unique(groups, return_inverse=True)
    sizes = np.bincount(inverse)
    majority = np.array([np.bincount(labels[inverse == g]).argmax() for g in range(len(names))])
    for c in np.unique(majority):
        members = np.flatnonzero(majority == c)
        order = members[np.random.default_rng([seed, int(c)]).permutation(len(members))]
        n = int(sizes[members].sum())
        _, n_val, n_test = split_counts(n, val_fraction, test_fraction)
        taken = {"test": 0, "val": 0}
        for g in order:
            split = "test" if taken["test"] < n_test else ("val" if taken["val"] < n_val else "train")
            if split != "train":
                taken[split] += int(sizes[g])
            out[inverse == g] = split
    return out


def split_items(
    labels: np.ndarray, groups: np.ndarray | None, val_fraction: float, test_fraction: float, seed: int
) -> np.ndarray:
    """`grouped_split` when every item has a group, else `stratified_split` (per image)."""
    if groups is not None and len(groups) and (np.asarray(groups).astype(str) != "").all():
        return grouped_split(labels, groups, val_fraction, test_fraction, seed)
    return stratified_split(labels, val_fraction, test_fraction, seed)


def plan_groups(plan: pd.DataFrame, root: Path, spec: str | None, given_splits: bool) -> np.ndarray:
    """The group (patient or slide id) of every plan row: '' without `dataset.groups`; 'folder' = the first folder
    below the class folder (root/<class>/<group>/… or root/<split>/<class>/<group>/…); otherwise a CSV with columns
    `source` (as in data/split.csv: the path below the dataset folder, or `images[i]` in an .npz) and `group`."""
    if not spec:
        return np.full(len(plan), "", dtype=object)
    if spec == "folder":
        if root.is_file():
            raise HistodistillError("dataset.groups: 'folder' needs an image folder; for an .npz give a CSV of groups")
        depth = 2 if given_splits else 1
        parts = plan["source"].str.split("/")
        flat = parts[parts.str.len() <= depth + 1]
        if len(flat):
            raise HistodistillError(
                f"{root / '/'.join(flat.iloc[0])}: dataset.groups is 'folder' but this image lies directly in its "
                "class folder; put each patient's images in a folder of its own below the class folder"
            )
        return parts.str[depth].to_numpy(dtype=object)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise HistodistillError(f"dataset.groups: {path} not found; give 'folder' or a CSV with columns source,group")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise HistodistillError(f"dataset.groups: {path} is not a readable CSV ({exc})") from exc
    if not {"source", "group"} <= set(table.columns):
        raise HistodistillError(f"dataset.groups: {path} needs columns source,group (has {list(table.columns)})")
    mapping = dict(zip(table["source"], table["group"]))
    groups = plan["source"].map(mapping)
    missing = plan.loc[groups.isna() | (groups == ""), "source"]
    if len(missing):
        raise HistodistillError(
            f"dataset.groups: {path} gives no group for {len(missing)} images, e.g. {missing.iloc[0]!r}; every image "
            "needs one"
        )
    return groups.to_numpy(dtype=object)


def check_group_disjoint(plan: pd.DataFrame, where: Path) -> None:
    """Given splits must not share a group: one patient's tiles on both sides of a split leak into the audit."""
    if (plan["group"] == "").all():
        return
    spans = plan.groupby("group")["split"].nunique()
    if (spans > 1).any():
        g = spans[spans > 1].index[0]
        found = sorted(plan.loc[plan["group"] == g, "split"].unique())
        raise HistodistillError(
            f"{where}: group {g!r} has images in {' and '.join(found)}; every split must be group-disjoint (one "
            "patient's images in one split): move them, or leave the split to histodistill"
        )


# ----------------------------------------------------------------------------------------- image folders


def _visible(path: Path) -> bool:
    return not path.name.startswith((".", "_"))


def _image_files(folder: Path) -> list[Path]:
    """Image files below `folder` (recursively, hidden entries skipped), sorted by relative path."""
    files = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files.extend(
            Path(dirpath) / f for f in filenames if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS)
        )
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and _visible(p))


def _class_folders(parent: Path, where: str) -> dict[str, list[Path]]:
    """class name -> its image files, for every subfolder of `parent`; an empty class folder is an error."""
    loose = [p.name for p in parent.iterdir() if p.is_file() and p.name.lower().endswith(IMAGE_EXTENSIONS)]
    if loose:
        raise HistodistillError(
            f"{parent}: images directly in the {where} folder ({loose[0]}, …); put each image in a subfolder named "
            f"after its class ({LAYOUT_HELP})"
        )
    classes = {}
    for folder in _subfolders(parent):
        files = _image_files(folder)
        if not files:
            raise HistodistillError(
                f"{folder}: empty class folder (no {'/'.join(e[1:] for e in IMAGE_EXTENSIONS)} images); add images "
                "or remove the folder"
            )
        classes[folder.name] = files
    if not classes:
        raise HistodistillError(f"{parent}: no class subfolders; {LAYOUT_HELP}")
    return classes


@lru_cache(maxsize=8)
def _folder_plan(
    root_str: str, val_fraction: float, test_fraction: float, seed: int, _files: str, groups: str | None = None
) -> pd.DataFrame:
    """The plan of an image folder (cached per content fingerprint `_files`: the Snakefile asks several times)."""
    root = Path(root_str)
    subfolders = [p.name for p in _subfolders(root)]
    split_dirs = [s for s in SPLITS if s in subfolders]
    if split_dirs:
        others = [s for s in subfolders if s not in SPLITS]
        if others:
            raise HistodistillError(
                f"{root}: mixes split folders ({', '.join(split_dirs)}) with class folders ({', '.join(others[:3])}); "
                f"{LAYOUT_HELP}, not both"
            )
        for need in ("train", "test"):
            if need not in split_dirs:
                raise HistodistillError(
                    f"{root}: split layout without {need}/; add {root / need}/<class>/… or put the class folders "
                    "directly in the root to have them split for you"
                )
        per_split = {s: _class_folders(root / s, s) for s in split_dirs}
        classes = sorted(per_split["train"])
        for s in ("val", "test"):
            for name in per_split.get(s, {}):
                if name not in per_split["train"]:
                    raise HistodistillError(
                        f"{root / s / name}: class {name!r} is in {s} but not in train; add its training images to "
                        f"{root / 'train' / name} or remove the folder"
                    )
        for name in classes:
            if name not in per_split["test"]:
                raise HistodistillError(
                    f"{root / 'test' / name}: missing; class {name!r} has training images but no test images, so "
                    "it cannot be evaluated; add test images for it"
                )
        rows = [
            (s, classes.index(name), name, f.relative_to(root).as_posix())
            for s in split_dirs
            for name in sorted(per_split[s])
            for f in per_split[s][name]
        ]
        plan = pd.DataFrame(rows, columns=list(PLAN_COLUMNS[:4]))
        plan["group"] = plan_groups(plan, root, groups, given_splits=True)
        check_group_disjoint(plan, root)
        if "val" not in split_dirs:  # carve val out of train, stratified, in the configured proportion
            train = plan[plan["split"] == "train"]
            share = val_fraction / (1.0 - test_fraction)
            plan.loc[train.index, "split"] = split_items(
                train["label"].to_numpy(), train["group"].to_numpy(), share, 0.0, seed
            )
    else:
        per_class = _class_folders(root, "dataset")
        classes = sorted(per_class)
        rows = [
            (None, k, name, f.relative_to(root).as_posix()) for k, name in enumerate(classes) for f in per_class[name]
        ]
        plan = pd.DataFrame(rows, columns=list(PLAN_COLUMNS[:4]))
        plan["group"] = plan_groups(plan, root, groups, given_splits=False)
        plan["split"] = split_items(
            plan["label"].to_numpy(), plan["group"].to_numpy(), val_fraction, test_fraction, seed
        )
    return _ordered(plan)


def _ordered(plan: pd.DataFrame) -> pd.DataFrame:
    """Rows by split (train, val, test), then label, then source: the order of the arrays in real.npz."""
    key = plan["split"].map({s: i for i, s in enumerate(SPLITS)})
    plan = plan.assign(_k=key).sort_values(["_k", "label", "source"], kind="stable").drop(columns="_k")
    plan["label"] = plan["label"].astype(np.int64)
    return plan.reset_index(drop=True)


# ----------------------------------------------------------------------------------------- .npz files


def _npz_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Array name -> shape, read from the .npy headers inside the zip (no image data is decompressed in full)."""
    shapes = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with zf.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    if version == (1, 0):
                        shape, _, _ = np.lib.format.read_array_header_1_0(fh)
                    else:
                        shape, _, _ = np.lib.format.read_array_header_2_0(fh)
                shapes[info.filename[:-4]] = tuple(shape)
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise HistodistillError(f"{path}: not a readable .npz file ({exc}); save it with numpy.savez") from exc
    return shapes


def _npz_labels(path: Path, key: str) -> np.ndarray:
    with np.load(path, allow_pickle=False) as data:
        labels = np.asarray(data[key])
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise HistodistillError(
            f"{path}: {key} has shape {labels.shape}; use one integer label per image, (N,) or (N, 1)"
        )
    if labels.dtype.kind == "f" and np.all(labels == np.round(labels)):
        labels = labels.astype(np.int64)
    if labels.dtype.kind not in "iu":
        raise HistodistillError(f"{path}: {key} holds {labels.dtype} values; use integer class labels 0..C-1")
    return labels.astype(np.int64)


@lru_cache(maxsize=8)
def _npz_plan(
    path_str: str,
    classes: tuple[str, ...] | None,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    _files: str,
    groups: str | None = None,
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The plan and class names of an .npz (cached per file fingerprint `_files`)."""
    path = Path(path_str)
    shapes = _npz_shapes(path)
    if "train_labels" in shapes or "train_images" in shapes:
        splits = [s for s in SPLITS if f"{s}_labels" in shapes or f"{s}_images" in shapes]
        for need in ("train", "test"):
            if need not in splits:
                raise HistodistillError(
                    f"{path}: has train arrays but no {need}_images/{need}_labels; add them, or store all images as "
                    "`images` and `labels` to have them split for you"
                )
        keys = [(s, f"{s}_images", f"{s}_labels") for s in splits]
    elif "images" in shapes or "labels" in shapes:
        keys = [(None, "images", "labels")]
    else:
        raise HistodistillError(
            f"{path}: no train_images/train_labels (MedMNIST layout) nor images/labels arrays (has {sorted(shapes)})"
        )
    labels = {}
    for split, ikey, lkey in keys:
        for key in (ikey, lkey):
            if key not in shapes:
                raise HistodistillError(
                    f"{path}: {key} is missing (has {sorted(shapes)}); store images and labels together"
                )
        shape = shapes[ikey]
        if len(shape) not in (3, 4) or (len(shape) == 4 and shape[3] not in (1, 3, 4)):
            raise HistodistillError(
                f"{path}: {ikey} has shape {shape}; use (N, H, W) grey, (N, H, W, 1) or (N, H, W, 3) RGB images"
            )
        labels[(split, ikey, lkey)] = _npz_labels(path, lkey)
        if len(labels[(split, ikey, lkey)]) != shape[0]:
            raise HistodistillError(
                f"{path}: {ikey} holds {shape[0]} images but {lkey} {len(labels[(split, ikey, lkey)])} labels"
            )
        if shape[0] == 0:
            raise HistodistillError(f"{path}: {ikey} is empty; every split needs images")
    every = np.concatenate(list(labels.values()))
    n_classes = len(classes) if classes else int(every.max()) + 1
    for (split, ikey, lkey), lab in labels.items():
        if lab.min() < 0 or lab.max() >= n_classes:
            bad = lab[(lab < 0) | (lab >= n_classes)]
            told = f"dataset.classes lists {n_classes} classes" if classes else "labels must be 0..C-1"
            raise HistodistillError(
                f"{path}: {lkey} has label {int(bad[0])} outside 0..{n_classes - 1} ({told}); fix the labels"
                + (" or the classes list" if classes else "")
            )
    names = tuple(classes) if classes else tuple(str(c) for c in range(n_classes))
    train_key = [k for k in labels if k[0] in ("train", None)][0]
    in_train = set(np.unique(labels[train_key]).tolist())
    for (split, ikey, lkey), lab in labels.items():
        missing = sorted(set(np.unique(lab).tolist()) - in_train)
        if missing:
            raise HistodistillError(
                f"{path}: class {names[missing[0]]!r} (label {missing[0]}) is in {split} but not in train; add "
                "training images of it or remove it"
            )
    absent = sorted(set(range(n_classes)) - in_train)
    if absent:
        raise HistodistillError(
            f"{path}: class {names[absent[0]]!r} (label {absent[0]}) has no images; remove it from dataset.classes "
            "or renumber the labels 0..C-1"
        )
    rows = [
        (split, int(lab), names[int(lab)], f"{ikey}[{i}]")
        for (split, ikey, lkey), labs in labels.items()
        for i, lab in enumerate(labs)
    ]
    plan = pd.DataFrame(rows, columns=list(PLAN_COLUMNS[:4]))
    plan["group"] = plan_groups(plan, path, groups, given_splits=keys[0][0] is not None)
    if keys[0][0] is None:
        plan["split"] = split_items(
            plan["label"].to_numpy(), plan["group"].to_numpy(), val_fraction, test_fraction, seed
        )
    else:
        check_group_disjoint(plan, path)
    if keys[0][0] is not None and "val" not in [k[0] for k in keys]:
        train = plan[plan["split"] == "train"]
        share = val_fraction / (1.0 - test_fraction)
        plan.loc[train.index, "split"] = split_items(
            train["label"].to_numpy(), train["group"].to_numpy(), share, 0.0, seed
        )
    if "test" in [k[0] for k in keys]:
        test_classes = set(plan.loc[plan["split"] == "test", "label"])
        lacking = sorted(set(range(n_classes)) - test_classes)
        if lacking:
            raise HistodistillError(
                f"{path}: class {names[lacking[0]]!r} has no test images, so it cannot be evaluated; add test images"
            )
    return _ordered(plan), names


# ----------------------------------------------------------------------------------------- public API


def source_path(dataset: dict[str, Any]) -> Path:
    """`dataset.path`, checked: an existing folder or `.npz` file."""
    raw = dataset.get("path")
    if not raw:
        raise HistodistillError(
            "dataset.path: required for dataset.name 'custom'; point it at a folder with one subfolder per class "
            "or at an .npz file"
        )
    path = Path(raw).expanduser().resolve()
    if not path.exists():
        raise HistodistillError(f"dataset.path: {path} not found; point it at your image folder or .npz file")
    if path.is_file() and path.suffix.lower() != ".npz":
        raise HistodistillError(f"dataset.path: {path} is a file but not an .npz; point it at a folder or an .npz")
    return path


def source_fingerprint(dataset: dict[str, Any]) -> str:
    """A hash of the image files' names, sizes and modification times (or the .npz's): a rule parameter, so that
    adding, removing or replacing an image reruns the split and the import."""
    import hashlib

    path = source_path(dataset)
    files = [path] if path.is_file() else _image_files(path)
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(path.parent).as_posix()}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    groups = dataset.get("groups")
    if groups and groups != "folder" and Path(groups).expanduser().is_file():
        h.update(Path(groups).expanduser().read_bytes())  # a changed group table redraws the split
    return h.hexdigest()


def imported_fingerprint(real_npz: str | os.PathLike) -> str | None:
    """The source fingerprint stored in an imported real.npz (None when there is none or it cannot be read)."""
    try:
        with np.load(real_npz, allow_pickle=False) as data:
            return str(data["source_fingerprint"]) if "source_fingerprint" in data.files else None
    except Exception:
        return None


def split_plan(dataset: dict[str, Any]) -> tuple[pd.DataFrame, list[str]]:
    """(plan, class names) of a custom dataset: one row per image with its split, label, class and source (file
    path relative to the folder, or `array[index]` in the .npz). Cheap: no image is decoded."""
    path = source_path(dataset)
    fractions = (float(dataset["val_fraction"]), float(dataset["test_fraction"]), int(dataset["split_seed"]))
    classes = dataset.get("classes")
    if path.is_dir():
        if classes:
            raise HistodistillError(
                "dataset.classes: only for an .npz; an image folder's classes are its subfolder names"
            )
        plan = _folder_plan(str(path), *fractions, source_fingerprint(dataset), dataset.get("groups"))
        names = sorted(plan["class"].unique(), key=lambda n: int(plan.loc[plan["class"] == n, "label"].iloc[0]))
    else:
        if classes is not None and len(set(classes)) != len(classes):
            raise HistodistillError(f"dataset.classes: duplicate names in {classes}")
        plan, names_t = _npz_plan(
            str(path),
            tuple(classes) if classes else None,
            *fractions,
            source_fingerprint(dataset),
            dataset.get("groups"),
        )
        names = list(names_t)
    return plan.copy(), list(names)


def read_plan(path: str | os.PathLike) -> tuple[pd.DataFrame, list[str]]:
    """(plan, class names) from a written split.csv (the record the data are read by)."""
    try:
        plan = pd.read_csv(
            path, dtype={"split": str, "class": str, "source": str, "group": str}, keep_default_na=False
        )
    except Exception as exc:
        raise HistodistillError(f"{path}: not a readable split table ({exc}); delete it to have it rewritten") from exc
    if list(plan.columns) == list(PLAN_COLUMNS[:4]):  # written before groups existed: none
        plan["group"] = ""
    if list(plan.columns) != list(PLAN_COLUMNS) or not set(plan["split"]) <= set(SPLITS):
        raise HistodistillError(f"{path}: expected columns {list(PLAN_COLUMNS)} and splits {SPLITS}; delete it")
    names = plan.drop_duplicates("label").sort_values("label")["class"].tolist()
    if plan["label"].drop_duplicates().sort_values().tolist() != list(range(len(names))):
        raise HistodistillError(f"{path}: labels are not 0..C-1; delete it to have it rewritten")
    return plan.astype({"label": np.int64}), names


def split_table(plan: pd.DataFrame) -> pd.DataFrame:
    """Images per class (rows) and split (columns), with totals: what the log shows."""
    table = pd.crosstab(plan["class"], plan["split"]).reindex(columns=list(SPLITS), fill_value=0)
    order = plan.drop_duplicates("class").sort_values("label")["class"]
    table = table.reindex(order)
    table["total"] = table.sum(axis=1)
    return table


def class_location(root: Path, plan: pd.DataFrame, label: int) -> Path:
    """Where a class's images live: its (training) folder, or the .npz itself."""
    if root.is_file():
        return root
    rows = plan[plan["label"] == label]
    parts = Path(rows["source"].iloc[0]).parts
    return root / parts[0] / parts[1] if parts[0] in SPLITS else root / parts[0]


def check_train_counts(plan: pd.DataFrame, names: list[str], needed: int, root: Path, reason: str) -> None:
    """Every class needs `needed` training images (e.g. the largest IPC for random real subsets) and one test image."""
    for label, name in enumerate(names):
        rows = plan[plan["label"] == label]
        counts = rows["split"].value_counts()
        n_train, n_test = int(counts.get("train", 0)), int(counts.get("test", 0))
        if n_train < needed or n_test < 1:
            raise HistodistillError(
                f"{class_location(root, plan, label)}: class {name!r} has {len(rows)} images, giving {n_train} training and {n_test} test images "
                f"after the split, but {reason} needs {needed} training images and 1 test image per class; add "
                "images to this class (or lower select.ipc)"
            )


def check_image_files(root: Path, sources: Iterable[str]) -> None:
    """Open every image's header (Pillow) and verify what can be verified cheaply: catches non-image, empty and
    truncated files before anything runs. A JPEG without its end marker is decoded in full to be sure."""
    from PIL import Image

    for rel in sources:
        path = root / rel
        try:
            with Image.open(path) as img:
                fmt = img.format
                img.verify()
            if fmt == "JPEG":
                with open(path, "rb") as fh:
                    fh.seek(max(0, path.stat().st_size - 64))
                    tail = fh.read()
                if b"\xff\xd9" not in tail:
                    with Image.open(path) as img:
                        img.load()
        except Exception as exc:
            raise HistodistillError(
                f"{path}: unreadable or truncated image ({type(exc).__name__}: {exc}); replace or delete the file"
            ) from exc


def _to_array(img: Any, path: Path) -> np.ndarray:
    """A Pillow image as uint8 HxW (grey) or HxWx3 (RGB); 16-bit grey is scaled to 8 bits."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.clip(np.rint(np.asarray(img, dtype=np.float64) / 257.0), 0, 255).astype(np.uint8)
    if img.mode in ("1", "L", "LA"):
        return np.asarray(img.convert("L"), dtype=np.uint8)
    if img.mode in ("I", "F"):
        raise HistodistillError(f"{path}: {img.mode} (32-bit) images are not supported; save it as 8- or 16-bit")
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def square_resize(arr: np.ndarray, size: int, aspect: str) -> tuple[np.ndarray, bool, bool]:
    """(image at size×size, was it cropped, was it resized): a non-square image is centre-cropped to its short side
    (`aspect: crop`) or stretched (`stretch`); then bilinear resizing (Pillow, antialiased when shrinking)."""
    from PIL import Image

    h, w = arr.shape[:2]
    cropped = False
    if aspect == "crop" and h != w:
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        arr = arr[top : top + side, left : left + side]
        cropped = True
    if arr.shape[0] == size and arr.shape[1] == size:
        return np.ascontiguousarray(arr), cropped, False
    out = np.asarray(Image.fromarray(np.ascontiguousarray(arr)).resize((size, size), Image.Resampling.BILINEAR))
    return out, cropped, True


def _read_folder_image(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            return _to_array(img, path)
    except HistodistillError:
        raise
    except Exception as exc:
        raise HistodistillError(
            f"{path}: unreadable or truncated image ({type(exc).__name__}: {exc}); replace or delete the file"
        ) from exc


def _npz_images(path: Path, plan: pd.DataFrame) -> Iterable[np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        arrays: dict[str, np.ndarray] = {}
        for source in plan["source"]:
            key, _, index = source.partition("[")
            if key not in arrays:
                arrays[key] = np.asarray(data[key])
            img = arrays[key][int(index[:-1])]
            if img.dtype != np.uint8:
                if img.dtype.kind == "f" and img.min() >= 0 and img.max() <= 1:
                    img = np.rint(img * 255.0)
                if img.min() < 0 or img.max() > 255:
                    raise HistodistillError(f"{path}: {source} has values outside 0..255; store uint8 images")
                img = img.astype(np.uint8)
            if img.ndim == 3 and img.shape[2] == 1:
                img = img[..., 0]
            elif img.ndim == 3 and img.shape[2] == 4:
                img = img[..., :3]
            yield img


def load_custom(dataset: dict[str, Any], plan: pd.DataFrame, names: list[str]) -> dict[str, np.ndarray]:
    """Read the images of a plan into the arrays of real.npz (uint8 NHWC, int64 labels, n_classes, class_names),
    with a progress bar and a summary in the log."""
    from tqdm import tqdm

    path = source_path(dataset)
    size, aspect, channels = int(dataset["size"]), dataset.get("aspect", "crop"), dataset.get("channels", "auto")
    if path.is_dir():
        raw = (_read_folder_image(path / rel) for rel in plan["source"])
    else:
        raw = _npz_images(path, plan)
    images, sizes, modes = [], Counter(), Counter()
    n_cropped = n_resized = 0
    for arr in tqdm(raw, total=len(plan), desc=f"reading {path.name}", unit="img", mininterval=1.0):
        sizes[f"{arr.shape[1]}x{arr.shape[0]}"] += 1
        modes["grey" if arr.ndim == 2 else "RGB"] += 1
        out, cropped, resized = square_resize(arr, size, aspect)
        n_cropped += cropped
        n_resized += resized
        images.append(out)
    rgb = channels == "rgb" or (channels == "auto" and modes["RGB"] > 0)
    stack = np.empty((len(images), size, size, 3 if rgb else 1), dtype=np.uint8)
    for i, img in enumerate(images):
        if img.ndim == 2:
            stack[i] = img[..., None]  # broadcasts a grey image to every channel
        elif rgb:
            stack[i] = img
        else:  # channels: grey for an RGB image: ITU-R 601-2 luma, as Pillow's convert("L")
            from PIL import Image

            stack[i] = np.asarray(Image.fromarray(img).convert("L"))[..., None]
    labels = plan["label"].to_numpy(dtype=np.int64)
    split = plan["split"].to_numpy()
    out: dict[str, np.ndarray] = {}
    for s in SPLITS:
        out[f"{s}_images"] = stack[split == s]
        out[f"{s}_labels"] = labels[split == s]
    out["n_classes"] = np.asarray(len(names), dtype=np.int64)
    out["class_names"] = np.asarray(names, dtype=np.str_)
    out["source_fingerprint"] = np.asarray(source_fingerprint(dataset))
    common = ", ".join(f"{k} ({v})" for k, v in sizes.most_common(5))
    log.info(
        "%s: %d images, %d classes; images per class and split:\n%s",
        path,
        len(plan),
        len(names),
        split_table(plan).to_string(),
    )
    log.info(
        "sizes found (w x h): %s%s; modes: %s; %d cropped to a square (aspect: %s), %d resized to %d px; stored as %s",
        common,
        f" and {len(sizes) - 5} more" if len(sizes) > 5 else "",
        dict(modes),
        n_cropped,
        aspect,
        n_resized,
        size,
        "RGB" if rgb else "grey",
    )
    return out


def check_custom_dataset(dataset: dict[str, Any], needed_per_class: int, reason: str, check_files: bool) -> None:
    """Everything that can be checked before a job runs: the layout, the labels, the counts after the split, and
    (when `check_files`: while the files differ from the ones last imported) every image file's header."""
    size = int(dataset["size"])
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise HistodistillError(
            f"dataset.size: {size} is unsupported for custom data; use {MIN_SIZE} to {MAX_SIZE} pixels"
        )
    plan, names = split_plan(dataset)
    path = source_path(dataset)
    if len(names) < 2:
        raise HistodistillError(f"{path}: only one class ({names[0]!r}); a classifier needs at least two classes")
    check_train_counts(plan, names, needed_per_class, path, reason)
    if check_files and path.is_dir():
        check_image_files(path, plan["source"])
