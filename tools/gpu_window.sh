#!/usr/bin/env bash
# A whole GPU window in one command, run ON the lent GPU machine from the repository root
# (the device tool's `run`, carry = gpu-carry; OUT is set by the tool):
#
#   bash tools/gpu_window.sh CONFIG MINUTES [codec train options, e.g. --init WEIGHTS]
#
# 1. tools/gpu_train.sh with FIT=1: wheels, build, a 300-step probe, then training for the
#    steps that fill MINUTES; last.pt, log.csv and the newest snapshot go to $OUT;
# 2. the CUDA coder: built by step 1 if the machine has nvcc, else the one carried in
#    gpu-carry/cuda-cp312 (tools/build_cuda_carry.sh) is copied in;
# 3. tools/gpu_check.py (GPU tests, CUDA coder bytes and speed, cross-device files,
#    throughput, effort), results in $OUT/check.
# Prepare here: ../shared/gpu-kit/prepare.sh gpu-carry && tools/build_cuda_carry.sh
# (docs/training.md, "GPU windows"). Budget: MINUTES + about 4 minutes of device time.
set -uo pipefail
config=$1 minutes=$2
shift 2
: "${OUT:?set OUT to the folder that comes back}"
FIT=1 bash tools/gpu_train.sh "$config" runs/gpu "$minutes" "$@" 2>&1 | grep -v "step/s\|it/s\|img/s" | tail -12
python3 -c "import codec._cuda_rangecoder" 2>/dev/null || cp gpu-carry/cuda-cp312/codec/*.so codec/ 2>/dev/null || true
PYTHONPATH=/tmp/site:$PWD timeout 300 python3 tools/gpu_check.py --images gpu-carry/train --limit 2 --out "$OUT/check" 2>&1 | tail -30
