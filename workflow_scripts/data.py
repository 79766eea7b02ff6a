"""Rule data: load the real dataset (MedMNIST, embedded digits, or your own) into results/{ds}/data/real.npz."""

from histodistill.data import load_real
from histodistill.io import save_npz
from histodistill.workflow import run_job


def main(smk, device):
    ds = smk.params.dataset
    if ds["name"] == "custom":
        from histodistill.custom_data import load_custom, read_plan

        arrays = load_custom(ds, *read_plan(smk.input.split))
        save_npz(smk.output[0], **arrays)
        return
    arrays = load_real(
        ds["name"],
        ds["size"],
        ds["data_dir"],
        ds["download"],
        ds["split_seed"],
        ds["val_fraction"],
        ds["test_fraction"],
    )
    save_npz(smk.output[0], **arrays)


run_job(snakemake, main)  # noqa: F821
