"""Rule share: a package (PNGs, labels.csv, datasheet.md, SHA256SUMS) for every audited set that passes the privacy
gate - and none at all when a planted control was missed - and an index of every set with its verdict and reasons."""

import json
import logging
from pathlib import Path

from histodistill.base import atomic_write_bytes, run_job
from histodistill.reporting import (
    accuracy_summary,
    datasheet,
    parse_subset,
    release_decisions,
    share_index,
    write_package,
)
from histodistill.selection import load_subset


def main(smk, device):
    out = Path(smk.output[0])
    out.mkdir(parents=True, exist_ok=True)
    log = logging.getLogger("histodistill")
    controls = json.loads(Path(smk.input.controls[0]).read_text()) if smk.input.controls else None
    generator = json.loads(Path(smk.input.generator[0]).read_text()) if smk.input.generator else None
    pool = json.loads(Path(smk.input.pool[0]).read_text()) if smk.input.pool else None
    budget = json.loads(Path(smk.input.dp_budget[0]).read_text()) if smk.input.get("dp_budget") else None
    audits = {name: json.loads(Path(p).read_text()) for name, p in zip(smk.params.names, smk.input.audits)}
    rows = release_decisions(audits, smk.params.gate, controls, budget)
    for row, subset_path in zip(rows, smk.input.subsets):
        name = row["set"]
        if not row["shared"]:
            log.info("%s: not shared (%s)", name, row["reasons"])
            continue
        subset = load_subset(subset_path)
        method, ipc = parse_subset(name)
        settings = {**smk.params.settings, "set": {"method": method, "ipc": ipc, "file": subset_path}}
        evals = [p for p in smk.input.evals if Path(p).parent.name == name]
        accuracy = accuracy_summary(evals)
        sheet = datasheet(
            name, subset, audits[name], accuracy, settings, smk.params.gate, controls, generator, pool, budget
        )
        write_package(out / name, subset, sheet)
        log.info("%s: shared as %s", name, out / name)
    table, md = share_index(rows)
    atomic_write_bytes(out / "index.csv", table.to_csv(index=False).encode())
    atomic_write_bytes(out / "index.md", md.encode())


run_job(snakemake, main)  # noqa: F821
