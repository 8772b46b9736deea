#!/usr/bin/env bash
# One GPU training run inside the device tool's time (about 10 minutes), from the repo root:
#   device run:  bash scripts/gpu/run.sh        (carry: [".gpu"])
# Needs .gpu/train128.tar from `python scripts/gpu/pack_data.py --train <shared/data/train>`.
# TINCT_GPU_MINUTES, _BATCH, _LR and _REBALANCE override the recipe.
# Writes $OUT/tinct-base-gpu.safetensors, $OUT/scores.json (held-out protocol scores of
# every snapshot) and $OUT/log.csv. Back here: compare, then ship with scripts/ship_weights.py.
set -euo pipefail
export PYTHONPATH="$PWD/src" PYTHONUNBUFFERED=1
export TINCT_CACHE=/tmp/tinct-cache TINCT_USER_MODELS=/tmp/tinct-user  # no pooch/platformdirs needed
OUT="${OUT:-/tmp/tinct-gpu-out}"
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
python3 scripts/gpu/train.py --data .gpu/train128.tar --out "$OUT" \
  --minutes "${TINCT_GPU_MINUTES:-7}" --batch-size "${TINCT_GPU_BATCH:-64}" --lr "${TINCT_GPU_LR:-1e-3}" \
  --rebalance "${TINCT_GPU_REBALANCE:-0.5}"
