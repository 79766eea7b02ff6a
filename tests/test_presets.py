"""The paper preset is the paper: its `infodist` row uses the paper's graph and budget, improvements are extra rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from conftest import REPO, snakemake, write_config
from snakemake.utils import validate

from histodistill.classifier import build_classifier, train_config_for
from histodistill.workflow import ablation_variants, graph_settings

PRESET = REPO / "configs" / "pathmnist_64.yaml"


def preset_with_defaults() -> dict:
    cfg = yaml.safe_load(PRESET.read_text())
    validate(cfg, str(REPO / "schemas" / "config.schema.yaml"))  # fills in the schema's defaults
    return cfg


def test_paper_preset_infodist_uses_the_paper_graph_and_budget():
    cfg = preset_with_defaults()
    main = graph_settings(cfg, cfg["embed"]["net"])
    assert main["knn"] is None and main["threshold"] == "1/N" and main["distance_scale"] == "none"
    assert main["temperature"] == 1.0
    assert cfg["select"]["rank"] == "modular_centrality"
    assert 100 in cfg["select"]["ipc"] and {1, 10, 50} <= set(cfg["select"]["ipc"])
    # the capped graph is a named extra row, not the infodist row
    capped = [v for v in ablation_variants(cfg) if graph_settings(cfg, v["key"])["knn"] == 10]
    assert [v["method"] for v in capped] == ["infodist-convnet-knn10-modular_centrality"]


def test_paper_preset_evaluates_with_the_reference_learning_rate_and_a_standard_resnet18():
    cfg = preset_with_defaults()
    resnet = train_config_for("resnet18", cfg["evaluate"], full_real=False)
    convnet = train_config_for("convnet", cfg["evaluate"], full_real=False)
    assert resnet.lr == convnet.lr == 0.001
    assert convnet.width == 128 and resnet.width == 64
    n_params = sum(p.numel() for p in build_classifier("resnet18", 3, 9, 64, width=resnet.width).parameters())
    assert 10e6 < n_params < 12e6  # the standard ResNet18 (11.2 M), not the 45 M of width 128


def test_paper_preset_dry_run_lists_ipc_100_for_the_paper_method(tmp_path):
    data = tmp_path / "medmnist"
    data.mkdir()
    np.savez(data / "pathmnist_64.npz", train_images=np.zeros((1, 64, 64, 3), np.uint8))  # presence is what counts
    config = write_config(tmp_path, base="configs/pathmnist_64.yaml", dataset={"data_dir": str(data)})
    proc = snakemake(config, "--dry-run", check=True)
    out = proc.stdout + proc.stderr
    results = Path(yaml.safe_load(config.read_text())["results"]) / "pathmnist_64"
    for subset in ("infodist_ipc100", "infodist_ipc1", "infodist-convnet-knn10-modular_centrality_ipc100"):
        assert f"{results}/subsets/{subset}.npz" in out, subset
    # the paper's graph is the main graph (key `convnet`); the capped one lives under its own key
    assert f"{results}/graph/convnet/class_0.edges.tsv.gz" in out
    assert f"{results}/graph/convnet+knn10/class_0.edges.tsv.gz" in out


def _dry_run_jobs(text: str) -> list[dict[str, str]]:
    """The jobs of a dry run's listing: rule name and its `input:` / `output:` lines."""
    jobs: list[dict[str, str]] = []
    for line in text.splitlines():
        if line.startswith(("rule ", "localrule ")):
            jobs.append({"rule": line.split()[1].rstrip(":"), "input": "", "output": ""})
        elif jobs and line.strip().startswith(("input:", "output:")):
            key, _, value = line.strip().partition(":")
            jobs[-1][key] = value
    return jobs


def test_paper_preset_infodist_reads_the_whole_pool_with_the_authors_trials(tmp_path):
    """The paper has no privacy filter: its infodist row (and the ablation rows of its method) choose from the
    unfiltered pool, while the project's rows keep the filter; Infomap runs the authors' 5 trials."""
    assert preset_with_defaults()["select"]["trials"] == 5
    data = tmp_path / "medmnist"
    data.mkdir()
    np.savez(data / "pathmnist_64.npz", train_images=np.zeros((1, 64, 64, 3), np.uint8))
    config = write_config(tmp_path, base="configs/pathmnist_64.yaml", dataset={"data_dir": str(data)})
    proc = snakemake(config, "--dry-run", "--forceall", check=True)
    jobs = _dry_run_jobs(proc.stdout + proc.stderr)
    reads_filter = {}
    for job in jobs:
        if job["rule"].startswith("select_") and "ipc100" in job["output"]:
            reads_filter[job["output"].strip().rsplit("/", 1)[-1]] = "privacy_filter.npz" in job["input"]
    assert reads_filter["infodist_ipc100.npz"] is False
    assert reads_filter["infodist-convnet-knn10-modular_centrality_ipc100.npz"] is False
    assert reads_filter["infodist_plus_ipc100.npz"] is True and reads_filter["kmeans_ipc100.npz"] is True


def test_the_summary_names_the_rows_the_privacy_filter_shaped():
    from histodistill.reporting import pool_filter_note
    from histodistill.workflow import POOL_METHODS

    methods = ["infodist", "infodist-convnet-knn10-modular_centrality", "infodist_plus", "kmeans", "random_real"]
    note = pool_filter_note(methods, POOL_METHODS, True, ["infodist"])
    shaped, whole = note.split("; ")
    assert shaped.endswith("kept: infodist_plus, kmeans")
    assert whole.startswith("chose from the whole pool: infodist, infodist-convnet-knn10-modular_centrality (")
    assert "whole pool: infodist, infodist-convnet-knn10-modular_centrality, infodist_plus, kmeans" in (
        pool_filter_note(methods, POOL_METHODS, False, [])
    )
    assert pool_filter_note(["random_real", "dm"], POOL_METHODS, True, []) == ""


def test_paper_preset_with_a_pool_the_filter_would_leave_short_of_ipc_100_stops_before_the_generator(tmp_path):
    """100 pool images per class for IPC 100 with the privacy filter on: the filter removes about its quantile's
    share, so the run could only fail after hours of generator training; it is refused at parse time instead."""
    data = tmp_path / "medmnist"
    data.mkdir()
    np.savez(data / "pathmnist_64.npz", train_images=np.zeros((1, 64, 64, 3), np.uint8))
    config = write_config(
        tmp_path, base="configs/pathmnist_64.yaml", dataset={"data_dir": str(data)}, pool={"per_class": 10}
    )
    proc = snakemake(config, "--dry-run")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "train_denoiser" not in out
    assert "select.ipc: IPC 100 needs more pool images per class than the 95 of 100" in out
