"""Copy a trained tinct weights file into the package, in float16 (half the size).

    python scripts/ship_weights.py runs/tinct-base/tinct-base.safetensors \
        src/tinct/weights/tinct-base.safetensors

Floating tensors are stored as float16 (the loader casts them back to the model's
float32); the metadata (recipe, data, steps, hardware, time, metrics) is kept and a
``stored_dtype`` entry is added. Prints the sha256 and size for the registry record.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    args = ap.parse_args()
    with safe_open(args.src, framework="pt") as f:
        meta = dict(f.metadata() or {})
    state = load_file(args.src)
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    meta["stored_dtype"] = "float16"
    Path(args.dst).parent.mkdir(parents=True, exist_ok=True)
    save_file(half, args.dst, metadata=meta)
    data = Path(args.dst).read_bytes()
    print(f"sha256={hashlib.sha256(data).hexdigest()} size={len(data)}")
    worst = max(float((state[k].float() - half[k].float()).abs().max()) for k in state)
    print(f"largest float16 rounding error: {worst:.2e}")


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
