#!/usr/bin/env bash
# The GPU checks: the gpu-marked tests (CUDA paths of the engine, the MRF, training) and the
# GPU benchmarks, on a machine with one CUDA GPU, in under 5 minutes.
#   bash scripts/gpu_check.sh            (results: gpu-check/*.json)
# Exits non-zero when CUDA is missing, a test fails or a benchmark fails.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${GPU_CHECK_OUT:-gpu-check}
mkdir -p "$OUT"
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device')"
"$PY" -c "import torch; print('GPU:', torch.cuda.get_device_name(0))"
SECONDS=0
echo "=== gpu tests"
timeout 120 "$PY" -m pytest -m gpu tests/test_gpu.py -q -p no:cacheprovider
echo "=== engine benchmark on the GPU (${SECONDS}s)"
timeout 120 "$PY" benchmarks/bench_engine.py --quick --only devices --json "$OUT/bench_engine.json"
echo "=== core benchmark: colour conversions and the MRF on the GPU (${SECONDS}s)"
timeout 50 "$PY" benchmarks/bench_core.py --size 2048 --repeats 2 --json "$OUT/bench_core.json"
echo "=== done in ${SECONDS}s; results in $OUT/"
