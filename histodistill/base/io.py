"""Deterministic, atomic file I/O shared by every rule.

`np.savez` stamps the current time into the zip members, so two identical arrays give different bytes; the helpers
here write a fixed timestamp so that the same content always gives the same file, and write through a temporary
file + rename so that a killed job never leaves a half-written output behind.
"""

from __future__ import annotations

import fnmatch
import io
import json
import os
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator, Mapping

import numpy as np

from .errors import HistodistillError

_FIXED_DATE = (1980, 1, 1, 0, 0, 0)


@contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """A binary file handle on a temporary file in `path`'s directory, renamed to `path` when the block ends
    without error (and removed when it fails), so that a killed job never leaves a half-written output."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same directory, then rename."""
    with atomic_writer(path) as fh:
        fh.write(data)


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Serialise arrays as a compressed `.npz` whose bytes depend only on the arrays (sorted keys, fixed dates)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Atomically write a byte-reproducible compressed `.npz`."""
    atomic_write_bytes(path, npz_bytes(arrays))


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Atomically write one array as `.npy` (streamed to a temporary file, then renamed: no second copy in memory)."""
    with atomic_writer(path) as fh:
        np.lib.format.write_array(fh, np.asarray(array), allow_pickle=False)


def read_npy_header(fh: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Shape, Fortran order and dtype from the header of a `.npy` stream (left positioned at the first data byte)."""
    version = np.lib.format.read_magic(fh)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read(fh)
    return tuple(shape), bool(fortran), dtype


class NpyRows:
    """The rows of an uncompressed `.npy` file, read on demand: `rows[i]`, `rows[a:b]` and `rows[index_array]` give
    ndarrays equal to indexing the loaded array, but only the rows asked for are read (with `os.pread`).

    A train split at 224 px is gigabytes of uint8; a job that draws batches from it this way holds one batch, not the
    split. Unlike a memory map, whose touched pages stay in the process's resident set until the kernel reclaims
    them, the pages read here live only in the kernel's page cache, so the job's peak resident memory is its own."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise HistodistillError(f"{self.path}: file not found")
        try:
            with open(self.path, "rb") as fh:
                shape, fortran, dtype = read_npy_header(fh)
                self._offset = fh.tell()
        except Exception as exc:  # ValueError (bad magic or header), EOFError, ...
            raise damaged_file_error(self.path, ".npy file", exc) from exc
        if (fortran and len(shape) > 1) or dtype.hasobject or not shape:
            raise HistodistillError(f"{self.path}: not a C-ordered array of rows; rerun the rule that writes it")
        self.shape, self.dtype = tuple(shape), dtype
        self._row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        expected = self._offset + shape[0] * self._row_bytes
        if self.path.stat().st_size != expected:
            raise damaged_file_error(
                self.path, ".npy file", ValueError(f"{self.path.stat().st_size} bytes, header says {expected}")
            )

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self) -> int:
        return self.shape[0]

    def _read_into(self, fd: int, start: int, out: np.ndarray) -> np.ndarray:
        """Rows start.. into `out` (C-contiguous, len(out) rows), read straight into its memory: no second copy."""
        view = memoryview(out.reshape(-1).view(np.uint8))
        offset, done = self._offset + start * self._row_bytes, 0
        while done < len(view):  # one read returns at most ~2 GiB on Linux
            got = os.preadv(fd, [view[done:]], offset + done)
            if got == 0:
                raise damaged_file_error(self.path, ".npy file", EOFError("file shorter than its header says"))
            done += got
        return out

    def __getitem__(self, key: Any) -> np.ndarray:
        n = len(self)
        if isinstance(key, (int, np.integer)):
            i = int(key) + n if key < 0 else int(key)
            if not 0 <= i < n:
                raise IndexError(f"row {key} out of range for {n} rows")
            return self[np.array([i])][0]
        if isinstance(key, slice):
            start, stop, step = key.indices(n)
            if step != 1:
                return self[np.arange(start, stop, step)]
            fd = os.open(self.path, os.O_RDONLY)
            try:
                return self._read_into(fd, start, np.empty((max(0, stop - start), *self.shape[1:]), self.dtype))
            finally:
                os.close(fd)
        index = np.asarray(key)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        index = index.astype(np.int64).reshape(-1)
        index = np.where(index < 0, index + n, index)
        if len(index) and (index.min() < 0 or index.max() >= n):
            raise IndexError(f"row index out of range for {n} rows")
        # read each run of consecutive wanted rows once, in file order, then put the rows in the asked order
        wanted = np.unique(index)
        out = np.empty((len(wanted), *self.shape[1:]), dtype=self.dtype)
        breaks = np.flatnonzero(np.diff(wanted) != 1) + 1
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for run in np.split(np.arange(len(wanted)), breaks):
                if len(run):
                    self._read_into(fd, int(wanted[run[0]]), out[run[0] : run[-1] + 1])
        finally:
            os.close(fd)
        if len(index) == len(wanted) and np.array_equal(index, wanted):
            return out  # sorted, no repeats (a class's rows): no reordered copy
        return out[np.searchsorted(wanted, index)]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype)


# Which rule writes a file of the results layout (see DESIGN.md), for errors about a damaged file.
_WRITERS = (
    ("data/real.npz", "data"),
    ("data/train_images.npy", "data"),
    ("pool/shard_*.npz", "sample_pool_shard"),
    ("embeddings/*.labels.npy", "embed_pool"),
    ("embeddings/*.npy", "embed_pool"),
    ("embedder/*.pt", "train_embedder"),
    ("generator/autoencoder.pt", "train_autoencoder"),
    ("generator/denoiser.pt", "train_denoiser"),
    ("subsets/infodist-*_ipc*.npz", "select_ablation"),
    ("subsets/infodist_ipc*.npz", "select_infodist"),
    ("subsets/infodist_plus_ipc*.npz", "select_infodist_plus"),
    ("subsets/dm_ipc*.npz", "distill_dm"),
    ("subsets/dc_ipc*.npz", "distill_gradient_matching"),
    ("subsets/dsa_ipc*.npz", "distill_gradient_matching"),
    ("subsets/mtt_ipc*.npz", "distill_mtt"),
    ("subsets/random_real_ipc*.npz", "select_random_real"),
    ("subsets/*_ipc*.npz", "select_pool_baseline"),
)


def writer_rule(path: str | os.PathLike) -> str | None:
    """The workflow rule that writes `path` (matched on its last two path parts), or None outside the layout."""
    tail = "/".join(Path(path).parts[-2:])
    return next((rule for pattern, rule in _WRITERS if fnmatch.fnmatchcase(tail, pattern)), None)


def damaged_file_error(path: str | os.PathLike, what: str, exc: BaseException) -> HistodistillError:
    """One line naming the damaged file, what is wrong, the rule that writes it and what to do."""
    rule = writer_rule(path)
    remedy = (
        f"rule {rule} writes it: delete the file and rerun snakemake to remake it"
        if rule
        else "delete or replace the file"
    )
    return HistodistillError(
        f"{path}: truncated or corrupt, not a readable {what} ({type(exc).__name__}: {exc}); {remedy}"
    )


def load_npz(
    path: str | os.PathLike, required: tuple[str, ...] = (), only_required: bool = False
) -> dict[str, np.ndarray]:
    """Load every array of an `.npz` (with `only_required`, just the required ones: a job that needs the train split
    does not hold the test split in memory); a missing, truncated or corrupt file or a missing key raises an error
    naming the file (and the rule that writes it)."""
    path = Path(path)
    if not path.exists():
        raise HistodistillError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            out = {k: data[k] for k in data.files if not only_required or k in required}
    except Exception as exc:  # zipfile.BadZipFile, ValueError, EOFError, zlib.error, ...
        raise damaged_file_error(path, ".npz file", exc) from exc
    missing = [k for k in required if k not in out]
    if missing:
        raise HistodistillError(f"{path}: missing arrays {missing} (has {sorted(out)})")
    return out


def load_npy(path: str | os.PathLike, mmap_mode: str | None = None) -> np.ndarray:
    """Load one `.npy` array (memory-mapped with `mmap_mode`); a missing, truncated or corrupt file raises an error
    naming the file (and the rule that writes it)."""
    path = Path(path)
    if not path.exists():
        raise HistodistillError(f"{path}: file not found")
    try:
        return np.load(path, allow_pickle=False, mmap_mode=mmap_mode)
    except Exception as exc:  # ValueError (too few bytes for the header's shape), EOFError, ...
        raise damaged_file_error(path, ".npy file", exc) from exc


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write JSON with sorted keys (stable bytes)."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: str | os.PathLike) -> Any:
    with open(path) as fh:
        return json.load(fh)


def check_embedding_file(path: str, emb: np.ndarray, n_pool: int) -> None:
    """An embedding matrix (possibly memory-mapped) has one finite row per pool image; else an error naming the file."""
    if emb.ndim != 2 or len(emb) != n_pool:
        raise HistodistillError(
            f"{path}: {emb.shape[0] if emb.ndim else 0} embedding rows but the pool has {n_pool} images; rerun embed_pool"
        )
    block = 1024  # rows at a time: a memory-mapped pixel embedding is never materialised whole
    rows = np.concatenate(
        [s + np.where(~np.isfinite(emb[s : s + block]).all(axis=1))[0] for s in range(0, len(emb), block)] or [[]]
    ).astype(np.int64)
    if len(rows):
        raise HistodistillError(
            f"{path}: {len(rows)} rows contain NaN/inf (first: {rows[:5].tolist()}); retrain the embedder"
        )
