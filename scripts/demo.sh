#!/usr/bin/env bash
# Fresh clone -> colorized demo image, offline:
#   bash scripts/demo.sh            writes tinct-demo.png (before | after)
# Creates .venv with the CPU build of torch and tinct, then runs `tinct demo`
# with the model shipped inside the package (no network, no download).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
.venv/bin/tinct demo -o "${1:-tinct-demo.png}"
