"""A user's own dataset (`dataset.name: custom`): an image folder or an `.npz` in the MedMNIST layout.

The plan (`custom_sources`) says which file holds each image and which split it is in (`split`); this module checks
it, fingerprints it, and reads, crops and resizes the images."""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from histodistill.base.errors import HistodistillError

from .custom_sources import PLAN_COLUMNS, SPLITS, _folder_plan, _image_files, _npz_plan

GREY_MODES = ("1", "L", "LA", "I;16", "I;16B", "I;16L", "I;16N")


MIN_SIZE, MAX_SIZE = 8, 1024


log = logging.getLogger("histodistill")


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
        plan = pd.read_csv(path, dtype={"split": str, "class": str, "source": str, "group": str}, keep_default_na=False)
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
