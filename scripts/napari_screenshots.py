"""Make the screenshots of docs/napari.md: the full napari window with the Colorize widget.

Run under a virtual display (offscreen Qt does not work with napari's GL canvas)::

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/napari_screenshots.py

Writes ``docs/images/napari-auto.png`` (the sample photograph colorized
automatically) and ``docs/images/napari-hints.png`` (the same with a few
colour hints, one selected so its colour suggestions show).

Model choice: ``--model`` (default ``tinct-base``) with its registry weights,
or ``--weights PATH`` for a trained ``.safetensors`` file. Without trained
weights the automatic shot would show a random network, so the script stops
unless ``--allow-random`` is given; ``--hint-model`` (default: the same model)
can pick the classical ``levin`` model for the hinted shot.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: Hint positions (row, col) on the 400 x 600 ``coffee`` sample; colours come from the original.
HINTS = [(120, 300), (200, 250), (300, 80), (360, 520), (60, 480), (250, 430)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--model", default="tinct-base")
    parser.add_argument("--weights", type=Path, help="trained .safetensors for --model")
    parser.add_argument("--hint-model", help="model for the hinted shot (default: --model)")
    parser.add_argument("--allow-random", action="store_true", help="use random weights if needed")
    args = parser.parse_args()
    os.environ["TINCT_NAPARI_SYNC"] = "1"  # deterministic: run jobs in the main thread

    import napari
    from PIL import Image as PILImage
    from skimage import data

    from tinct.engine.colorizer import Colorizer
    from tinct.models import get_record, weights_status

    def factory(model: str, device: str) -> Colorizer:
        if model == args.model and args.weights is not None:
            return Colorizer(args.weights, device="cpu")
        trained = weights_status(get_record(model)) in ("bundled", "downloaded", "built in")
        if not trained and not args.allow_random:
            sys.exit(f"{model} has no trained weights here: pass --weights or --allow-random")
        return Colorizer(model, device="cpu", pretrained=trained)

    args.out.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer(show=False, title="tinct colorization")
    viewer.window.resize(1400, 850)
    viewer.open_sample("tinct", "photo")
    source = viewer.layers[0]
    _, w = viewer.window.add_plugin_dock_widget("tinct", "Colorize")
    w.colorizer_factory = factory
    w.model.value = args.model
    w.image.value = source
    w.run()
    _shot(viewer, args.out / "napari-auto.png", PILImage)

    w.model.value = args.hint_model or args.model
    pts = w.add_hints_layer()
    pts.current_size = 22
    original = data.coffee()
    pts.add(np.array(HINTS, float))
    pts.face_color = np.array([np.append(original[r, c] / 255.0, 1.0) for r, c in HINTS])
    w.run()
    pts.selected_data = {0}  # shows the colour suggestions for the first hint
    pts.mode = "select"
    _shot(viewer, args.out / "napari-hints.png", PILImage)
    viewer.close()
    return 0


def _shot(viewer, path: Path, pil) -> None:
    viewer.reset_view()
    viewer.screenshot(str(path), canvas_only=False, flash=False)
    img = pil.open(path).convert("RGB")  # drop alpha, palette-quantise: docs PNGs stay small
    img.quantize(colors=256, method=pil.Quantize.MEDIANCUT, dither=pil.Dither.NONE).save(
        path, optimize=True
    )
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    raise SystemExit(main())
