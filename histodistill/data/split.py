"""Train/val/test splits, stratified by class and seeded: the embedded datasets' (scikit-learn's
`train_test_split`, twice) and a user's own dataset's (per image, or by whole groups such as patients, with
round-half-up counts per class).

They stay two rules because each fixes the images of existing results: the embedded split is the one every
default run has used, and a user's split is recorded in `data/split.csv` of their runs."""

from __future__ import annotations

import math

import numpy as np


def stratified_indices(
    labels: np.ndarray, split_seed: int, val_fraction: float, test_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted (train, val, test) indices of the embedded datasets: scikit-learn's stratified `train_test_split`
    takes the test share, then the validation share of the rest, both with `random_state=split_seed`."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    rest, test = train_test_split(idx, test_size=test_fraction, stratify=labels, random_state=split_seed)
    val_share = val_fraction / (1.0 - test_fraction)
    train, val = train_test_split(rest, test_size=val_share, stratify=labels[rest], random_state=split_seed)
    return np.sort(train), np.sort(val), np.sort(test)


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
