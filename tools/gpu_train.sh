#!/usr/bin/env bash
# One GPU window of training, run ON the lent GPU machine from the repository root.
#
#   bash tools/gpu_train.sh CONFIG RUN_DIR MINUTES [extra `codec train` options...]
#
# It installs the carried wheels (compressai is absent there), builds our range coder,
# trains with `--resume` for MINUTES (stopping cleanly, checkpoint written) and copies the
# run's last.pt, log.csv and newest snapshot into $OUT, from where they come back.
# Prepare the carry folder here first (docs/training.md, "GPU window"):
#   ../shared/gpu-kit/prepare.sh gpu-carry && echo /gpu-carry/ >> .git/info/exclude
# Environment: CARRY (default gpu-carry), DEVICE (default cuda; cpu for a dry run), OUT,
# FIT=1: leave --steps out of the options; a probe of 300 steps measures this machine's step
# time first, and the run gets the number of steps that fills MINUTES, so that its learning
# rate anneals within the window (the probe's seconds count against the window).
set -euo pipefail
config=$1 run=$2 minutes=$3
shift 3
carry=${CARRY:-gpu-carry}
device=${DEVICE:-cuda}
out=${OUT:?set OUT to the folder that comes back}
if compgen -G "$carry/wheels/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$carry"/wheels/*.whl
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-}
python3 -c "import compressai, numpy, torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
# The range coder only serves validation: training goes on without it if it does not build.
python3 setup.py -q build_ext --inplace > /tmp/build_ext.log 2>&1 || echo "range coder not built (validation skipped): see /tmp/build_ext.log"
extra=()
[ "$device" = cuda ] && extra=(--amp --channels-last --workers 8)
start_time=$(date +%s)
if [ "${FIT:-0}" = 1 ]; then
  probe=$(mktemp -d)
  first=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['train'].get('steps'))" "$config")
  # The starting step: the run's checkpoint if resuming, else the --init weights' step, else 0.
  start_step=$(python3 - "$run/last.pt" "$@" <<'PY'
import sys, os
from codec.training.trainer import read_checkpoint
ckpt, args = sys.argv[1], sys.argv[2:]
if os.path.exists(ckpt):
    print(read_checkpoint(ckpt)["step"])
elif "--init" in args:
    from codec.zoo import read_metadata
    print(int(read_metadata(args[args.index("--init") + 1]).get("step", 0)))
else:
    print(0)
PY
)
  python3 -m codec train --config "$config" --data "$carry/train" --out "$probe" --device "$device" \
      --minutes 2 --steps $((start_step + 300)) "${extra[@]}" "$@" > "$probe/out.txt" 2>&1 || { tail -20 "$probe/out.txt"; exit 1; }
  steps=$(python3 - "$probe/log.csv" "$start_step" "$minutes" "$start_time" <<'PY'
import csv, sys, time
rows = [r for r in csv.DictReader(open(sys.argv[1])) if not r["validation"]]
start, minutes, t0 = int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
a, b = rows[1], rows[-1]  # skip the first 50 steps (start-up)
per_step = (float(b["seconds"]) - float(a["seconds"])) / (int(b["step"]) - int(a["step"]))
left = minutes * 60 - (time.time() - t0) - 30  # loading, validations and checkpoints
print(start + max(100, int(0.95 * left / per_step)))
print(f"probe: {per_step * 1000:.1f} ms per step", file=sys.stderr)
PY
)
  echo "fitted --steps $steps from step $start_step"
  left_minutes=$(python3 -c "import time; print(round($minutes - (time.time() - $start_time) / 60, 2))")
  set -- "$@" --steps "$steps"
  minutes=$left_minutes
fi
python3 -m codec train --config "$config" --data "$carry/train" --out "$run" --resume --device "$device" \
    --minutes "$minutes" "${extra[@]}" "$@"
mkdir -p "$out"
cp "$run/last.pt" "$run/log.csv" "$out/"
newest=$(ls "$run"/snapshots/*.pt 2>/dev/null | tail -1 || true)
[ -n "$newest" ] && cp "$newest" "$out/"
echo "copied $(ls "$out" | tr '\n' ' ')to $out"
