"""The paper preset is the paper: its `infodist` row uses the paper's graph and budget, improvements are extra rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from snakemake.utils import validate

from conftest import REPO, snakemake, write_config
from histodistill.evaluate import train_config_for
from histodistill.nets import build_classifier
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
