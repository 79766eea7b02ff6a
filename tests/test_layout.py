"""The package's layout holds: stages over a shared base (never the reverse), stage subpackages that re-export their
public names, privacy tables that load without torch, and modules a reader can take in at once."""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "histodistill"
STAGES = ("data", "generator", "classifier", "selection", "distill", "privacy", "reporting")
MAX_LINES = 500


def _imported_modules(path: Path) -> set[str]:
    """Absolute names of every module a file imports, at the top or inside functions."""
    here = path.relative_to(REPO).with_suffix("").parts
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(here[: len(here) - node.level])
                out.add(".".join(base + ([node.module] if node.module else [])))
            else:
                out.add(node.module)
    return out


def _reaches(modules: set[str], packages: list[str]) -> set[str]:
    return {m for m in modules if any(m == p or m.startswith(p + ".") for p in packages)}


def test_the_base_imports_no_stage_and_no_stage_imports_the_workflow_layer():
    stage_packages = [f"histodistill.{s}" for s in STAGES] + ["histodistill.workflow"]
    for path in (PKG / "base").glob("*.py"):
        assert not _reaches(_imported_modules(path), stage_packages), path.name
    for stage in STAGES:
        for path in (PKG / stage).glob("*.py"):
            assert not _reaches(_imported_modules(path), ["histodistill.workflow"]), f"{stage}/{path.name}"


def test_every_module_is_short_enough_to_read():
    long = {str(p.relative_to(PKG)): n for p in PKG.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these modules (over {MAX_LINES} lines): {long}"


@pytest.mark.parametrize("stage", ("base", *STAGES))
def test_a_stage_re_exports_each_public_name_from_the_module_that_defines_it(stage):
    package = importlib.import_module(f"histodistill.{stage}")
    defined = {}
    for path in sorted((PKG / stage).glob("*.py")):
        if path.stem == "__init__":
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                defined.setdefault(node.name, path.stem)
    assert set(defined) <= set(package.__all__), set(defined) - set(package.__all__)
    for name in package.__all__:
        value = getattr(package, name)
        if inspect.isfunction(value) or inspect.isclass(value):
            assert value.__module__ == f"histodistill.{stage}.{defined[name]}", name
    with pytest.raises(AttributeError, match="no attribute"):
        getattr(package, "no_such_name")


def test_privacy_tables_and_gate_load_without_torch():
    """The `share`, `privacy_table` and `summarise` jobs write tables; loading torch for that costs seconds a job."""
    code = (
        "import sys\n"
        "import histodistill.privacy.tables, histodistill.privacy.gate, histodistill.privacy.dcr\n"
        "from histodistill.privacy import gate_verdict, privacy_table, dcr_share_test\n"
        "import histodistill.reporting.summary\n"
        "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]", out.stdout
