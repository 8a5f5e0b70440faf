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
# Environment: CARRY (default gpu-carry), DEVICE (default cuda; cpu for a dry run), OUT.
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
python3 -m codec train --config "$config" --data "$carry/train" --out "$run" --resume --device "$device" \
    --minutes "$minutes" "${extra[@]}" "$@"
mkdir -p "$out"
cp "$run/last.pt" "$run/log.csv" "$out/"
newest=$(ls "$run"/snapshots/*.pt 2>/dev/null | tail -1 || true)
[ -n "$newest" ] && cp "$newest" "$out/"
echo "copied $(ls "$out" | tr '\n' ' ')to $out"
