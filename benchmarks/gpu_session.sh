#!/usr/bin/env bash
# One device call for a session that is lent a GPU: README's two GPU benchmark commands ("Speed settings") and the
# smoke workflow on the GPU through profiles/gpu. Run from the repository root on the GPU machine, after installing
# the wheels of ../shared/tools/device-wheels.sh (see README, "Benchmarks"). Writes its log and the smoke run's
# benchmark files to $OUT (default /tmp/gpu_session). Each step has its own time limit, so one slow step cannot
# take the rest of the lease with it.
set -u
OUT=${OUT:-/tmp/gpu_session}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
step() { echo; echo "== $(date +%T) $*"; }
# The whole script ends within BUDGET_S seconds (default 520): each step gets its own limit or what is left.
deadline=$(($(date +%s) + ${BUDGET_S:-520}))
limit() { local left=$((deadline - $(date +%s))); echo $(($1 < left ? $1 : (left > 1 ? left : 1))); }

step machine
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
nproc

if [ -z "${SKIP_SAMPLING:-}" ]; then
step "sampling: paper DiT, batch 1024, 50 DDIM steps, bf16, compile off/on"
timeout $(limit 180) python3 benchmarks/sampling.py --only paper --batch 1024 --precision bf16 --compile off on
fi

step "evaluation: ConvNet d5 w128, 64 px, IPC ${EVAL_IPCS:-100 10}, 100 epochs, bf16: seed by seed: eager, compiled, compiled with CUDA graphs"
# 2 seeds (figures are per seed); stacked seeds (EVAL_BATCHED=on) were timed on 2026-11-26 and are left out by default
timeout $(limit 240) python3 benchmarks/eval_speed.py --nets convnet --sizes 64 --ipcs ${EVAL_IPCS:-100 10} --epochs 100 \
    --seeds "${EVAL_SEEDS:-2}" --precision bf16 --batch-seeds off ${EVAL_BATCHED:-} --compile off on cudagraphs

step "smoke workflow on the GPU (profiles/gpu, one device shared by ${SLOTS:=4} jobs)"
rm -rf results/smoke_gpu
start=$(date +%s)
HISTODISTILL_GPUS=$(printf '0%.0s,' $(seq "$SLOTS") | sed 's/,$//') \
timeout $(limit 240) snakemake --profile profiles/gpu --resources gpu="$SLOTS" --cores 16 --configfile configs/smoke.yaml \
    --config device=auto results=results/smoke_gpu >"$OUT/smoke.log" 2>&1
rc=$?
echo "smoke rc=$rc in $(($(date +%s) - start)) s"
if [ $rc -ne 0 ]; then tail -n 60 "$OUT/smoke.log"; else tail -n 5 "$OUT/smoke.log"; fi
find results/smoke_gpu \( -name '*.tsv' -o -name '*.csv' -o -name '*.json' -o -name '*.log' \) -print0 |
    tar --null -czf "$OUT/smoke_files.tgz" -T - 2>/dev/null
if [ -z "${SKIP_SAMPLING:-}" ]; then
step "sampling: paper DiT, fp32, uncompiled (one timed run)"
timeout $(limit 60) python3 benchmarks/sampling.py --only paper --batch 1024 --precision fp32 --compile off --repeats 1
step "sampling: default UNet, batch 1024, bf16, compiled"
timeout $(limit 60) python3 benchmarks/sampling.py --only default --batch 1024 --precision bf16 --compile on
fi
step done
