"""Fault tolerance through the real workflow: SIGKILL of snakemake's whole process group in the middle of a job (a
crash), damaged intermediate files, and resuming generator training.

Each test works on a copy of the session's smoke run (tests/conftest.py) in a working directory of its own, so the
lock and incomplete markers a killed run leaves behind stay in that directory's .snakemake, and asks only for the
few targets it needs. Kills are synchronised on real events (a job's log file or a checkpoint file appearing).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, SNAKEMAKE

from histodistill.base import HistodistillError, load_npy, load_npz, save_npy, save_npz, writer_rule

pytestmark = pytest.mark.workflow
QUIET = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}


def isolated_copy(smoke_run, workdir: Path) -> tuple[Path, Path]:
    """`workdir/config.yaml` (the smoke config, results under `workdir`) and a copy of the smoke results there;
    copytree keeps modification times, so nothing in the copy is stale."""
    config, ds = smoke_run
    cfg = yaml.safe_load(config.read_text())
    cfg["results"] = str(workdir / "results")
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    copy = workdir / "results" / ds.name
    shutil.copytree(ds, copy)
    return workdir / "config.yaml", copy


def workflow_cmd(*args: str, cores: int = 1) -> list[str]:
    base = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--configfile", "config.yaml"]
    return [*base, "--cores", str(cores), *args]


def run_workflow(workdir: Path, *args: str, check: bool = False, cores: int = 1) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        workflow_cmd(*args, cores=cores), cwd=workdir, capture_output=True, text=True, timeout=600, env=env
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


def planned_outputs(workdir: Path, *targets: str) -> dict[str, list[str]]:
    """Rule -> outputs of the jobs a dry run would schedule for `targets`."""
    out = run_workflow(workdir, "--dry-run", *targets, check=True)
    plan: dict[str, list[str]] = {}
    rule = None
    for line in (out.stdout + out.stderr).splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):", line):
            rule = m.group(1)
        elif rule and (m := re.match(r"^\s+output: (.+)$", line)):
            plan.setdefault(rule, []).extend(p.strip() for p in m.group(1).split(","))
    return plan


def kill_group_when(proc: subprocess.Popen, event, what: str, timeout: float = 300) -> None:
    """SIGKILL snakemake's whole process group (snakemake and the job it runs) as soon as `event()` holds."""
    deadline = time.monotonic() + timeout
    try:
        while not event():
            assert proc.poll() is None, f"the run ended before {what}"
            assert time.monotonic() < deadline, f"no {what} within {timeout} s"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.parametrize(
    "rule, logs, outputs",
    [
        ("sample_pool_shard", "sample_pool_shard_*.log", ("pool/shard_0.npz", "pool/shard_1.npz")),
        ("select_pool_baseline", "select_*.log", ("subsets/kmeans_ipc2.npz", "subsets/random_synthetic_ipc2.npz")),
    ],
)
def test_sigkill_during_a_job_then_a_rerun_redoes_exactly_that_job(smoke_run, tmp_path, rule, logs, outputs):
    _, smoke_ds = smoke_run
    config, ds = isolated_copy(smoke_run, tmp_path)
    targets = [str(ds / out) for out in outputs]

    # One core: the two jobs run one after the other. Kill when the second has started (its log file appears). A
    # selection job can finish within the poller's reaction time on a busy machine; then the kill came after the
    # job, not during it, and the scenario is set up again (at most three times).
    for attempt in range(3):
        for out in outputs:
            (ds / out).unlink(missing_ok=True)
        for log in (ds / "logs").glob(logs):
            log.unlink()
        if attempt:
            run_workflow(tmp_path, "--unlock", check=True)
        started: list[Path] = []

        def second_job_started() -> bool:
            for log in sorted((ds / "logs").glob(logs)):
                if log not in started:
                    started.append(log)
            return len(started) == 2

        proc = subprocess.Popen(workflow_cmd(*targets), cwd=tmp_path, start_new_session=True, **QUIET)
        kill_group_when(proc, second_job_started, f"the second {rule} job started")
        done = [out for out in outputs if (ds / out).exists()]
        if len(done) == 1:
            break
    assert len(done) == 1, f"exactly the first job had finished when the kill came (3 tries): {done}"
    finished_stamp = (ds / done[0]).stat().st_mtime_ns
    killed = [str(ds / out) for out in outputs if out not in done]

    # A crash leaves snakemake's lock behind: unlock once, then the plain rerun plans exactly the killed job.
    assert "--unlock" in run_workflow(tmp_path, *targets).stderr
    run_workflow(tmp_path, "--unlock", check=True)
    assert planned_outputs(tmp_path, *targets) == {rule: killed}
    run_workflow(tmp_path, *targets, check=True)
    assert (ds / done[0]).stat().st_mtime_ns == finished_stamp, "the finished job was not redone"
    for out in outputs:
        assert (ds / out).read_bytes() == (smoke_ds / out).read_bytes(), f"{out} differs from the uninterrupted run"
    assert planned_outputs(tmp_path, *targets) == {}


@pytest.mark.parametrize(
    "damaged, writer",
    [("pool/shard_0.npz", "sample_pool_shard"), ("embeddings/convnet.npy", "embed_pool")],
)
def test_truncated_intermediate_file_stops_with_an_error_naming_it_and_its_rule(smoke_run, tmp_path, damaged, writer):
    config, ds = isolated_copy(smoke_run, tmp_path)
    path = ds / damaged
    stat = path.stat()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # silent damage: the modification time stays as it was
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    target = ds / "subsets" / "kmeans_ipc2.npz"  # select_pool_baseline reads the shards and the embeddings
    target.unlink()
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in ds.rglob("*") if p.is_file() and "logs" not in p.parts}

    proc = run_workflow(tmp_path, str(target))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"histodistill error: {path}: truncated or corrupt" in out, out[-3000:]
    assert f"rule {writer} writes it: delete the file and rerun snakemake" in out
    assert "Traceback" not in out
    assert not target.exists()
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in ds.rglob("*") if p.is_file() and "logs" not in p.parts}
    assert after == before, "no output was written, removed or touched"


def test_sigkill_during_generator_training_resumes_from_its_checkpoint_to_the_same_weights(smoke_run, tmp_path):
    """Killed after its first checkpoint, the workflow's rerun resumes there and ends with the weights of an
    uninterrupted run (the denoiser of a separate uninterrupted run with the same settings). The uninterrupted run
    has --cores 3, the killed and resumed one --cores 2: a training job's thread count, and with it every float sum,
    must not follow --cores (the rules fix it at 2)."""
    denoiser = {"steps": 60, "checkpoint_every": 20}
    runs = {}
    for name in ("uninterrupted", "killed"):
        workdir = tmp_path / name
        workdir.mkdir()
        config, ds = isolated_copy(smoke_run, workdir)
        cfg = yaml.safe_load(config.read_text())
        cfg["generator"]["denoiser"].update(denoiser)
        config.write_text(yaml.safe_dump(cfg))
        target = ds / "generator" / "denoiser.pt"
        target.chmod(0o644)
        target.unlink()
        (ds / "logs" / "train_denoiser.log").unlink()
        runs[name] = (workdir, ds, target)
    workdir, ds, target = runs["uninterrupted"]
    run_workflow(workdir, str(target), check=True, cores=3)
    assert "resumed" not in (ds / "logs" / "train_denoiser.log").read_text()

    workdir, ds, target = runs["killed"]
    checkpoint = ds / "generator" / "checkpoints" / "denoiser_last.pt"
    proc = subprocess.Popen(workflow_cmd(str(target), cores=2), cwd=workdir, start_new_session=True, **QUIET)
    kill_group_when(proc, checkpoint.exists, "first checkpoint")
    assert not target.exists() and checkpoint.exists()
    run_workflow(workdir, "--unlock", check=True)
    run_workflow(workdir, str(target), check=True, cores=2)
    log = (ds / "logs" / "train_denoiser.log").read_text()
    resumed = re.search(r"resumed denoiser training from checkpoint .* at step (\d+) of 60", log)
    assert resumed, log[-2000:]
    assert int(resumed.group(1)) in (20, 40)
    assert not checkpoint.exists()
    reference = torch.load(runs["uninterrupted"][2], map_location="cpu", weights_only=True)["state_dict"]
    weights = torch.load(target, map_location="cpu", weights_only=True)["state_dict"]
    assert weights.keys() == reference.keys()
    for key in reference:
        assert torch.equal(weights[key], reference[key]), key


# ----------------------------------------------------------------------------- the loaders behind those errors


def test_writer_rule_follows_the_results_layout():
    ds = Path("results/digits_16")
    assert writer_rule(ds / "pool" / "shard_12.npz") == "sample_pool_shard"
    assert writer_rule(ds / "embeddings" / "convnet.npy") == "embed_pool"
    assert writer_rule(ds / "embeddings" / "pixels.labels.npy") == "embed_pool"
    assert writer_rule(ds / "subsets" / "infodist_ipc10.npz") == "select_infodist"
    assert writer_rule(ds / "subsets" / "infodist-convnet-paper-flow_ipc1.npz") == "select_ablation"
    assert writer_rule(ds / "subsets" / "kmeans_ipc1.npz") == "select_pool_baseline"
    assert writer_rule(ds / "subsets" / "infodist_plus_ipc1.npz") == "select_infodist_plus"
    assert writer_rule(ds / "subsets" / "dsa_ipc1.npz") == "distill_gradient_matching"
    assert writer_rule(ds / "subsets" / "mtt_ipc10.npz") == "distill_mtt"
    assert writer_rule(ds / "subsets" / "random_real_ipc1.npz") == "select_random_real"
    assert writer_rule(ds / "data" / "real.npz") == "data"
    assert writer_rule("somewhere/else.npz") is None


@pytest.mark.parametrize("keep", [0, 10, 100, -1])
def test_truncated_npy_and_npz_files_raise_one_clear_error(tmp_path, keep):
    array = np.arange(600, dtype=np.float32).reshape(100, 6)
    npy, npz = tmp_path / "embeddings" / "convnet.npy", tmp_path / "pool" / "shard_0.npz"
    save_npy(npy, array)
    save_npz(npz, images=array.astype(np.uint8), labels=np.arange(100))
    assert np.array_equal(load_npy(npy), array) and np.array_equal(load_npz(npz)["labels"], np.arange(100))
    for path, rule in ((npy, "embed_pool"), (npz, "sample_pool_shard")):
        data = path.read_bytes()
        path.write_bytes(data[:keep])
        with pytest.raises(HistodistillError, match=rf"^{re.escape(str(path))}: truncated or corrupt.*rule {rule}"):
            (load_npy if path.suffix == ".npy" else load_npz)(path)
