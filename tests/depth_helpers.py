"""Shared by the output-depth tests (engine, CLI, batch): read a PNG's depth and 16-bit pixels.

Pillow opens a 16-bit RGB(A) PNG as 8-bit, so :func:`read_png` decodes with Qt
(an independent PNG reader, libpng-compatible; the dev extra has it), which keeps
16 bits a channel.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from tinct import color


def png_bits(path: str | Path) -> int:
    """The bit depth a PNG file's header declares (8 or 16 for RGB)."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return data[24]


def read_png(path: str | Path) -> np.ndarray:
    """A PNG's RGB(A) pixels as Qt decodes them: ``(H, W, 3|4)`` uint16 (8-bit files x 257)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qtpy.QtGui import QImage

    q = QImage(str(path))
    assert not q.isNull(), f"Qt cannot read {path}"
    channels = 4 if q.hasAlphaChannel() else 3
    q = q.convertToFormat(QImage.Format.Format_RGBA64)
    ptr = q.constBits()
    ptr.setsize(q.sizeInBytes())
    rows = np.frombuffer(ptr, np.uint16).reshape(q.height(), q.bytesPerLine() // 2)
    pixels = rows[:, : q.width() * 4].reshape(q.height(), q.width(), 4)
    return pixels[..., :channels].copy()


def lightness(rgb: np.ndarray) -> np.ndarray:
    """CIE L* of ``(H, W, 3)`` sRGB in ``[0, 1]`` (``tinct.color``), float64 ``(H, W)``."""
    t = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float64)).permute(2, 0, 1)[None]
    return color.rgb_to_lab(t)[0, 0].numpy()


def gradient16(h: int = 64, w: int = 96) -> np.ndarray:
    """A smooth uint16 ramp over the whole range: ``(h, w)``, ``h * w`` distinct values."""
    return np.linspace(0, 65535, h * w).reshape(h, w).astype(np.uint16)
