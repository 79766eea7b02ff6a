"""Rule share: a package (PNGs, labels.csv, datasheet.md, SHA256SUMS) for every audited set that passes the privacy
gate, and an index of every set with its verdict and reasons."""

import json
import logging
from pathlib import Path

from histodistill.io import atomic_write_bytes
from histodistill.privacy import gate_verdict
from histodistill.report import parse_subset
from histodistill.share import accuracy_summary, datasheet, share_index, write_package
from histodistill.subsets import load_subset
from histodistill.workflow import run_job


def main(smk, device):
    out = Path(smk.output[0])
    out.mkdir(parents=True, exist_ok=True)
    log = logging.getLogger("histodistill")
    rows = []
    for name, subset_path, audit_path in zip(smk.params.names, smk.input.subsets, smk.input.audits):
        audit = json.loads(Path(audit_path).read_text())
        ok, reasons = gate_verdict(audit, smk.params.gate)
        if not ok:
            rows.append({"set": name, "shared": False, "package": "", "reasons": "; ".join(reasons)})
            log.info("%s: not shared (%s)", name, "; ".join(reasons))
            continue
        subset = load_subset(subset_path)
        method, ipc = parse_subset(name)
        settings = {
            **smk.params.settings,
            "set": {"method": method, "ipc": ipc, "file": subset_path},
        }
        evals = [p for p in smk.input.evals if Path(p).parent.name == name]
        sheet = datasheet(name, subset, audit, accuracy_summary(evals), settings, smk.params.gate)
        write_package(out / name, subset, sheet)
        rows.append({"set": name, "shared": True, "package": f"{name}/", "reasons": ""})
        log.info("%s: shared as %s", name, out / name)
    table, md = share_index(rows)
    atomic_write_bytes(out / "index.csv", table.to_csv(index=False).encode())
    atomic_write_bytes(out / "index.md", md.encode())


run_job(snakemake, main)  # noqa: F821
