"""The smoke workflow on a real one-node SLURM cluster, through snakemake-executor-plugin-slurm (`make test-slurm`).

Needs root (it installs Debian's slurm-wlm and munge with apt if they are missing, and makes device nodes). Steps:
1. write a one-node slurm.conf for this machine (its real CPU count and memory, from `slurmd -C`), with two fake
   GPUs as generic resources (gres.conf names two character devices made with mknod; the machine needs no GPU);
   partitions `cpu` and `gpu`, as profiles/slurm expects;
2. start munged, slurmctld and slurmd in the foreground as children of this process and record their pids;
3. run the smoke workflow locally (`--cores N`) and through SLURM (`--profile profiles/slurm --workflow-profile
   tests/cluster/profile`), sampling `squeue` while it runs;
4. check: every job ran as a SLURM job (its rule log records $SLURM_JOB_ID, squeue knows that job as COMPLETED,
   the plugin kept a per-job SLURM log); every GPU rule asked SLURM for a GPU (`gres:gpu:1` in squeue's TRES) and
   got one ($SLURM_STEP_GPUS and CUDA_VISIBLE_DEVICES set in its log), no CPU rule did; the subsets and pool shards
   are byte-identical to the local run's;
5. stop exactly the daemons it started, by pid (also when a step fails).

Prints a report (also written to --report); exits 0 only if every check holds.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from conftest import planned_jobs, write_config  # noqa: E402

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
N_FAKE_GPUS = 2


def declared_rules() -> tuple[set[str], set[str]]:
    """(GPU rules, CPU rules) as rules/*.smk declare them: a GPU rule has the resource gpu=1 (read from the rule
    files, so that a rule added later is checked too)."""
    gpu, cpu = set(), set()
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=rule )", smk.read_text()):
            name = re.search(r"^rule (\w+):", block, re.M)
            if name:
                (gpu if re.search(r"resources:\s*\n\s*gpu=1", block) else cpu).add(name.group(1))
    return gpu, cpu


GPU_RULES, CPU_RULES = declared_rules()
JOB_LINE = re.compile(r"SLURM job (\d+) on (\S+), GPUs (\S+) \(CUDA_VISIBLE_DEVICES (\S+)\)")


class Report:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.failures: list[str] = []

    def say(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)

    def check(self, ok: bool, what: str) -> None:
        self.say(f"[{'PASS' if ok else 'FAIL'}] {what}")
        if not ok:
            self.failures.append(what)


# ------------------------------------------------------------------------------------------- cluster set-up


def ensure_packages() -> None:
    if all(shutil.which(b) for b in ("slurmctld", "slurmd", "munged", "sbatch", "squeue")):
        return
    if os.geteuid() != 0:
        sys.exit("tests/cluster: slurm-wlm and munge are missing and installing them needs root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "-y", "-q", "slurm-wlm", "munge"], check=True, env=env)


def node_hardware() -> dict[str, str]:
    """`slurmd -C`: this machine's NodeName, CPUs, sockets, cores, threads and RealMemory as SLURM sees them."""
    first = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    return dict(item.split("=", 1) for item in first.split())


def write_cluster(root: Path, hw: dict[str, str]) -> Path:
    """munge key, fake GPU devices, slurm.conf and gres.conf under `root`; returns the slurm.conf path."""
    for d in ("etc", "dev", "state", "spool", "log", "munge"):
        (root / d).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "munge", 0o700)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    os.chmod(key, 0o600)
    for i in range(N_FAKE_GPUS):  # character devices with the NVIDIA major number; nothing ever opens them
        dev = root / "dev" / f"nvidia{i}"
        if not dev.exists():
            os.mknod(dev, 0o666 | 0o020000, os.makedev(195, i))
    node = hw["NodeName"]
    hardware = " ".join(f"{k}={hw[k]}" for k in hw if k not in ("NodeName", "UpTime"))
    (root / "etc" / "slurm.conf").write_text(f"""ClusterName=histodistill
SlurmctldHost={node}
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket={root}/munge/munge.socket
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
MpiDefault=none
ReturnToService=2
MinJobAge=7200
SchedulerType=sched/backfill
NodeName={node} NodeAddr=127.0.0.1 {hardware} Gres=gpu:{N_FAKE_GPUS} State=UNKNOWN
PartitionName=cpu Nodes={node} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes={node} MaxTime=INFINITE State=UP
""")
    (root / "etc" / "gres.conf").write_text(f"NodeName={node} Name=gpu File={root}/dev/nvidia[0-{N_FAKE_GPUS - 1}]\n")
    return root / "etc" / "slurm.conf"


def link_system_config(conf: Path) -> Path:
    """Point /etc/slurm/slurm.conf at the test cluster's config for the run. The plugin's job step drops SLURM_CONF
    from the job's environment, so `srun` inside a job finds its config only at the compiled-in path. Refuses to
    touch a machine that has a SLURM configuration of its own; a dangling link left by an earlier run is replaced."""
    system = Path("/etc/slurm/slurm.conf")
    if system.is_symlink() and not system.exists():
        system.unlink()
    if system.exists() or system.is_symlink():
        sys.exit(f"tests/cluster: {system} exists; this machine has a SLURM configuration, the harness leaves it alone")
    system.parent.mkdir(parents=True, exist_ok=True)
    system.symlink_to(conf)
    return system


def start_daemons(root: Path, conf: Path, report: Report) -> list[tuple[str, subprocess.Popen]]:
    """munged, slurmctld, slurmd in the foreground, children of this process (so their pids are known)."""
    env = {**os.environ, "SLURM_CONF": str(conf)}
    started: list[tuple[str, subprocess.Popen]] = []
    commands = [
        (
            "munged",
            [
                "munged",
                "--foreground",
                "--force",
                f"--socket={root}/munge/munge.socket",
                f"--key-file={root}/munge/munge.key",
                f"--pid-file={root}/munge/munged.pid",
                f"--log-file={root}/log/munged.log",
                f"--seed-file={root}/munge/munged.seed",
            ],
            lambda: (root / "munge" / "munge.socket").exists(),
        ),
        ("slurmctld", ["slurmctld", "-D", "-f", str(conf)], lambda: cmd_ok(["scontrol", "ping"], env)),
        ("slurmd", ["slurmd", "-D", "-f", str(conf)], lambda: node_state(env) in ("idle", "mix", "alloc")),
    ]
    try:
        for name, cmd, ready in commands:
            log = open(root / "log" / f"{name}.stdout", "w")
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
            started.append((name, proc))
            report.say(f"started {name} pid {proc.pid}: {' '.join(cmd)}")
            deadline = time.monotonic() + 60
            while not ready():
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = (root / "log" / f"{name}.stdout").read_text()[-2000:]
                    raise RuntimeError(f"{name} did not come up (exit {proc.poll()}):\n{tail}")
                time.sleep(0.5)
    except BaseException:
        stop_daemons(started, report)
        raise
    return started


def stop_daemons(started: list[tuple[str, subprocess.Popen]], report: Report) -> None:
    """SIGTERM each daemon this harness started, by its pid, newest first; SIGKILL that pid if it lingers."""
    for name, proc in reversed(started):
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        report.say(f"stopped {name} pid {proc.pid} (exit {proc.returncode})")


def cmd_ok(cmd: list[str], env: dict[str, str]) -> bool:
    return subprocess.run(cmd, capture_output=True, env=env).returncode == 0


def node_state(env: dict[str, str]) -> str:
    out = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], capture_output=True, text=True, env=env).stdout
    return out.split()[0].rstrip("*") if out.split() else ""


# ------------------------------------------------------------------------------------------- workflow runs


def fitted_resources(profile: dict, cpus: int, mem_mb: int) -> list[str]:
    """profiles/slurm's resources with mem_mb capped so that `cpus` jobs fit this node's memory at once; the
    partitions and run times stay as the profile has them."""
    cap = mem_mb // max(1, cpus)

    def fit(resources: dict) -> dict:
        return {k: (min(int(v), cap) if k == "mem_mb" else v) for k, v in resources.items()}

    default = [f"{k}={v}" for k, v in fit(profile["default-resources"]).items()]
    per_rule = [f"{rule}:{k}={v}" for rule, res in profile["set-resources"].items() for k, v in fit(res).items()]
    return ["--default-resources", *default, "--set-resources", *per_rule]


def run_workflow(args: list[str], env: dict[str, str], log: Path, poll=None) -> int:
    with open(log, "w") as fh:
        proc = subprocess.Popen([SNAKEMAKE, *args], cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, env=env)
        while proc.poll() is None:
            if poll:
                poll()
            time.sleep(2)
    return proc.returncode


SQUEUE_FIELDS = ["JobID", "ArrayJobID", "ArrayTaskID", "State", "tres-per-job", "tres-alloc", "Partition", "Comment"]


def squeue_all(env: dict[str, str]) -> list[dict[str, str]]:
    """Every job slurmctld still knows (MinJobAge keeps finished ones): id, state, TRES asked, comment (rule)."""
    out = subprocess.run(
        ["squeue", "--states=all", "-h", "-O", ",".join(f"{f}:|" for f in SQUEUE_FIELDS)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    return parse_squeue(out)


def parse_squeue(out: str) -> list[dict[str, str]]:
    keys = ["job", "array", "task", "state", "tres", "alloc", "partition", "comment"]
    return [dict(zip(keys, (c.strip() for c in line.split("|")))) for line in out.splitlines() if line.strip()]


def rule_of_comment(comment: str) -> str:
    """The plugin comments each job `rule_{rule}` or `rule_{rule}_wildcards_{wildcards}`."""
    return comment.removeprefix("rule_").split("_wildcards_")[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", help="folder for the cluster and both runs (default: a new temporary one)")
    parser.add_argument("--report", default=None, help="also write the report to this file")
    parser.add_argument("--keep", action="store_true", help="keep the work folder afterwards")
    parser.add_argument(
        "--local-run",
        help="folder of an earlier local smoke run of this harness (its `local/`) to compare with, instead of a new one",
    )
    opts = parser.parse_args()

    report = Report()
    ensure_packages()
    root = Path(opts.workdir or tempfile.mkdtemp(prefix="histodistill-slurm-")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    hw = node_hardware()
    cpus, mem_mb = int(hw["CPUs"]), int(hw["RealMemory"])
    conf = write_cluster(root / "cluster", hw)
    report.say(f"# one-node SLURM cluster in {root}/cluster; node {hw['NodeName']}: {cpus} CPUs, {mem_mb} MB")
    report.say("## slurm.conf (node and partitions) and gres.conf")
    for line in conf.read_text().splitlines():
        if line.startswith(("NodeName", "PartitionName", "GresTypes", "SelectType")):
            report.say("    " + line)
    report.say("    " + (conf.parent / "gres.conf").read_text().strip())
    env = {**os.environ, "SLURM_CONF": str(conf), "PYTHONWARNINGS": "ignore"}
    system_conf = link_system_config(conf)
    report.say(f"{system_conf} -> {conf} for the run (srun inside a job reads only that path)")
    try:
        daemons = start_daemons(root / "cluster", conf, report)
    except BaseException:
        system_conf.unlink()
        raise
    try:
        check_cluster_run(root, env, cpus, mem_mb, report, opts.local_run)
    except Exception as exc:  # still stop the daemons and write the report
        report.check(False, f"harness error: {exc!r}")
    finally:
        stop_daemons(daemons, report)
        system_conf.unlink()
        left = [f"{n} {p.pid}" for n, p in daemons if Path(f"/proc/{p.pid}").exists() and p.poll() is None]
        report.check(not left, f"every daemon this harness started is gone ({', '.join(left) or 'none left'})")
    report.say()
    report.say(f"RESULT: {'all checks hold' if not report.failures else f'{len(report.failures)} check(s) failed'}")
    if opts.report:
        Path(opts.report).write_text("\n".join(report.lines) + "\n")
    if not opts.keep and not report.failures:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if report.failures else 0


def check_cluster_run(
    root: Path, env: dict[str, str], cpus: int, mem_mb: int, report: Report, local_run: str | None
) -> None:
    sinfo = subprocess.run(["sinfo", "-N", "-o", "%N %P %c %m %G %t"], capture_output=True, text=True, env=env)
    report.say("## sinfo")
    report.say("    " + sinfo.stdout.strip().replace("\n", "\n    "))

    (root / "local").mkdir(exist_ok=True)
    (root / "slurm").mkdir(exist_ok=True)
    local_cfg = write_config(root / "local")
    slurm_cfg = write_config(root / "slurm")
    expected = planned_jobs(slurm_cfg)
    n_expected = sum(n for rule, n in expected.items() if rule != "all")
    report.say(f"## the smoke DAG: {n_expected} jobs (+ the local target rule `all`)")

    if local_run:
        local_ds = Path(local_run).resolve() / "results" / "digits_8"
        report.say(f"## the local run to compare with: {local_ds} (made earlier with --cores {cpus})")
    else:
        t0 = time.monotonic()
        rc = run_workflow(["--configfile", str(local_cfg), "--cores", str(cpus)], env, root / "local.log")
        report.check(rc == 0, f"local smoke run (--cores {cpus}) finished, {time.monotonic() - t0:.0f} s")
        local_ds = root / "local" / "results" / "digits_8"

    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    slurm_logdir = root / "slurm_logs"
    args = [
        "--configfile",
        str(slurm_cfg),
        "--profile",
        "profiles/slurm",
        "--workflow-profile",
        "tests/cluster/profile",
        "--slurm-logdir",
        str(slurm_logdir),
        "--max-threads",
        str(cpus),
        *fitted_resources(profile, cpus, mem_mb),
    ]
    report.say("## snakemake " + " ".join(args))
    snapshots: list[str] = []  # every distinct squeue listing seen while the workflow ran

    def poll() -> None:
        out = subprocess.run(
            ["squeue", "-h", "-O", "JobID:8,State:10,Partition:6,tres-per-job:14,tres-alloc:45,Comment:60"],
            capture_output=True,
            text=True,
            env=env,
        ).stdout.rstrip()
        if out and (not snapshots or out != snapshots[-1]):
            snapshots.append(out)

    t0 = time.monotonic()
    rc = run_workflow(args, env, root / "slurm.log", poll)
    elapsed = time.monotonic() - t0
    report.check(rc == 0, f"SLURM smoke run finished, {elapsed:.0f} s")
    if rc != 0:
        report.say((root / "slurm.log").read_text()[-6000:])
        return
    busy = [snap for snap in snapshots if snap.count(" RUNNING ") >= 2]
    shown = [snapshots[0], *busy[:: max(1, len(busy) // 6)][:6]] if snapshots else []
    report.say(f"## squeue while running: {len(snapshots)} distinct listings, {len(busy)} with 2+ jobs RUNNING; some:")
    report.say("    JOBID   STATE     PART  TRES_PER_JOB  TRES_ALLOC                                   COMMENT")
    for snap in shown:
        report.say("    " + snap.replace("\n", "\n    "))
        report.say("    --")
    most = max((snap.count(" RUNNING ") for snap in snapshots), default=0)
    report.say(f"most jobs RUNNING at once: {most}")
    cluster_logs = root / "cluster" / "log"
    launched = re.findall(r"Launching batch job (\d+)", (cluster_logs / "slurmd.log").read_text())
    allocated = re.findall(
        r"Allocate (JobId=\d+ NodeList=\S+ #CPUs=\d+ Partition=\w+)", (cluster_logs / "slurmctld.log").read_text()
    )
    report.say(f"## slurmd.log: {len(launched)} batch jobs launched; slurmctld.log: {len(allocated)} allocations, e.g.")
    for line in allocated[:2] + allocated[len(allocated) // 2 : len(allocated) // 2 + 2] + allocated[-2:]:
        report.say("    " + line)

    jobs = squeue_all(env)
    check_jobs(root, root / "slurm" / "results" / "digits_8", local_ds, slurm_logdir, jobs, n_expected, report)
    gpu_ids = [j["job"] for j in jobs if "gpu" in j["tres"]]
    if gpu_ids:
        detail = subprocess.run(["scontrol", "show", "job", "-d", gpu_ids[0]], capture_output=True, text=True, env=env)
        report.say(f"    scontrol show job -d {gpu_ids[0]}:")
        for line in detail.stdout.splitlines():
            if any(k in line for k in ("JobId=", "JobState=", "TRES=", "GRES", "Partition=")):
                report.say("        " + line.strip())


def check_jobs(
    root: Path,
    ds: Path,
    local_ds: Path,
    slurm_logdir: Path,
    jobs: list[dict[str, str]],
    n_expected: int,
    report: Report,
) -> None:
    """The checks on a finished SLURM run: its rule logs, the plugin's logs, squeue's job list, the outputs."""
    by_id = {j["job"]: j for j in jobs}
    report.say(
        f"## squeue --states=all after the run: {len(jobs)} jobs; states {dict(Counter(j['state'] for j in jobs))}"
    )
    report.say(f"    TRES asked: {dict(Counter(j['tres'] for j in jobs))}")
    report.say(f"    partitions: {dict(Counter(j['partition'] for j in jobs))}")
    records: dict[str, tuple[str, str, str, str]] = {}
    for log in sorted((ds / "logs").glob("*.log")):
        found = JOB_LINE.findall(log.read_text())
        if found:
            records[log.name] = found[-1]
    logs = sorted(p.name for p in (ds / "logs").glob("*.log"))
    report.check(
        len(logs) == n_expected and len(records) == len(logs),
        f"every job's rule log records its $SLURM_JOB_ID ({len(records)} of {len(logs)} logs; {n_expected} jobs)",
    )
    ids = [r[0] for r in records.values()]
    report.check(len(set(ids)) == len(ids), f"{len(set(ids))} distinct SLURM job ids, one per job")
    report.check(
        all(by_id.get(i, {}).get("state") == "COMPLETED" for i in ids),
        "squeue knows every one of these jobs, COMPLETED "
        f"({sum(by_id.get(i, {}).get('state') == 'COMPLETED' for i in ids)} of {len(ids)})",
    )
    rule_of = {i: rule_of_comment(by_id.get(i, {}).get("comment", "")) for i in ids}
    unknown = sorted({r for r in rule_of.values() if r not in GPU_RULES | CPU_RULES})
    report.check(not unknown, f"every job belongs to a rule of the workflow (unknown: {unknown})")
    report.say(f"    jobs per rule: {dict(sorted(Counter(rule_of.values()).items()))}")
    plugin_logs = {p.stem: p for p in slurm_logdir.rglob("*.log")}  # rule_{rule}/{wildcards}/{jobid}.log
    matched = [i for i in ids if i in plugin_logs and f"rule_{rule_of[i]}" in plugin_logs[i].parts]
    example_log = plugin_logs[ids[0]].relative_to(root) if ids and ids[0] in plugin_logs else "-"
    report.check(
        len(matched) == len(ids),
        f"the plugin kept a per-job SLURM log for every job, under its rule ({len(matched)} of {len(ids)}; "
        f"e.g. {example_log})",
    )
    gpu_jobs = {n: r for n, r in records.items() if rule_of[r[0]] in GPU_RULES}
    cpu_jobs = {n: r for n, r in records.items() if rule_of[r[0]] in CPU_RULES}
    asked = [by_id[r[0]]["tres"] for r in gpu_jobs.values()]
    report.check(
        bool(gpu_jobs) and all("gpu:1" in t for t in asked),
        f"every GPU-rule job asked SLURM for one GPU ({sum('gpu:1' in t for t in asked)} of {len(gpu_jobs)}: "
        f"{dict(Counter(asked))})",
    )
    got = [r for r in gpu_jobs.values() if r[2] != "none" and r[3] != "unset"]
    report.check(
        len(got) == len(gpu_jobs),
        f"every GPU-rule job got a GPU ($SLURM_STEP_GPUS / CUDA_VISIBLE_DEVICES set in {len(got)} of "
        f"{len(gpu_jobs)}; devices used {dict(Counter(r[2] for r in gpu_jobs.values()))})",
    )
    report.check(
        all(r[2] == "none" and r[3] == "unset" and "gpu" not in by_id[r[0]]["tres"] for r in cpu_jobs.values()),
        f"no CPU-rule job asked for or got a GPU ({len(cpu_jobs)} jobs)",
    )
    for name in sorted(gpu_jobs)[:1] + sorted(cpu_jobs)[:1]:
        report.say(f"    e.g. logs/{name}: SLURM job {gpu_jobs.get(name, cpu_jobs.get(name))}")

    compared = sorted(p.relative_to(local_ds) for p in (local_ds / "subsets").glob("*.npz"))
    compared += sorted(p.relative_to(local_ds) for p in (local_ds / "pool").glob("shard_*.npz"))
    differ = [str(p) for p in compared if not (ds / p).exists() or (ds / p).read_bytes() != (local_ds / p).read_bytes()]
    smoke = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())  # every shared set and every shard
    shared = [m for m in smoke["select"]["methods"] if m != "full_real"]
    expected = len(shared) * len(smoke["select"]["ipc"]) + smoke["pool"]["shards"]
    report.check(
        len(compared) == expected and not differ,
        f"{len(compared)} outputs (subsets/*.npz, pool/shard_*.npz; {expected} expected) byte-identical to the local run "
        f"(differ: {differ})",
    )
    for name in ("tables/summary.csv", "tables/privacy.csv", "embeddings/convnet.npy"):
        same = (ds / name).exists() and (ds / name).read_bytes() == (local_ds / name).read_bytes()
        report.say(f"    {name}: {'identical' if same else 'differs'} (reported, not asserted)")


if __name__ == "__main__":
    sys.exit(main())
