"""Rule privacy_table: one row per audited set (DCR shares with CIs and power, near copies, attacks with power,
fidelity beside n-matched real images, gate verdict)."""

import logging

from histodistill.base import atomic_write_bytes, run_job
from histodistill.privacy import privacy_table
from histodistill.reporting import privacy_markdown


def main(smk, device):
    table = privacy_table(smk.input, smk.params.gate)
    atomic_write_bytes(smk.output.csv, table.to_csv(index=False, float_format="%.6f").encode())
    atomic_write_bytes(smk.output.markdown, privacy_markdown(table).encode())
    logging.getLogger("histodistill").info("\n%s", table.to_string(index=False))


run_job(snakemake, main)  # noqa: F821
