#!/usr/bin/env bash
# Run tinct's test suite: everything except the tests that need a GPU (scripts/gpu_check.sh).
# Needs the environment that .ci/run installs (.venv, Xvfb, the GIMP chroot).
# Extra arguments go to pytest, e.g.  bash scripts/test.sh tests/color/test_color.py -x
set -euo pipefail
cd "$(dirname "$0")/.."
export QT_QPA_PLATFORM=xcb TINCT_NAPARI_SYNC=1 PYTHONFAULTHANDLER=1
status=0
xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python -m pytest -m "not gpu" "$@" \
  || status=$?
if [ "$status" = 5 ]; then
  echo "tinct tests: pytest collected no tests -- that is a failure" >&2
  exit 1
fi
exit "$status"
