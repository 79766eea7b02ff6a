"""The GPU lease: distinct devices for concurrent holders, released on exit and on errors."""

from __future__ import annotations

import multiprocessing as mp
import os

import pytest

from histodistill.base import gpu_lease


@pytest.fixture
def two_gpus(tmp_path, monkeypatch):
    monkeypatch.setenv("HISTODISTILL_GPUS", "0,1")
    monkeypatch.setenv("HISTODISTILL_LEASE_DIR", str(tmp_path))
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def _hold(queue, both_holding):
    """Take a device and keep it until the other holder has one too (a barrier: the two leases overlap for sure,
    however the processes are scheduled)."""
    with gpu_lease(1) as ids:
        queue.put((ids, os.environ.get("CUDA_VISIBLE_DEVICES")))
        both_holding.wait(20)


def _hold_until(queue, release):
    with gpu_lease(1) as ids:
        queue.put(ids)
        release.wait(20)


def test_two_concurrent_holders_get_different_devices(two_gpus):
    ctx = mp.get_context("fork")
    q, both_holding = ctx.Queue(), ctx.Barrier(2)
    procs = [ctx.Process(target=_hold, args=(q, both_holding)) for _ in range(2)]
    for p in procs:
        p.start()
    got = [q.get(timeout=10) for _ in procs]
    for p in procs:
        p.join(10)
    assert [p.exitcode for p in procs] == [0, 0]  # neither gave up waiting at the barrier
    assert sorted(ids[0] for ids, _ in got) == ["0", "1"]
    assert all(env == ids[0] for ids, env in got)


def test_lease_is_released_on_exit_and_on_exception(two_gpus):
    with gpu_lease(2) as ids:
        assert sorted(ids) == ["0", "1"]
    with pytest.raises(RuntimeError):
        with gpu_lease(2):
            raise RuntimeError("job failed")
    with gpu_lease(2, timeout_seconds=2) as again:
        assert sorted(again) == ["0", "1"]
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


def test_a_third_holder_waits_until_a_device_is_free(two_gpus):
    with gpu_lease(2):
        with pytest.raises(TimeoutError):
            with gpu_lease(1, poll_seconds=0.05, timeout_seconds=0.3):
                pass


def test_noop_without_request_or_under_slurm(two_gpus, monkeypatch):
    with gpu_lease(0) as ids:
        assert ids == []
    monkeypatch.setenv("SLURM_JOB_ID", "123")
    with gpu_lease(1) as ids:
        assert ids == [] and "CUDA_VISIBLE_DEVICES" not in os.environ


def test_every_rule_that_runs_a_network_asks_for_a_gpu():
    """A rule whose script runs a network (histodistill picks CUDA when present) must declare `gpu=1`, or two such
    jobs share one GPU unscheduled, and a cluster run gives it no GPU at all."""
    import re

    from conftest import REPO

    network_calls = ("load_embedder", "predict_logits", "train_classifier", "evaluate_subset", "load_codec", "embed(")
    rules = {}
    for smk in (REPO / "rules").glob("*.smk"):
        for block in re.split(r"\n(?=rule )", smk.read_text()):
            name = re.match(r"rule (\w+):", block)
            script = re.search(r'script:\s*\n\s*"\.\./(workflow_scripts/\w+\.py)"', block)
            if name and script:
                rules[name.group(1)] = (block, (REPO / script.group(1)).read_text())
    uses_network = {n for n, (_, code) in rules.items() if any(call in code for call in network_calls)}
    assert {"pool_quality", "evaluate_subset", "sample_pool_shard", "train_denoiser"} <= uses_network
    missing = sorted(n for n in uses_network if not re.search(r"resources:\s*\n\s*gpu=1", rules[n][0]))
    assert missing == []


def test_a_device_listed_twice_is_two_slots(tmp_path, monkeypatch):
    """HISTODISTILL_GPUS=0,0,1: two jobs share device 0, a third gets device 1, a fourth waits; a job asking for
    two GPUs gets two distinct devices, never two slots of one."""
    monkeypatch.setenv("HISTODISTILL_GPUS", "0,0,1")
    monkeypatch.setenv("HISTODISTILL_LEASE_DIR", str(tmp_path))
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    ctx = mp.get_context("fork")
    q, release = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_hold_until, args=(q, release)) for _ in range(3)]
    for p in procs:
        p.start()
    try:
        got = sorted(q.get(timeout=10)[0] for _ in procs)  # all three hold at once
        assert got == ["0", "0", "1"]
        with pytest.raises(TimeoutError):
            with gpu_lease(1, poll_seconds=0.05, timeout_seconds=0.3):
                pass
    finally:
        release.set()
        for p in procs:
            p.join(10)
    with gpu_lease(2, timeout_seconds=2) as ids:
        assert sorted(ids) == ["0", "1"]
    with pytest.raises(RuntimeError, match="only 2 are visible"):
        with gpu_lease(3):
            pass
