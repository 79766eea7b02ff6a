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


def _tests_taking(fixture: str) -> set[tuple[str, str]]:
    """(file name, test function) of every test in this folder whose parameters name `fixture`, read from source."""
    import ast

    found = set()
    for path in Path(__file__).parent.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
                if any(a.arg == fixture for a in node.args.args):
                    found.add((path.name, node.name))
    return found


@pytest.hookimpl(optionalhook=True)  # a plain `pytest` without xdist installed ignores it
def pytest_xdist_make_scheduler(config, log):
    """`make test` runs the suite on two pytest-xdist workers: one test at a time to whichever is free, except that
    every test taking the session's smoke run goes to one worker, so the smoke workflow runs once, not once per
    worker. (xdist's own `--dist loadgroup` does not group under pytest 9.2: pytest-xdist issue #1386.)"""
    from xdist.scheduler import LoadScopeScheduling

    smoke = _tests_taking("smoke_run")

    class SmokeTestsTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file, _, rest = nodeid.partition("::")
            name = rest.split("[")[0].split("::")[-1]
            return "smoke_run" if (Path(file).name, name) in smoke else nodeid

    return SmokeTestsTogether(config, log)


WORKFLOW_CALLS = ("snakemake(", "planned_jobs(", "planned_resources(")


def pytest_collection_modifyitems(config, items):
    """Every test that runs snakemake (directly, through the helpers, or by taking the session's smoke run) carries
    the `workflow` mark, whether or not its author wrote it: `pytest -m "not workflow"` stays the fast unit suite."""
    import inspect

    for item in items:
        fn = getattr(item, "function", None)
        source = inspect.getsource(fn) if fn is not None else ""
        if "smoke_run" in getattr(item, "fixturenames", ()) or any(call in source for call in WORKFLOW_CALLS):
            item.add_marker(pytest.mark.workflow)
