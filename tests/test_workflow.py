"""Workflow tests: a smoke run of the whole DAG, what reruns after a change, bad input, reproducibility."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import planned_jobs, snakemake, write_config

from histodistill.base import save_npz
from histodistill.distill import fit_zca, zca_arrays, zca_from_arrays

pytestmark = pytest.mark.workflow


def test_smoke_run_writes_summary_and_figures(smoke_run):
    config, ds = smoke_run
    summary = pd.read_csv(ds / "tables" / "summary.csv")
    rows = set(zip(summary["method"], summary["ipc"].astype(str)))
    methods = ("infodist", "infodist_plus", "random_synthetic", "kmeans", "random_real", "dm", "dc", "dsa", "mtt")
    methods += ("dm_refine",)
    for method in methods:
        assert (method, "2") in rows
    assert ("full_real", "all") in rows
    assert (summary["n_seeds"] == 2).all()
    assert summary["acc_mean"].between(0, 1).all() and summary["auc_mean"].between(0, 1).all()
    # every evaluation also reports the real validation split, and the summary ranks the methods by it
    assert summary["val_acc_mean"].between(0, 1).all()
    assert "Ranked by validation accuracy" in (ds / "tables" / "summary.md").read_text()
    for name in ("accuracy.png", "samples_infodist_ipc2.png"):
        assert (ds / "figures" / name).stat().st_size > 1000
    subset = np.load(ds / "subsets" / "infodist_ipc2.npz")
    assert subset["images"].shape == (20, 8, 8, 1) and subset["images"].dtype == np.uint8
    assert np.bincount(subset["labels"], minlength=10).tolist() == [2] * 10
    quality = json.loads((ds / "pool" / "quality.json").read_text())
    assert set(quality["per_class"]) == {str(c) for c in range(10)}
    graph = pd.read_csv(ds / "tables" / "graph_stats.csv")
    assert len(graph) == 20 and (graph["n_modules"] >= 1).all()
    # infodist: the paper's uncapped graph; infodist_plus: its own graph, capped at 10 out-edges per node
    paper, capped = graph[graph["graph"] == "convnet"], graph[graph["graph"] == "convnet+plus"]
    assert (capped["n_edges"] <= 10 * capped["n_nodes"]).all() and paper["n_edges"].sum() > capped["n_edges"].sum()
    for rule_log in ("train_denoiser.log", "build_graph_convnet.log", "summarise.log"):
        assert (ds / "logs" / rule_log).stat().st_size > 0


def test_dm_refine_starts_from_the_selection_and_is_audited_as_synthetic(smoke_run):
    """dm_refine (distill.dm_refine.start: infodist_plus) is DM moved from the selected pool images: the same labels,
    images that moved from the selection's, no real index, and an audit that does not treat it as real images."""
    _, ds = smoke_run
    start, refined = np.load(ds / "subsets" / "infodist_plus_ipc2.npz"), np.load(ds / "subsets" / "dm_refine_ipc2.npz")
    assert str(refined["source"]) == "distilled" and str(refined["init"]) == "pool"
    assert (refined["indices"] == -1).all() and refined["images"].shape == start["images"].shape
    order = np.argsort(start["labels"], kind="stable")
    assert np.array_equal(refined["labels"], start["labels"][order])
    moved = np.abs(refined["images"].astype(int) - start["images"][order].astype(int)).mean()
    assert 0 < moved < 64  # it started there and moved (5 DM steps), not from noise or real images
    audit = pd.read_csv(ds / "tables" / "privacy.csv")
    row = audit[(audit["method"] == "dm_refine") & (audit["ipc"].astype(str) == "2")]
    assert len(row) == 1 and row["source"].iloc[0] == "distilled" and row["init"].iloc[0] == "pool"
    assert "made from real training images" not in str(row["gate_reasons"].iloc[0])


def test_smoke_run_takes_the_gpu_speed_paths_without_falling_back(smoke_run):
    """configs/smoke.yaml switches on GPU paths on CPU: compiled sampling (what `auto` picks on a GPU) and seeds
    trained side by side (an option)."""
    _, ds = smoke_run
    for shard in (0, 1):
        log = (ds / "logs" / f"sample_pool_shard_{shard}.log").read_text()
        assert "compiled denoiser: True" in log and "torch.compile of the denoiser failed" not in log
    for seed in (0, 1):
        result = json.loads((ds / "eval" / "kmeans_ipc2" / f"convnet_seed{seed}.json").read_text())
        assert result["batch_seeds"] is True and result["precision"] == "fp32" and result["seed"] == seed


def test_privacy_audit_fails_real_images_per_image_and_every_planted_control_is_caught(smoke_run):
    _, ds = smoke_run
    table = pd.read_csv(ds / "tables" / "privacy.csv")
    assert len(table) == 10  # every shared subset (all but full real) is audited
    real = table[table["method"] == "random_real"]
    # one member definition (the train split): real training images are exact copies and fail the gate
    assert (real["release_exact_copies"] == real["n"]).all() and (real["gate"] == "fail").all()
    assert (real["near_copy_rate_pixel"] == 1.0).all()
    report = json.loads((ds / "privacy" / "infodist_ipc2.json").read_text())
    assert {"release", "dcr", "mia_distance", "mia_density", "fidelity"} <= set(report)
    assert report["release"]["level"] == pytest.approx(0.05 / (20 * 2))
    assert "smallest_detectable_leak" in report["dcr"]["pixel"]["power"]
    assert (ds / "tables" / "privacy.md").read_text().count("\n") == len(table) + 2
    assert (ds / "figures" / "privacy_pairs_infodist_ipc2.png").stat().st_size > 1000
    controls = json.loads((ds / "privacy" / "controls.json").read_text())
    kinds = controls["ipc"]["2"]
    assert set(kinds) == {"near_copy", "decoded_copy", "shifted_mirror"}
    assert all(c["n"] == 20 for c in kinds.values())
    # caught through the gate's own path; a decoded copy counts only where the smoke run's 20-step autoencoder
    # left a copy (closer to its source than any unseen image comes to the train split), else it is void
    assert kinds["near_copy"]["detected"] and kinds["shifted_mirror"]["detected"], kinds
    decoded = kinds["decoded_copy"]
    assert decoded["detected"] or (
        decoded["void"] and decoded["distance_to_source"] >= decoded["closest_unseen_distance"]
    )
    pool = pd.read_csv(ds / "tables" / "privacy_pool.csv")
    assert set(pool["images"]) == {"whole_pool", "kept"}
    assert set(pool["verdict"]) <= {"pass", "fail", "not assessed"}
    generator = json.loads((ds / "privacy" / "generator.json").read_text())
    assert generator["verdict"] in {"pass", "fail", "not assessed"} and "tpr_at_1pct_fpr_ci95" in generator
    removed = pd.read_csv(ds / "tables" / "privacy_filter.csv")
    assert (removed["pool"] == 24).all() and (removed["kept"] + removed["removed"] == removed["pool"]).all()


def test_share_packages_load_back_to_the_subset_files(smoke_run):
    from histodistill.reporting import load
    from histodistill.selection import load_subset

    _, ds = smoke_run
    index = pd.read_csv(ds / "share" / "index.csv")
    assert len(index) == 10  # every shared set: 5 selectors + 5 distillers (dm_refine among them) at IPC 2
    assert not index.loc[index["set"].str.startswith("random_real"), "shared"].any()
    assert index.loc[~index["shared"], "reasons"].str.len().gt(0).all()  # every refusal says why
    for name in index.loc[index["shared"], "set"]:
        back = load(ds / "share" / name)  # verifies SHA256SUMS
        subset = load_subset(ds / "subsets" / f"{name}.npz")
        np.testing.assert_array_equal(back["images"], subset["images"])
        np.testing.assert_array_equal(back["labels"], subset["labels"])
        sheet = (ds / "share" / name / "datasheet.md").read_text()
        assert "No formal privacy guarantee" in sheet and "accuracy" in sheet.lower()
    assert index["shared"].any()  # the controls were caught, so the gate may vouch for a set


def test_nothing_to_do_after_a_complete_run(smoke_run):
    config, _ = smoke_run
    assert planned_jobs(config) == {}


def test_selection_parameter_change_reruns_only_selection_evaluation_and_summary(smoke_run, tmp_path):
    config, _ = smoke_run
    cfg = yaml.safe_load(config.read_text())
    cfg["select"]["trials"] = cfg["select"]["trials"] + 3
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(cfg))
    jobs = planned_jobs(changed)
    assert jobs, "a changed Infomap setting must rerun something"
    assert set(jobs) <= {
        "find_communities",
        "select_infodist",
        "select_infodist_plus",
        "distill_dm_refine",  # it starts from infodist_plus's selection
        "privacy_audit",
        "privacy_table",
        "share",
        "evaluate_subset",
        "summarise",
        "sample_grids",
        "all",
    }
    assert jobs["find_communities"] == 2 and jobs["select_infodist"] == 1 and jobs["select_infodist_plus"] == 1
    assert jobs["distill_dm_refine"] == 1
    assert jobs["evaluate_subset"] == 3  # infodist, infodist_plus and dm_refine (started from it), nothing else


def test_distillation_protocol_trains_mtt_at_its_learned_lr_and_dc_without_augmentation(smoke_run, tmp_path):
    """evaluate.protocol distillation on a copy of the smoke run: MTT's set (which records its learned lr) trains at
    that lr, DC's without DSA for epochs_without_augmentation + 1 epochs, DM's with DSA at the reference lr."""
    _, ds = smoke_run
    shutil.copytree(ds.parent, tmp_path / "results")
    config = write_config(
        tmp_path,
        evaluate={"protocol": "distillation", "distillation": {"epochs": 3, "epochs_without_augmentation": 2}},
    )
    copy = tmp_path / "results" / ds.name
    targets = [str(copy / "eval" / f"{m}_ipc2" / "convnet_seed0.json") for m in ("mtt", "dc", "dm")]
    snakemake(config, *targets, "--force", check=True)
    learned = float(np.load(copy / "subsets" / "mtt_ipc2.npz")["learned_lr"])
    mtt, dc, dm = (json.loads(open(t).read()) for t in targets)
    assert learned > 0 and mtt["lr"] == pytest.approx(learned) and mtt["schedule"] == "step"
    assert (dc["epochs"], dc["dsa"], dc["lr"]) == (3, False, 0.01)
    assert (dm["epochs"], dm["dsa"], dm["lr"]) == (4, True, 0.01)


def test_mtt_under_zca_shares_one_transform_and_the_evaluation_refuses_another(smoke_run, tmp_path):
    """distill.mtt.zca on a copy of the smoke run: one fit_zca job; the experts retrain (whitened data) and MTT's set
    records the transform's digest; its evaluation trains on the set as distilled against whitened real images. A
    set paired with another transform is refused, naming the rule to rerun."""
    _, ds = smoke_run
    shutil.copytree(ds.parent, tmp_path / "results")
    config = write_config(tmp_path, distill={"mtt": {"zca": True}})
    copy = tmp_path / "results" / ds.name
    target = str(copy / "eval" / "mtt_ipc2" / "convnet_seed0.json")
    jobs = planned_jobs(config, target, "--forcerun", "fit_zca")  # (the copy has no snakemake metadata to trigger it)
    assert jobs["fit_zca"] == 1 and jobs["train_expert"] == 2 and jobs["distill_mtt"] == 1
    snakemake(config, target, "--forcerun", "fit_zca", check=True)
    subset = np.load(copy / "subsets" / "mtt_ipc2.npz")
    zca = zca_from_arrays(dict(np.load(copy / "experts" / "zca.npz")))
    assert str(subset["zca"]) == zca.digest and subset["model_images"].shape == subset["images"].shape
    assert (
        "ZCA: trained on the whitened set as distilled" in (copy / "logs" / "evaluate_mtt_ipc2_convnet.log").read_text()
    )
    other = fit_zca(np.load(copy / "data" / "real.npz")["train_images"], 0.5)
    save_npz(copy / "experts" / "zca.npz", **zca_arrays(other))
    proc = snakemake(config, target, "--force", "--allowed-rules", "evaluate_subset")
    assert proc.returncode != 0 and "was distilled under ZCA transform" in proc.stdout + proc.stderr
    assert "rerun distill_mtt" in proc.stdout + proc.stderr


def test_evaluation_parameter_change_leaves_generator_and_pool_alone(smoke_run, tmp_path):
    config, _ = smoke_run
    cfg = yaml.safe_load(config.read_text())
    cfg["evaluate"]["epochs"] += 1
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(cfg))
    jobs = planned_jobs(changed)
    assert set(jobs) == {"evaluate_subset", "summarise", "share", "all"}


def test_privacy_filter_change_reruns_filter_and_selection_not_generator_graph_or_reference(smoke_run, tmp_path):
    config, _ = smoke_run
    cfg = yaml.safe_load(config.read_text())
    cfg["select"]["privacy_filter"] = {"quantile": 0.1}
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(cfg))
    jobs = planned_jobs(changed)
    assert jobs["privacy_filter"] == 1 and jobs["select_infodist"] == 1 and jobs["select_pool_baseline"] == 2
    assert jobs["select_infodist_plus"] == 1
    assert not set(jobs) & {
        "train_autoencoder",
        "train_denoiser",
        "sample_pool_shard",
        "embed_pool",
        "build_graph",
        "find_communities",
        "privacy_reference",
        "privacy_train_embeddings",
        "select_random_real",
    }


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"dataset": {"name": "notamnist"}}, "unknown dataset 'notamnist'"),
        ({"dataset": {"name": "pathmnist", "size": 20}}, "dataset.size: 20 is unsupported"),
        ({"dataset": {"name": "pathmnist", "size": 64, "data_dir": "/nonexistent/medmnist"}}, "pathmnist_64.npz"),
        ({"select": {"ipc": [1, 500]}}, "IPC 500 is larger than the synthetic pool per class"),
        ({"select": {"ipc": [24]}}, "IPC 24 needs more pool images per class than the 22 of 24"),  # filter's share
        (
            {"distill": {"mtt": {"batch_syn": None, "max_memory_gb": 1e-5}}},
            "distill.mtt.batch_syn: 20 images per student step over 2 unrolled steps need about 0.000512 GB, above",
        ),
        ({"pool": {"shards": "two"}}, "shards"),
        ({"pool": {"guidence": 3.0}}, "guidence"),
        ({"pool": {"steps": 0}}, "steps"),
        ({"pool": {"guidance": -1}}, "guidance"),
        ({"select": {"methods": ["dm", "nosuchmethod"]}}, "select.methods.1: 'nosuchmethod' is not one of"),
        ({"distill": {"dm": {"init": "zeros"}}}, "distill.dm.init: 'zeros' is not one of ['real', 'noise']"),
        ({"select": {"infodist_plus": {"graph": {"kn": 5}}}}, "select.infodist_plus.graph.kn"),
        ({"select": {"infodist_plus": {"pick": "centre"}}}, "select.infodist_plus.pick: 'centre' is not one of"),
        ({"privacy": {"dp": {"enabled": True}}}, "select.privacy_filter.enabled: the privacy filter removes"),
        (
            {"privacy": {"dp": {"enabled": True}}, "select": {"privacy_filter": {"enabled": False}}},
            "select.methods: dm computes its images from the private train split",
        ),
    ],
)
def test_bad_input_gives_one_clear_error_and_no_outputs(tmp_path, overrides, message):
    config = write_config(tmp_path, **overrides)
    proc = snakemake(config)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("size", [28, 32])  # 32: the 28 px file, resized (the feasibility study's size)
def test_missing_medmnist_file_message_names_file_and_config_key(tmp_path, size):
    config = write_config(tmp_path, dataset={"name": "bloodmnist", "size": size, "data_dir": str(tmp_path / "data")})
    proc = snakemake(config)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert str(tmp_path / "data" / "bloodmnist.npz") in out and "dataset.data_dir" in out
    assert "bloodmnist.npz?download=1" in out or "zenodo" in out  # the 28 px file's address, not a 32 px one


def test_same_config_twice_gives_byte_identical_subsets_and_equal_metrics(smoke_run, tmp_path):
    """Everything after the pool, run again from the same real data, generator and pool shards: byte-identical subsets
    and equal metrics. (The generator's own reruns are compared elsewhere: a killed and resumed denoiser against an
    uninterrupted one, a re-sampled shard against the first run's, the autoencoder trained twice.)"""
    config, ds = smoke_run
    cfg = yaml.safe_load(config.read_text())
    cfg["results"] = str(tmp_path / "again")
    again = tmp_path / "again.yaml"
    again.write_text(yaml.safe_dump(cfg))
    rerun = tmp_path / "again" / "digits_8"
    for kept in ("data", "generator", "pool"):
        shutil.copytree(ds / kept, rerun / kept, ignore=shutil.ignore_patterns("privacy_filter.npz", "quality.json"))
    targets = sorted(p.relative_to(ds) for p in (ds / "subsets").glob("*.npz"))
    assert len(targets) == 10  # every selector (5 methods + 5 distillers, dm_refine among them)
    # and metrics: the pool's quality and the evaluation of a pool subset and a real subset, both seeds
    metrics = ["pool/quality.json"]
    metrics += [f"eval/{s}/convnet_seed{k}.json" for s in ("kmeans_ipc2", "random_real_ipc2") for k in (0, 1)]
    planned = planned_jobs(again, *[str(rerun / t) for t in [*targets, *metrics]])
    assert not {"train_autoencoder", "train_denoiser", "sample_pool_shard"} & set(planned), planned
    snakemake(again, *[str(rerun / t) for t in [*targets, *metrics]], check=True)
    for t in targets:
        assert (rerun / t).read_bytes() == (ds / t).read_bytes(), t
    for t in metrics:  # every value equal, except the wall-clock time an evaluation took
        first, second = (json.loads((root / t).read_text()) for root in (ds, rerun))
        first.pop("train_seconds", None), second.pop("train_seconds", None)
        assert first == second, t


@pytest.mark.parametrize("method, init", [("dm", "noise"), ("dc", "noise"), ("dsa", "real"), ("mtt", "real")])
def test_distilled_sets_have_the_subset_format_and_record_their_init(smoke_run, method, init):
    """configs/smoke.yaml distils with each method: IPC images per class, uint8, labels class-major, init recorded;
    a real-init set is source 'real' with the train indices it started from."""
    _, ds = smoke_run
    real = np.load(ds / "data" / "real.npz")
    for ipc in (2,):
        subset = np.load(ds / "subsets" / f"{method}_ipc{ipc}.npz")
        images = subset["images"]
        assert images.shape == (10 * ipc, 8, 8, 1) and images.dtype == np.uint8
        assert (
            subset["labels"].dtype == np.int64 and subset["labels"].tolist() == np.repeat(np.arange(10), ipc).tolist()
        )
        assert str(subset["init"]) == init
        assert len(np.unique(images.reshape(len(images), -1), axis=0)) == len(images)  # no collapsed images
        if init == "real":
            assert str(subset["source"]) == "real"
            assert (real["train_labels"][subset["indices"]] == subset["labels"]).all()
        else:
            assert str(subset["source"]) == "distilled" and (subset["indices"] == -1).all()


def test_summary_and_privacy_tables_show_the_init(smoke_run):
    _, ds = smoke_run
    summary = pd.read_csv(ds / "tables" / "summary.csv", keep_default_na=False)
    assert set(summary.loc[summary["method"] == "dm", "init"]) == {"noise"}
    assert set(summary.loc[summary["method"] == "kmeans", "init"]) == {""}
    assert "| dm (init noise) | convnet |" in (ds / "tables" / "summary.md").read_text()
    privacy = pd.read_csv(ds / "tables" / "privacy.csv", keep_default_na=False)
    dm = privacy[privacy["method"] == "dm"]
    assert len(dm) == 1 and set(dm["source"]) == {"distilled"} and set(dm["init"]) == {"noise"}
    assert json.loads((ds / "privacy" / "dm_ipc2.json").read_text())["members"].startswith("the real train split")


def test_real_init_with_an_ipc_above_a_class_count_fails_with_one_line_naming_the_key(tmp_path):
    config = write_config(tmp_path, distill={"dm": {"init": "real"}})
    proc = snakemake(config, str(tmp_path / "results" / "digits_8" / "subsets" / "dm_ipc500.npz"))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    lines = [line for line in out.splitlines() if line.startswith("histodistill error:")]
    assert len(lines) == 1 and "distill.dm.init: real init needs IPC 500" in lines[0]
    assert "Traceback" not in out
    assert not (tmp_path / "results" / "digits_8" / "subsets" / "dm_ipc500.npz").exists()


def test_changing_only_mtt_distillation_settings_does_not_retrain_the_experts(smoke_run, tmp_path):
    config, _ = smoke_run
    cfg = yaml.safe_load(config.read_text())
    cfg["distill"]["mtt"]["iterations"] += 1
    cfg["distill"]["mtt"]["syn_steps"] += 1
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(cfg))
    jobs = planned_jobs(changed)
    assert "train_expert" not in jobs and jobs["distill_mtt"] == 1
    cfg["distill"]["mtt"]["experts"]["epochs"] += 1  # ... while the experts' own settings do
    changed.write_text(yaml.safe_dump(cfg))
    assert planned_jobs(changed)["train_expert"] == 2
