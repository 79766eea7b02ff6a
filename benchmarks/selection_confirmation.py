"""The pre-registered confirmation of a frozen `infodist_plus` variant against k-means and random synthetic (issue 32).

    .venv/bin/python benchmarks/selection_confirmation.py --plan benchmarks/selection_confirmation.yaml \
        [--dataset digits] [--work results_c32] [--analyse-only]

The plan (a YAML file committed before anything runs) fixes the frozen variant, the margins, the evaluation seeds and,
per dataset, the generators (`generator.seed`) and their pools (`pool.base_seed`, never used before). For each
generator the script makes one run folder (the default config with that generator seed: the autoencoder, denoiser and
embedder are trained there; a generator already trained by a finished run can be named with `trained:`), and for
each pool a copy of it in which only the pool and what follows it are made again (`sample_pool_shard` forced). Each
pool's variants are evaluated by `selection_levers.py` (paired seeds: the same initial networks for every variant)
into `{work}/{dataset}/pool_{seed}.csv`; a pool whose CSV is complete is not run again, so a stopped run resumes.

The analysis (`confirmation_table`) takes, per dataset, IPC and split, each pool's mean paired difference of the
frozen variant to k-means and to random synthetic (mean over its seeds), and a 95 % t-interval over the pools (the
pool is the unit of replication). A cell meets its margin when the interval's lower end lies above it. Writes
`--report` (default benchmarks/selection_confirmation_results.{csv,md}; every pool's own differences included).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import stats

REPO = Path(__file__).resolve().parents[1]
BASELINES = ("kmeans", "random_synthetic")
# what a pool's copy keeps of its generator's run folder: the data split, the trained generator and embedder
KEEP_FROM_GENERATOR = ("data", "generator", "embedder")


def pool_differences(rows: pd.DataFrame, variant: str) -> pd.DataFrame:
    """Per pool, IPC and baseline: the variant's mean paired difference (points) on val and test, paired by seed."""
    out = []
    for (pool, ipc), grp in rows.groupby(["pool", "ipc"], sort=False):
        by = grp.set_index(["variant", "seed"])
        for base in BASELINES:
            mine, theirs = (set(grp.loc[grp["variant"] == v, "seed"]) for v in (variant, base))
            seeds = sorted(mine & theirs)
            if not seeds:
                continue
            record = {"pool": pool, "ipc": int(ipc), "baseline": base, "seeds": len(seeds)}
            for col in ("val_acc", "acc"):
                mine = by.loc[[(variant, s) for s in seeds], col].to_numpy()
                theirs = by.loc[[(base, s) for s in seeds], col].to_numpy()
                record[col] = 100.0 * float(np.mean(mine - theirs))
            out.append(record)
    return pd.DataFrame(out)


def confirmation_table(diffs: pd.DataFrame, margins: dict[str, dict[int, float]]) -> pd.DataFrame:
    """One row per IPC, baseline and split: mean over pools, 95 % t-interval over pools, the margin and whether the
    interval's lower end lies above it. `margins[baseline][ipc]`."""
    out = []
    for (ipc, base), grp in diffs.groupby(["ipc", "baseline"]):
        for col, split in (("val_acc", "val"), ("acc", "test")):
            d = grp[col].to_numpy(dtype=np.float64)
            mean = float(d.mean())
            if len(d) > 1 and d.std(ddof=1) > 0:
                ci = stats.ttest_1samp(d, 0.0).confidence_interval(0.95)
                low, high = float(ci.low), float(ci.high)
            else:
                low = high = mean
            margin = float(margins[base][int(ipc)])
            out.append(
                {
                    "ipc": int(ipc),
                    "baseline": base,
                    "split": split,
                    "pools": len(d),
                    "mean": mean,
                    "low": low,
                    "high": high,
                    "margin": margin,
                    "meets": bool(low > margin),
                }
            )
    return pd.DataFrame(out)


def run(cmd: list[str], log: Path) -> None:
    print("+", " ".join(cmd), flush=True)
    with open(log, "a") as fh:
        if subprocess.run(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT).returncode != 0:
            raise SystemExit(f"failed: {' '.join(cmd)} (log: {log})")


def make_pool(name: str, ds: dict, gen_seed: int, pool_seed: int, work: Path) -> Path:
    """The run folder of one pool, its pool, embeddings and privacy filter made; returns its dataset folder."""
    snakemake = str(REPO / ".venv" / "bin" / "snakemake")
    configs = [str(REPO / c) for c in ds["configs"]]
    folder = work / name / f"g{gen_seed}_p{pool_seed}"
    dataset_dir = folder / ds["dataset_dir"]
    if (dataset_dir / "pool" / "privacy_filter.npz").exists() and (dataset_dir / "embeddings" / "convnet.npy").exists():
        return dataset_dir
    trained = ds.get("trained", {}).get(gen_seed)
    source = REPO / trained if trained else work / name / f"g{gen_seed}_trained" / ds["dataset_dir"]
    log = work / name / f"g{gen_seed}_p{pool_seed}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    if not (source / "embedder").exists():  # train this generator (and the run's embedder) once
        override = work / name / f"g{gen_seed}_trained.yaml"
        override.write_text(yaml.safe_dump({"results": str(source.parent), "generator": {"seed": gen_seed}}))
        targets = [str(source / "generator" / "denoiser.pt"), str(source / "embedder" / "convnet.pt")]
        run([snakemake, *targets, "--cores", "2", "--configfile", *configs, str(override)], log)
    for sub in KEEP_FROM_GENERATOR:
        if not (dataset_dir / sub).exists():
            shutil.copytree(source / sub, dataset_dir / sub, copy_function=shutil.copy2)  # mtimes kept
    override = folder / "override.yaml"
    override.write_text(
        yaml.safe_dump({"results": str(folder), "generator": {"seed": gen_seed}, "pool": {"base_seed": pool_seed}})
    )
    targets = [str(dataset_dir / "pool" / "privacy_filter.npz"), str(dataset_dir / "embeddings" / "convnet.npy")]
    run(
        [
            snakemake,
            *targets,
            "--cores",
            "2",
            "--rerun-triggers",
            "mtime",
            "--forcerun",
            "sample_pool_shard",
            "--configfile",
            *configs,
            str(override),
        ],
        log,
    )
    return dataset_dir


def evaluate_pool(plan: dict, dataset_dir: Path, out: Path) -> pd.DataFrame:
    """The plan's variants on this pool (selection_levers.py), unless its CSV is already complete."""
    variants = [plan["variant"], *BASELINES]
    expected = len(variants) * len(plan["ipc"]) * len(plan["seeds"])
    if out.exists() and len(pd.read_csv(out)) == expected:
        return pd.read_csv(out)
    cmd = [
        str(REPO / ".venv" / "bin" / "python"),
        str(REPO / "benchmarks" / "selection_levers.py"),
        "--results",
        str(dataset_dir),
        "--config",
        str(REPO / "config.yaml"),
        "--seeds",
        *map(str, plan["seeds"]),
        "--ipc",
        *map(str, plan["ipc"]),
        "--variants",
        *variants,
        "--out",
        str(out.with_suffix("")),
        "--threads",
        "1",
    ]
    run(cmd, out.with_suffix(".log"))
    return pd.read_csv(out)


def markdown(name: str, table: pd.DataFrame, diffs: pd.DataFrame, variant: str) -> str:
    lines = [f"## {name}: {variant} − baseline (points; 95 % t-interval over pools)", ""]
    lines += ["| IPC | baseline | split | pools | mean | 95 % interval | margin | meets |", "|---" * 8 + "|"]
    for _, r in table.iterrows():
        lines.append(
            f"| {r.ipc} | {r.baseline} | {r.split} | {r.pools} | {r['mean']:+.2f} | [{r.low:+.2f}, {r.high:+.2f}] "
            f"| > {r.margin:+.1f} | {'yes' if r.meets else '**no**'} |"
        )
    lines += ["", "Every pool (test / val):", "", "| pool | IPC | − k-means | − random synthetic |", "|---" * 4 + "|"]
    for (pool, ipc), grp in diffs.groupby(["pool", "ipc"], sort=False):
        cell = {r.baseline: f"{r.acc:+.1f} / {r.val_acc:+.1f}" for r in grp.itertuples()}
        name = Path(pool).parent.name
        lines.append(f"| {name} | {ipc} | {cell.get('kmeans', '–')} | {cell.get('random_synthetic', '–')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plan", type=Path, default=REPO / "benchmarks" / "selection_confirmation.yaml")
    ap.add_argument("--dataset", nargs="+", default=None, help="only these datasets of the plan")
    ap.add_argument("--work", type=Path, default=REPO / "results_c32")
    ap.add_argument("--analyse-only", action="store_true", help="tables from the pools finished so far")
    ap.add_argument("--report", type=Path, default=REPO / "benchmarks" / "selection_confirmation_results")
    args = ap.parse_args()
    plan = yaml.safe_load(args.plan.read_text())
    work = args.work.resolve()
    tables, text = [], [f"Plan: {args.plan.name}; frozen variant {plan['variant']}; seeds {plan['seeds']}", ""]
    for name, ds in plan["datasets"].items():
        if args.dataset and name not in args.dataset:
            continue
        frames = []
        for gen_seed, pools in ds["generators"].items():
            for pool_seed in pools:
                out = work / name / f"pool_g{gen_seed}_p{pool_seed}.csv"
                if args.analyse_only:
                    if out.exists():
                        frames.append(pd.read_csv(out))
                    continue
                dataset_dir = make_pool(name, ds, int(gen_seed), int(pool_seed), work)
                frames.append(evaluate_pool(plan, dataset_dir, out))
                print(f"{name}: generator {gen_seed}, pool {pool_seed} done", flush=True)
        if not frames:
            continue
        rows = pd.concat(frames, ignore_index=True)
        diffs = pool_differences(rows, plan["variant"])
        margins = {b: {int(k): float(v) for k, v in plan["margins"][name][b].items()} for b in BASELINES}
        table = confirmation_table(diffs, margins).assign(dataset=name)
        tables.append(table)
        text.append(markdown(name, table, diffs, plan["variant"]))
    if tables:
        pd.concat(tables).to_csv(f"{args.report}.csv", index=False, float_format="%.4f")
        Path(f"{args.report}.md").write_text("\n".join(text))
        print("\n".join(text))


if __name__ == "__main__":
    sys.exit(main())
