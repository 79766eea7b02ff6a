"""Reading the layout of a user's own dataset: image folders and `.npz` files, into a plan of one row per image
(path or array index, class, given split, group)."""

from __future__ import annotations

import os
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from histodistill.base.errors import HistodistillError

from .real import SPLITS
from .split import split_items

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
PLAN_COLUMNS = ("split", "label", "class", "source", "group")
LAYOUT_HELP = "use root/<class>/<images> or root/train|val|test/<class>/<images>"


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
