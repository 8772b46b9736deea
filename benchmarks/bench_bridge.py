"""Bridge overhead: a 4096x4096 RGBA layer through the real client and server.

The server runs an identity colorizer (returns the gray channel as RGB), so the
measured time is pure bridge overhead: framing, loopback TCP both ways, pixel
decoding, alpha re-attachment and result encoding. The engine's own time (as
reported by the server in ``engine_s``) is subtracted.

    .venv/bin/python benchmarks/bench_bridge.py [--size 4096] [--repeat 5] [--json OUT]
"""

import argparse
import json
import os
import statistics
import tempfile
import time

import numpy as np

from tinct.bridge import wire as P
from tinct.bridge.server import BridgeServer


class Identity:
    default_model = "identity"

    def models(self):
        return [{"name": "identity", "display_name": "Identity"}]

    def colorize(self, job, progress):
        img = job.image
        return img if img.ndim == 3 else np.repeat(img[..., None], 3, axis=2)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args(argv)
    n = args.size
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (n, n, 4), dtype=np.uint8).tobytes()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TINCT_CONFIG_DIR"] = tmp
        server = BridgeServer(Identity(), port=0).start()
        try:
            totals, overheads = [], []
            with P.BridgeClient(port=server.port, token=server.token, timeout=120) as client:
                client.hello()
                for i in range(args.repeat + 1):
                    t0 = time.perf_counter()
                    res = client.colorize(n, n, "rgba8", rgba, result_format="rgba8")
                    total = time.perf_counter() - t0
                    assert len(res.pixels) == n * n * 4
                    if i == 0:
                        assert bytes(res.pixels[:4096]) == rgba[:4096], "identity mismatch"
                        continue  # warm-up
                    totals.append(total)
                    overheads.append(total - res.header["engine_s"])
        finally:
            server.shutdown()
    mib = n * n * 4 / 2**20
    print(f"{n}x{n} RGBA ({mib:.0f} MiB each way), {args.repeat} runs after warm-up:")
    print(f"  round trip     median {statistics.median(totals):.3f} s  (min {min(totals):.3f})")
    print(
        f"  bridge overhead median {statistics.median(overheads):.3f} s  "
        f"(min {min(overheads):.3f}; target <= 1 s)"
    )
    if args.json:
        res = {
            "size": n,
            "repeats": args.repeat,
            "mib_each_way": round(mib, 1),
            "round_trip_median_s": statistics.median(totals),
            "round_trip_min_s": min(totals),
            "overhead_median_s": statistics.median(overheads),
            "overhead_min_s": min(overheads),
        }
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
