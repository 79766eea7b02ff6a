"""Rule public_data (DP mode): every split of the public dataset, the other embedded dataset, as one training set for
the autoencoder and the denoiser's pre-training (results/{ds}/public/)."""

import logging

import numpy as np

from histodistill.data import SPLITS, load_real
from histodistill.io import save_npy
from histodistill.workflow import run_job


def main(smk, device):
    ds = smk.params.dataset
    arrays = load_real(
        ds["name"], ds["size"], ds["data_dir"], ds["download"], ds["split_seed"], ds["val_fraction"], ds["test_fraction"]
    )
    images = np.concatenate([arrays[f"{s}_images"] for s in SPLITS])
    labels = np.concatenate([arrays[f"{s}_labels"] for s in SPLITS])
    logging.getLogger("histodistill").info("public dataset %s: %d images %s", ds["name"], len(labels), images.shape[1:])
    save_npy(smk.output.images, images)
    save_npy(smk.output.labels, labels)


run_job(snakemake, main)  # noqa: F821
