#!/usr/bin/env bash
# One device call for a session that is lent a GPU: pool sampling, the generator's training step at the paper
# preset's sizes, ConvNet and ResNet18 evaluation at IPC 1/10/100 and on the streamed full-real path, one audit's
# distance work, and the smoke workflow on the GPU through profiles/gpu (docs/speed.md, docs/paper_scale.md). Run from the repository root on the GPU machine, after installing
# the wheels of ../shared/tools/device-wheels.sh (see README, "Benchmarks"). Writes its log and the smoke run's
# benchmark files to $OUT (default /tmp/gpu_session). Each step has its own time limit, so one slow step cannot
# take the rest of the lease with it.
set -u
OUT=${OUT:-/tmp/gpu_session}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" BENCHMARK_RESULTS="$OUT/results"
step() { echo; echo "== $(date +%T) $*"; }
# The whole script ends within BUDGET_S seconds (default 480): each step gets its own limit or what is left.
deadline=$(($(date +%s) + ${BUDGET_S:-480}))
limit() { local left=$((deadline - $(date +%s))); echo $(($1 < left ? $1 : (left > 1 ? left : 1))); }

step machine
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
nproc

# ONLY_SMOKE=1 runs just the smoke workflow, SKIP_SMOKE=1 just the benchmarks (two calls fit a 15-minute lease better
# than one: each stays under the device tool's 10-minute limit with its start-up).
if [ -z "${ONLY_SMOKE:-}" ]; then
if [ -z "${SKIP_SAMPLING:-}" ]; then
step "sampling: paper DiT, batch 1024, 50 DDIM steps, bf16, compile off/on"
timeout $(limit 90) python3 benchmarks/sampling.py --only paper --batch 1024 --precision bf16 --compile off on
fi

step "evaluation, the GPU goal: ConvNet d5 w128, 64 px, IPC 100, 100 epochs, bf16, eager and compiled"
timeout $(limit 70) python3 benchmarks/eval_speed.py --nets convnet --sizes 64 --ipcs 100 --epochs 100 --seeds 1 \
    --precision bf16 --batch-seeds off --compile off on

step "generator training step at the paper preset's sizes (autoencoder batch 128, DiT batch 256), bf16, eager"
timeout $(limit 60) python3 benchmarks/generator_step.py --steps 10

step "evaluation at the paper preset's sizes: ConvNet d5 w128 and ResNet18, 64 px, IPC 1/10/100, bf16, eager"
timeout $(limit 60) python3 benchmarks/eval_speed.py --nets convnet resnet18 --sizes 64 --ipcs 1 10 100 --epochs 20 \
    --seeds 1 --precision bf16 --batch-seeds off --compile off
step "evaluation on the full real split (89,996 images, streamed from the host), ConvNet and ResNet18, one epoch"
timeout $(limit 40) python3 benchmarks/eval_speed.py --nets convnet resnet18 --sizes 64 --ipcs 10000 --epochs 1 \
    --seeds 1 --precision bf16 --batch-seeds off --compile off

step "one audit's distance work: 7,180 holdout rows against 20,000 candidates, 12,288 values, float64 tiles"
timeout $(limit 20) python3 -c "
import time, numpy as np, torch
from histodistill.privacy.audit import pairwise_d2
rng = np.random.default_rng(0)
a, b = (rng.integers(0, 256, (n, 12288), dtype=np.uint8) for n in (7180, 20000))
pairwise_d2(a[:64], b[:64], device='cuda'); torch.cuda.synchronize(); t = time.perf_counter()
pairwise_d2(a, b, device='cuda'); torch.cuda.synchronize(); s = time.perf_counter() - t
print(f'pairwise_d2 7180 x 20000 x 12288: {s:.2f} s, {2 * 7180 * 20000 * 12288 / s / 1e12:.1f} TFLOP/s float64')
"
fi

if [ -z "${SKIP_SMOKE:-}" ]; then
step "smoke workflow on the GPU (profiles/gpu, one device shared by ${SLOTS:=4} jobs)"
rm -rf results/smoke_gpu
start=$(date +%s)
HISTODISTILL_GPUS=$(printf '0%.0s,' $(seq "$SLOTS") | sed 's/,$//') \
timeout $(limit 200) snakemake --profile profiles/gpu --resources gpu="$SLOTS" --cores 16 --configfile configs/smoke.yaml \
    --config device=auto results=results/smoke_gpu >"$OUT/smoke.log" 2>&1
rc=$?
echo "smoke rc=$rc in $(($(date +%s) - start)) s"
if [ $rc -ne 0 ]; then tail -n 60 "$OUT/smoke.log"; else tail -n 5 "$OUT/smoke.log"; fi
find results/smoke_gpu \( -name '*.tsv' -o -name '*.csv' -o -name '*.json' -o -name '*.log' \) -print0 |
    tar --null -czf "$OUT/smoke_files.tgz" -T - 2>/dev/null
fi
if [ -z "${SKIP_SAMPLING:-}${ONLY_SMOKE:-}" ]; then
step "sampling: paper DiT, fp32, uncompiled (one timed run)"
timeout $(limit 60) python3 benchmarks/sampling.py --only paper --batch 1024 --precision fp32 --compile off --repeats 1
step "sampling: default UNet, batch 1024, bf16, compiled"
timeout $(limit 60) python3 benchmarks/sampling.py --only default --batch 1024 --precision bf16 --compile on
fi
step done
