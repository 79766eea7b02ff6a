"""One source of version pins: requirements.txt; the conda env file (envs/histodistill.yaml) and the Makefile agree
with it, and the env holds every package the rule code imports."""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

import yaml

from conftest import REPO

# imported by the rule code but provided by the engine that runs it, not by the env
PROVIDED = {"snakemake"}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lines: list[str]) -> dict[str, str]:
    """name -> version of every `name==version` line (comments and blank lines skipped)."""
    out = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            out[_canonical(name)] = version.strip()
    return out


def requirements() -> dict[str, str]:
    return _pins((REPO / "requirements.txt").read_text().splitlines())


def env_pins() -> dict[str, str]:
    env = yaml.safe_load((REPO / "envs" / "histodistill.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return _pins(pip)


def makefile_pins() -> dict[str, str]:
    """The pins the Makefile installs outside requirements.txt (torch first, medmnist without its dependencies)."""
    found = re.findall(r"([A-Za-z0-9_.-]+)==([0-9][^\s\"']*)", (REPO / "Makefile").read_text())
    return {_canonical(n): v for n, v in found}


def imported_distributions() -> set[str]:
    """Distributions of the third-party modules that histodistill/ and workflow_scripts/ import."""
    modules = set()
    files = [*(REPO / "histodistill").rglob("*.py"), *(REPO / "workflow_scripts").glob("*.py")]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    modules -= set(sys.stdlib_module_names) | {"histodistill"} | PROVIDED
    by_module = metadata.packages_distributions()
    return {_canonical(by_module[m][0]) for m in modules}


def requirements_of(dist: str) -> set[str]:
    """The distributions `dist` itself requires (unconditional ones)."""
    reqs = metadata.requires(dist) or []
    return {_canonical(re.split(r"[\s;<>=!~\[(]", r, maxsplit=1)[0]) for r in reqs if "extra ==" not in r}


def test_the_env_file_and_the_makefile_pin_what_requirements_pins():
    req, env, make = requirements(), env_pins(), makefile_pins()
    disagree = {n: (req[n], env[n]) for n in req.keys() & env.keys() if req[n] != env[n]}
    assert not disagree, f"envs/histodistill.yaml and requirements.txt disagree: {disagree}"
    for name in ("torch", "medmnist"):  # installed by the Makefile, not from requirements.txt
        assert env[name] == make[name], (name, env[name], make[name])
    disagree = {n: (req[n], make[n]) for n in req.keys() & make.keys() if req[n] != make[n]}
    assert not disagree, f"the Makefile and requirements.txt disagree: {disagree}"


def test_the_env_holds_every_package_the_rule_code_imports():
    env = env_pins()
    transitive = set().union(*(requirements_of(d) for d in env))
    missing = sorted(d for d in imported_distributions() if d not in env and d not in transitive)
    assert not missing, f"envs/histodistill.yaml lacks {missing}, which histodistill/ or workflow_scripts/ import"
