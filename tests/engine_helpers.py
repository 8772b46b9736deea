"""Shared by the engine tests (test_colorizer, test_runtime, ...): a tiny model, a test image.

:class:`TinyModel` is a fake colorizer with random but fixed weights (a few kB),
so tests through :class:`tinct.engine.colorizer.Colorizer` run in seconds; the
fixtures that wrap it (``tiny``, ``tiny_reg``, ...) are defined in each test file.
"""

import types

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tinct.models.base import ColorModel, ModelOutput
from tinct.models.registry import ModelConfig


class TinyModel(ColorModel):
    """A few-parameter colorizer: 1/4-res logits and/or 1/2-res ab from L and hints."""

    stride = 8

    def __init__(self, config: ModelConfig, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.config = config
        q = max(config.num_bins, 1)
        self.logit_w = nn.Parameter(torch.randn(q, 4, generator=g) * 2.0)
        self.ab_w = nn.Parameter(torch.randn(2, 4, generator=g))
        self.record = types.SimpleNamespace(name="tiny", config=config)

    def forward(self, lum, hint_ab=None, hint_mask=None, global_hint=None):
        x = (lum - 50) / 50
        feats = torch.cat((x, x * x, F.avg_pool2d(x, 9, 1, 4), torch.ones_like(x)), 1)
        logits = ab = None
        if "logits" in self.config.heads:
            f4 = F.avg_pool2d(feats, 4)
            logits = torch.einsum("qc,bchw->bqhw", self.logit_w, f4)
        if "ab" in self.config.heads:
            f2 = F.avg_pool2d(feats, 2)
            ab = 40 * torch.tanh(torch.einsum("qc,bchw->bqhw", self.ab_w, f2))
        return ModelOutput(logits=logits, ab=ab)


JOINT = ModelConfig(target="gamut313", heads=("logits",), stride=8, logits_stride=4)
REGRESSION = ModelConfig(
    target="regression", heads=("ab",), num_bins=0, logits_stride=None, ab_stride=2,
    default_decoder="ab",
)  # fmt: skip


def gradient_image(h=64, w=80, dtype=np.uint8):
    yy, xx = np.mgrid[0:h, 0:w]
    img = (np.sin(xx / 7.0) * 0.3 + yy / h * 0.6 + 0.1).clip(0, 1)
    if dtype == np.uint8:
        return (img * 255).astype(np.uint8)
    if dtype == np.uint16:
        return (img * 65535).astype(np.uint16)
    return img.astype(dtype)


def shown_ab(frame: np.ndarray, r: int, c: int, colour, k: int = 3) -> np.ndarray:
    """The chroma of ``colour`` as the engine can show it on the gray ``frame`` there.

    At the lightness of the gray under the window, inside the sRGB gamut
    (:func:`tinct.spaces.fit_chroma`: a deep blue on a light face keeps its hue, not its
    chroma).
    """
    from skimage.color import rgb2lab

    from tinct.spaces import fit_chroma

    g = frame[r - k : r + k + 1, c - k : c + k + 1].astype(float)
    lum = rgb2lab(np.repeat(g[..., None], 3, -1) / 255)[..., 0].mean()
    ab = rgb2lab(np.array([[colour]], np.uint8))[0, 0, 1:]
    fitted = fit_chroma(torch.tensor(lum).view(1, 1, 1, 1), torch.tensor(ab).view(1, 2, 1, 1))
    return fitted[0, :, 0, 0].numpy()


def finishes_despite_fifo(fn, fifo, timeout: float) -> bool:
    """Run ``fn()`` in a thread; ``True`` when it ends within ``timeout`` seconds.

    A reader blocked on opening ``fifo`` (waiting for a writer) is let go afterwards by
    opening the FIFO's writing end and closing it, so the test never hangs.
    """
    import os
    import threading

    worker = threading.Thread(target=fn, daemon=True)
    worker.start()
    worker.join(timeout)
    if not worker.is_alive():
        return True
    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    worker.join(10)
    return False


def within(seconds: float, fn, *args):
    """``fn(*args)`` in a thread: its result or its error, or a failure if it still waits.

    For readers that must refuse a FIFO at once instead of waiting for a writer.
    """
    import threading

    out: dict = {}

    def run():
        try:
            out["value"] = fn(*args)
        except BaseException as exc:  # handed back to the test
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"{fn.__name__} waited on a FIFO"
    if "error" in out:
        raise out["error"]
    return out.get("value")
