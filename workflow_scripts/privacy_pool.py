"""Rule privacy_pool: DCR share and near-copy rate of the whole pool and of the images the filter keeps."""

import logging

from histodistill.io import atomic_write_bytes, load_npz, write_json
from histodistill.privacy import pool_report, pool_table
from histodistill.workflow import run_job


def main(smk, device):
    d = load_npz(smk.input.keep, required=("keep",))
    ref = load_npz(smk.input.reference)
    report = pool_report(d, d["keep"].astype(bool), ref, smk.params.near_copy_quantile)
    table = pool_table(report)
    logging.getLogger("histodistill").info("\n%s", table.to_string(index=False))
    write_json(smk.output.json, report)
    atomic_write_bytes(smk.output.csv, table.to_csv(index=False, float_format="%.6f").encode())


run_job(snakemake, main)  # noqa: F821
