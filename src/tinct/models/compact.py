"""Registry entries for tinct's own compact family (``tinct-base``, ``tinct-small``).

The architecture, :class:`~tinct.models.tinct_base.TinctUNet`, lives in
:mod:`tinct.models.tinct_base`. ``tinct-base``'s trained weights ship with the
package as ``tinct/weights/tinct-base.safetensors``; ``tinct-small`` is a recipe
without shipped weights (``tinct train --recipe tinct-small``).
"""

from __future__ import annotations

import dataclasses

from tinct.models.registry import ModelConfig, ModelRecord, Weights, register_model
from tinct.models.tinct_base import TinctUNet

__all__ = ["TINCT_CONFIG", "TINCT_SMALL_CONFIG"]

_PAPER = "tinct: a compact hint-aware colorization U-Net (this project)."

#: Shared configuration of the compact family.
TINCT_CONFIG = ModelConfig(
    color_space="lab",
    target="gamut313",
    heads=("logits", "ab"),
    num_bins=313,
    hints=True,
    global_hint=True,
    input_size=256,
    stride=32,
    logits_stride=4,
    ab_stride=2,
    # tuned on the training run's held-out split (docs/models.md, scripts/tune_defaults.py)
    default_temperature=1.0,
    default_decoder="coherent",
    # tinct-base propagates hints inside the model (Levin + learned fusion head)
    hint_propagation=0.0,
    loss="ce+l1",
    trainable=True,
)
#: tinct-small has no fusion head: the engine propagates its hints (edge-aware, network prior).
TINCT_SMALL_CONFIG = dataclasses.replace(TINCT_CONFIG, hint_propagation=1e-5)

register_model(
    ModelRecord(
        name="tinct-base",
        display_name="tinct base (default)",
        description="Compact hint-aware U-Net with global fusion and reference-histogram input; "
        "313-bin logits at 1/4 and ab at 1/2 resolution; hints propagated by Levin's "
        "optimisation inside the model, gated by a learned head; a small refiner head "
        "finishes the engine's hinted colour. 4.8 M parameters.",
        builder=TinctUNet,
        kwargs={"fusion": True, "refiner": True},
        config=TINCT_CONFIG,
        weights=Weights(
            file_name="tinct-base.safetensors",
            sha256="f0ea0c3e5818549595c3df43d1d9c965bdf4a6afdbb389cdd3e38e8afb01c982",
            size=9667250,
            # the team's licence; the training photos' terms (research use) may limit use
            license="BSD-3-Clause; data: research use only",
            citation=_PAPER,
            format="safetensors",
        ),
        paper=_PAPER,
    )
)

register_model(
    ModelRecord(
        name="tinct-small",
        display_name="tinct small",
        description="tinct-base at reduced width (16-160 channels) for slow machines.",
        builder=TinctUNet,
        kwargs={"widths": (16, 32, 64, 128, 160)},
        config=TINCT_SMALL_CONFIG,
        weights=Weights(
            file_name="tinct-small.safetensors",
            license="BSD-3-Clause",
            citation=_PAPER,
            format="safetensors",
        ),
        paper=_PAPER,
    )
)

#: Domain models: tinct-base fine-tuned on one kind of image. Their colour is a learned
#: rendering of that domain's typical colours, decoded by the regression head by default.
_DOMAIN_CONFIG = dataclasses.replace(TINCT_CONFIG, default_decoder="ab")

register_model(
    ModelRecord(
        name="tinct-he",
        display_name="tinct H&E histology",
        description="tinct-base fine-tuned on H&E-stained histology tiles (MoNuSeg, TCGA "
        "glioma): gray H&E tiles get haematoxylin/eosin colours. A synthetic rendering "
        "learned from stained slides, not a measurement.",
        builder=TinctUNet,
        kwargs={"fusion": True},
        config=_DOMAIN_CONFIG,
        weights=Weights(
            file_name="tinct-he.safetensors",
            sha256="9f990772b6407df0b13931b727e62bb1af0f1b315e1ddf97618d141eed70dc8a",
            size=9602284,
            # MoNuSeg tiles: CC BY-NC-SA 4.0; TCGA glioma tiles: research use (docs/models.md)
            license="BSD-3-Clause; data: CC BY-NC-SA 4.0",
            citation=_PAPER,
            format="safetensors",
        ),
        paper=_PAPER,
        notes="Trained here on the training sources of shared/data/domain/histology "
        "(docs/models.md, model card).",
    )
)
