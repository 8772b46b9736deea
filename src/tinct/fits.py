"""FITS files (astronomy) as numpy arrays, through astropy (the ``fits`` extra).

:func:`read_fits` is what :func:`tinct.inputs.read_image` calls for ``.fits``,
``.fit`` and ``.fts`` files (gzipped too), so ``tinct colorize`` and ``tinct
batch`` read them like any other image.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = ["FITS_SUFFIXES", "read_fits"]

#: Most pixels (all planes) read by default, as :data:`tinct.inputs.MAX_READ_PIXELS`.
DEFAULT_MAX_PIXELS = 2**28

#: Suffixes read as FITS (astropy, the ``fits`` extra).
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz")


def read_fits(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read the first image HDU of a FITS file (astronomy) as a numpy array.

    The declared size (``NAXISn``, all planes) is checked against
    ``max_pixels`` before any data is read. Blank pixels (NaN, common outside a survey's footprint)
    are set to the smallest finite value, so they show as the background.
    Byte order is left to :func:`prepare` (FITS data is big-endian).

    Args:
        path: ``.fits`` / ``.fit`` / ``.fts`` file, optionally gzipped.
        max_pixels: Most pixels the image may have, all planes together.

    Returns:
        ``(H, W)`` (or ``(..., H, W)`` for cubes) array in the file's dtype
        (floats for scaled integer data, as astropy applies ``BSCALE``/``BZERO``).

    Raises:
        OSError: Not a FITS file, no image data, or astropy is not installed.
        tinct.inputs.ImageTooLargeError: The declared size exceeds ``max_pixels``.
    """
    try:
        from astropy.io import fits
    except ImportError:
        raise OSError(
            "reading FITS files needs astropy: pip install -e '.[fits]' (or pip install astropy)"
        ) from None
    try:
        with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
            for hdu in hdul:
                shape = tuple(
                    int(hdu.header.get(f"NAXIS{i}", 0))
                    for i in range(1, 1 + int(hdu.header.get("NAXIS", 0)))
                )
                if len(shape) < 2 or 0 in shape or not hdu.is_image:
                    continue
                pixels = math.prod(shape)
                if pixels > max_pixels:
                    from tinct.inputs import ImageTooLargeError

                    raise ImageTooLargeError(
                        f"{path} declares {'x'.join(map(str, shape))} = {pixels:,} pixels, "
                        f"more than the limit of {max_pixels:,}"
                    )
                data = np.asarray(hdu.data)
                break
            else:
                raise OSError(f"{path}: no image data in the FITS file")
    except (ValueError, OSError):
        raise
    except Exception as exc:  # astropy raises many kinds for broken files
        raise OSError(f"{path}: cannot read the FITS file ({exc})") from None
    if np.issubdtype(data.dtype, np.floating):
        bad = ~np.isfinite(data)
        if bad.all():
            raise ValueError(f"{path}: the image has no finite pixel")
        if bad.any():
            data = np.where(bad, np.nanmin(np.where(bad, np.nan, data)), data)
    return data
