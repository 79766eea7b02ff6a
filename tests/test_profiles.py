"""The shipped SLURM profile against the rules (a dry run; the real cluster run is tests/cluster/slurm_harness.py)."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from conftest import REPO, SNAKEMAKE, write_config

pytestmark = pytest.mark.workflow


def planned_resources(*args: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, resources) of every job a dry run plans, as snakemake prints them."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([SNAKEMAKE, "--dry-run", *args], cwd=REPO, capture_output=True, text=True, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    jobs, rule = [], None
    for line in out.splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):", line):
            rule = m.group(1)
        elif rule and (m := re.match(r"^\s+resources: (.+)$", line)):
            jobs.append((rule, dict(item.split("=", 1) for item in m.group(1).split(", "))))
            rule = None
    return jobs


def test_slurm_profile_plans_without_cores_and_asks_for_gpus_through_the_plugins_gpu_key(tmp_path):
    """A cluster run defines no --cores (the Snakefile must not need it); every rule that declares gpu=1 runs in
    the profile's GPU partition and asks for its GPU only through `gpu` (the plugin's --gpus), never slurm_extra."""
    config = write_config(tmp_path)
    jobs = planned_resources("--profile", "profiles/slurm", "--configfile", str(config))
    assert len(jobs) > 50
    gpu_rules = {rule for rule, res in jobs if res.get("gpu") == "1"}
    declared = set()  # the rules that declare gpu=1 in rules/*.smk
    for smk in (REPO / "rules").glob("*.smk"):
        for block in re.split(r"\n(?=rule )", smk.read_text()):
            name = re.match(r"rule (\w+):", block)
            if name and re.search(r"resources:\s*\n\s*gpu=1", block):
                declared.add(name.group(1))
    assert {"train_denoiser", "sample_pool_shard", "evaluate_subset", "privacy_audit"} <= gpu_rules
    assert gpu_rules <= declared
    for rule, res in jobs:
        assert "slurm_extra" not in res and "gres" not in res, (rule, res)
        assert res["slurm_partition"] == ("gpu" if rule in gpu_rules else "cpu"), (rule, res)
        assert int(res["runtime"]) >= 60 and int(res["mem_mb"]) >= 8000, (rule, res)
    assert {res["runtime"] for rule, res in jobs if rule == "train_denoiser"} == {"2880"}


def test_a_cluster_run_needs_no_cores(tmp_path):
    """With a cluster executor there is no --cores; parsing the workflow must not ask for it (it once did:
    "Workflow requires a total number of cores to be defined")."""
    config = write_config(tmp_path)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cmd = [SNAKEMAKE, "--summary", "--profile", "profiles/slurm", "--configfile", str(config)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "pool/shard_1.npz" in proc.stdout


def _provided_gpu(tmp_path, env_gpus: str | None, *args: str) -> str | None:
    """The `gpu` limit snakemake reports for a local run of the smoke config's data job (None: no limit)."""
    env = {k: v for k, v in os.environ.items() if k != "HISTODISTILL_GPUS"}
    env["PYTHONWARNINGS"] = "ignore"
    if env_gpus is not None:
        env["HISTODISTILL_GPUS"] = env_gpus
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = write_config(tmp_path)
    target = str(tmp_path / "results" / "digits_8" / "data" / "real.npz")
    cmd = [SNAKEMAKE, target, "--configfile", str(config), *args]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    m = re.search(r"Provided resources:.*gpu=(?:Resource\(\"gpu\", )?(\d+)", out)
    return m.group(1) if m else None


def test_a_local_run_limits_gpu_jobs_to_the_device_slots_and_the_gpu_profile_keeps_that_limit(tmp_path):
    """With GPUs to lease, a local run caps concurrent GPU jobs at the number of slots (so they queue by priority in
    snakemake, not on the lease's lock files); the shipped GPU profile does not override it; an explicit
    --resources gpu=N does; without a GPU there is no limit (CPU runs stay parallel)."""
    assert _provided_gpu(tmp_path / "a", "0,0", "--cores", "2") == "2"
    assert _provided_gpu(tmp_path / "b", "0", "--profile", "profiles/gpu") == "1"
    assert _provided_gpu(tmp_path / "c", "0", "--cores", "2", "--resources", "gpu=3") == "3"
    assert _provided_gpu(tmp_path / "d", "", "--cores", "2") is None
