"""Shared helpers: run snakemake on this repository with results written to a temporary directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def write_config(tmp: Path, base: str = "configs/smoke.yaml", **overrides) -> Path:
    """A copy of a preset with `results` pointed at `tmp` and nested overrides merged in."""
    cfg = yaml.safe_load((REPO / base).read_text())

    def merge(dst: dict, src: dict) -> None:
        for k, v in src.items():
            if isinstance(v, dict) and isinstance(dst.get(k), dict):
                merge(dst[k], v)
            else:
                dst[k] = v

    merge(cfg, overrides)
    cfg.setdefault("results", str(tmp / "results"))
    if "results" not in overrides:
        cfg["results"] = str(tmp / "results")
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def snakemake(config: Path, *args: str, check: bool = False, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cmd = [SNAKEMAKE, "--configfile", str(config), "--cores", "2", *args]  # --configfile takes several values
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


def planned_jobs(config: Path, *args: str) -> dict[str, int]:
    """Rule name -> number of jobs a dry run would schedule."""
    proc = snakemake(config, "--dry-run", *args, "--quiet", "rules", check=True)  # --quiet takes several values
    jobs: dict[str, int] = {}
    in_table = False
    for line in (proc.stdout + proc.stderr).splitlines():
        parts = line.split()
        if line.startswith("job") and "count" in line:
            in_table = True
            continue
        if in_table and len(parts) == 2 and parts[1].isdigit():
            if parts[0] != "total":
                jobs[parts[0]] = int(parts[1])
        elif in_table and parts and not line.startswith("-"):
            in_table = False
    return jobs


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> tuple[Path, Path]:
    """The whole workflow on configs/smoke.yaml and its figures (`all figures`), once per test session: (config path,
    dataset results dir)."""
    tmp = tmp_path_factory.mktemp("smoke")
    config = write_config(tmp)
    snakemake(config, "all", "figures", check=True)
    return config, tmp / "results" / "digits_8"


@pytest.fixture
def copy_of(tmp_path):
    def _copy(src: Path) -> Path:
        dst = tmp_path / src.name
        shutil.copytree(src, dst)
        return dst

    return _copy
