"""Rule data: load the real dataset (MedMNIST, embedded digits, or your own) into results/{ds}/data/real.npz
(and its train split uncompressed, data/train_images.npy)."""

from histodistill.base import run_job, save_npy, save_npz
from histodistill.data import load_real


def main(smk, device):
    ds = smk.params.dataset
    if ds["name"] == "custom":
        from histodistill.data import load_custom, read_plan

        arrays = load_custom(ds, *read_plan(smk.input.split))
    else:
        arrays = load_real(
            ds["name"],
            ds["size"],
            ds["data_dir"],
            ds["download"],
            ds["split_seed"],
            ds["val_fraction"],
            ds["test_fraction"],
        )
    save_npz(smk.output.real, **arrays)
    save_npy(smk.output.train_images, arrays["train_images"])


run_job(snakemake, main)  # noqa: F821
