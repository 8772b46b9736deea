"""How the decoder, temperature and MRF act on the propagated hints.

:func:`tinct.engine.fusion.hint_weights` gives every pixel each hint's colour with a
weight (the weights sum to 1). Read as a distribution over the hints' colours, those
weights can be smoothed by the MRF and decoded like the network's bin distribution;
:func:`hint_shift` returns how far that decoding moves the plain propagated colour
(their weighted mean). The engine adds the shift to the propagated side of the fusion
(:func:`tinct.engine.fusion.refuse`).

Where the network agrees with the hints (a photograph), the hints are decoded at
:data:`HINT_TEMPERATURE` times the decoding temperature: a little colder than the
network's side, so where two hints' reaches meet the stronger one wins a little more
than plain propagation lets it. Where it does not (an H&E slide, a telescope image:
the engine then relies on the propagation, :func:`tinct.engine.fusion.apply_trust`),
they are decoded at the temperature itself, which at ``T = 1`` is plain propagation,
the best guess between two hints when nothing else tells (docs/engine.md).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["HINT_MRF_SIGMA", "HINT_TEMPERATURE", "hint_shift"]

#: Width (ab units) of the MRF's compatibility between two hint colours.
HINT_MRF_SIGMA = 10.0

#: The hints' temperature relative to the decoding temperature where the network
#: agrees with the hints (1 where it does not; linear in between). Held-out training
#: photographs (60, protocol A1, tinct-base at its default T = 1), the factor applied
#: everywhere: 0.4 / 0.6 / 0.7 / 0.8 / 1 give 27.48 / 27.56 / 27.57 / 27.56 / 27.51 dB
#: at 10 hints and 28.60 / 28.66 / 28.66 / 28.64 / 28.54 at 20; but on the H&E and
#: telescope tiles' training splits 0.7 everywhere cost 0.17 and 0.08 dB, scaled by the
#: agreement 0.02 and 0.06 (photographs: 27.54 / 28.64).
HINT_TEMPERATURE = 0.7


def hint_shift(
    mix: tuple[Tensor, Tensor, Tensor],
    decoder: str,
    temperature: float,
    *,
    mrf_weight: float = 0.0,
    mrf_iters: int = 0,
    mrf_edge: float | None = None,
    agreement: Tensor | None = None,
) -> Tensor:
    """How the decoder, temperature and MRF move the propagated hint colour.

    The weights are read as a distribution over the hints' colours, smoothed by
    the MRF like any bin distribution, and decoded at ``temperature * f`` with
    ``f = 1 - (1 - HINT_TEMPERATURE) * agreement`` (:data:`HINT_TEMPERATURE`); the
    shift is that decoding minus the weights' plain average (which is the propagated
    colour itself).

    Args:
        mix: :func:`tinct.engine.fusion.hint_weights`' ``(weights (B, K, h, w),
            colours (B, K, 2), lum (B, 1, h, w))``.
        decoder: Decoder name (``coherent`` and ``annealed_mean`` both take the
            annealed mean here: a user's hints are never faded); ``ab`` gives no
            shift, nor does ``mean`` without the MRF.
        temperature: The decoding temperature, ``T > 0``.
        mrf_weight: MRF strength (0 = off).
        mrf_iters: MRF sweeps.
        mrf_edge: MRF edge sensitivity (``None`` = the MRF's default).
        agreement: ``(B,)`` in ``[0, 1]``, how well the network agrees with the
            hints per plane (``NetOutput.agreement``); ``None`` = fully.

    Returns:
        ``(B, 2, h, w)`` shift in ab units.
    """
    from tinct import decode as D
    from tinct import mrf

    weights, colours, lum = mix
    b = weights.shape[0]
    name = "annealed_mean" if decoder == "coherent" else decoder
    agree = [1.0] * b if agreement is None else [float(a) for a in agreement.clamp(0, 1)]
    temps = [temperature * (1.0 - (1.0 - HINT_TEMPERATURE) * a) for a in agree]
    smooth = mrf_weight > 0 and mrf_iters > 0
    plain = name == "mean" or (name == "annealed_mean" and all(t == 1.0 for t in temps))
    if name in ("ab", "regression") or (plain and not smooth):
        return weights.new_zeros(b, 2, *weights.shape[-2:])
    out = []
    for j in range(b):
        logits = weights[j : j + 1].clamp_min(1e-8).log()
        base = D.mean(logits, colours[j])
        if smooth:
            kw = {} if mrf_edge is None else {"edge_sensitivity": mrf_edge}
            logits = mrf.smooth(
                logits, colours[j], lum[j : j + 1], weight=mrf_weight,
                iterations=int(mrf_iters), sigma=HINT_MRF_SIGMA, **kw,
            )  # fmt: skip
        out.append(D.decode(logits, colours[j], name, temperature=temps[j], seed=0) - base)
    return torch.cat(out, 0)
