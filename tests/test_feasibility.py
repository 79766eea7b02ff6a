"""The feasibility study across datasets: gathering, correlations, the one-call workflow (dry run and end to end)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import planned_jobs, snakemake, write_config
from scipy.stats import rankdata
from test_data import write_medmnist_fixture

from histodistill.base import HistodistillError
from histodistill.reporting import correlations, gather, markdown


def _summary(rows):
    return pd.DataFrame(
        [
            {"method": m, "ipc": i, "model": "convnet", "acc_mean": a, "acc_std": 0.01, "n_seeds": 3, "init": init}
            for m, i, a, init in rows
        ]
    )


def test_gather_pairs_each_method_with_random_real_at_the_same_ipc_and_correlates():
    rr = {"a": (0.5, 0.9), "b": (0.3, 0.8), "c": (0.7, 0.95), "d": (0.6, 0.7)}
    dm = {"a": (0.6, 0.91), "b": (0.45, 0.85), "c": (0.72, 0.96), "d": (0.5, 0.8)}
    summaries = {
        d: _summary(
            [("random_real", "1", rr[d][0], ""), ("random_real", "10", rr[d][1], "")]
            + [("dm", "1", dm[d][0], "real"), ("dm", "10", dm[d][1], "real"), ("full_real", "all", 0.99, "")]
        )
        for d in rr
    }
    table = gather(summaries)
    assert len(table) == 8 and set(table["method"]) == {"dm"} and set(table["init"]) == {"real"}
    row = table[(table["dataset"] == "b") & (table["ipc"] == 10)].iloc[0]
    assert row["random_real_acc"] == 0.8 and row["acc"] == 0.85
    corr = correlations(table).iloc[0]
    x = np.array([rr[d][k] for d in sorted(rr) for k in (0, 1)])
    y = np.array([dm[d][k] for d in sorted(rr) for k in (0, 1)])
    assert corr["n_points"] == 8
    assert corr["pearson"] == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert corr["spearman"] == pytest.approx(np.corrcoef(rankdata(x), rankdata(y))[0, 1])
    text = markdown(table, correlations(table))
    assert "| b | 10 | convnet | 80.0 | 85.0 |" in text and f"{corr['pearson']:.2f}" in text


def test_too_few_points_give_no_correlation_and_missing_random_real_is_an_error():
    one = {"a": _summary([("random_real", "1", 0.5, ""), ("dc", "1", 0.6, "noise")])}
    assert np.isnan(correlations(gather(one)).iloc[0]["pearson"])
    with pytest.raises(HistodistillError, match="feasibility: the a summary has no random_real rows"):
        gather({"a": _summary([("dc", "1", 0.6, "noise")])})


MEDMNIST_EIGHT = (
    "pathmnist",
    "dermamnist",
    "octmnist",
    "pneumoniamnist",
    "breastmnist",
    "bloodmnist",
    "tissuemnist",
    "organamnist",
)


def test_feasibility_config_dry_runs_with_all_eight_medmnist_flags_given_fixture_files(tmp_path):
    data = tmp_path / "data"
    for i, flag in enumerate(MEDMNIST_EIGHT):
        write_medmnist_fixture(data, flag, 28, rgb=flag in ("pathmnist", "dermamnist", "bloodmnist"), seed=i)
    datasets = [{"name": f, "size": 28} for f in MEDMNIST_EIGHT]
    config = write_config(
        tmp_path,
        feasibility={"datasets": datasets},
        dataset={"data_dir": str(data)},
        select={"methods": ["random_real", "dm", "dc", "dsa", "mtt"]},
    )
    jobs = planned_jobs(config, "-s", "workflows/feasibility.smk")
    for flag in MEDMNIST_EIGHT:
        for rule in ("data", "summarise", "distill_dm", "distill_mtt", "select_random_real"):
            assert f"{flag}_28_{rule}" in jobs, (flag, rule)
        assert jobs[f"{flag}_28_train_expert"] == 2 and jobs[f"{flag}_28_distill_gradient_matching"] == 2
    assert jobs["feasibility_table"] == 1
    # a listed dataset without its file: one clear error naming the file, before anything runs
    (tmp_path / "more").mkdir()
    more = datasets + [{"name": "retinamnist", "size": 28}]
    missing = write_config(tmp_path / "more", feasibility={"datasets": more}, dataset={"data_dir": str(data)})
    proc = snakemake(missing, "-s", "workflows/feasibility.smk", "--dry-run")
    assert proc.returncode != 0 and str(data / "retinamnist.npz") in proc.stdout + proc.stderr


def test_feasibility_runs_end_to_end_on_the_two_embedded_datasets(tmp_path):
    config = write_config(
        tmp_path,
        feasibility={"datasets": [{"name": "digits", "size": 8}, {"name": "mnist5k", "size": 8}]},
        select={"methods": ["random_real", "dm"], "ipc": [1, 3]},
        evaluate={"seeds": [0]},  # one seed: the table and the scatter need points, not spread
    )
    settings = yaml.safe_load(config.read_text())
    settings.pop("ablation", None)  # no InfoDist variants: nothing needs the generator
    config.write_text(yaml.safe_dump(settings))
    assert "digits_8_train_autoencoder" not in planned_jobs(config, "-s", "workflows/feasibility.smk")
    snakemake(config, "-s", "workflows/feasibility.smk", check=True)
    out = tmp_path / "results" / "feasibility"
    table = pd.read_csv(out / "feasibility.csv", keep_default_na=False)
    assert set(table["dataset"]) == {"digits_8", "mnist5k_8"} and set(table["method"]) == {"dm"}
    assert sorted(table["ipc"].tolist()) == [1, 1, 3, 3] and table["acc"].between(0, 1).all()
    assert table["random_real_acc"].between(0, 1).all() and set(table["init"]) == {"noise"}
    corr = pd.read_csv(out / "correlations.csv")
    assert corr["n_points"].tolist() == [4]
    assert "Pearson r" in (out / "feasibility.md").read_text()
    assert (out / "feasibility.png").stat().st_size > 1000
    for ds in ("digits_8", "mnist5k_8"):
        assert (tmp_path / "results" / ds / "tables" / "summary.csv").exists()
