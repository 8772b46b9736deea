"""What every front end lists and greys out, read from the model registry.

One place answers, for each registered model (or a loaded weights file): its
weight status and whether it can run now (:func:`availability`), the
decoders that apply to it (:func:`model_decoders`), which knobs act on it in
a given mode and why the others do not (:func:`inactive_knobs`), and the
description the CLI (``tinct models``), the napari widget and the bridge
(``hello`` / ``models``, so the GIMP dialog) show (:func:`model_entries`).
No torch is imported here beyond what the registry needs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from tinct.models.targets import get_target

__all__ = [
    "ModelEntry",
    "availability",
    "check_decoder",
    "effective_decoder",
    "entry_for",
    "fuses_hints",
    "inactive_knobs",
    "model_decoders",
    "model_entries",
    "record_for",
]

#: Decoders that use the temperature (the others ignore it).
TEMPERATURE_DECODERS = ("annealed_mean", "coherent", "sample")
#: Knobs a front end may grey out, in the order they are reported.
KNOBS = (
    "temperature",
    "decoder",
    "mrf_weight",
    "mrf_iters",
    "mrf_edge",
    "propagation",
    "local_hints",
)
#: Weight states that can run without further action (a download happens on first use).
_RUNNABLE = ("bundled", "downloaded", "downloadable", "built in", "file", "user")


@dataclass(frozen=True)
class ModelEntry:
    """One model as the front ends list it.

    Attributes:
        name: Registry name (or the weights file's path).
        display_name: Name shown in menus.
        description: One or two sentences.
        status: ``bundled``, ``downloaded``, ``downloadable``, ``built in``,
            ``train it yourself``, ``user`` (a user model, see
            :mod:`tinct.models.user_store`) or ``file`` (a loaded ``.safetensors``).
        available: The model can run now (``downloadable`` counts: it is fetched).
        reason: Why it cannot run (empty when available).
        license: Licence of its weights (``"no weights"`` when there are none).
        takes_hints: It uses colour hints.
        hints_required: Without hints there is nothing to colorize.
        global_hint: It uses a reference image directly.
        distribution: It predicts a colour distribution (temperature, MRF apply).
        decoders: Decoders that apply, the default first.
        default_decoder: Decoder used when none is chosen.
        default_temperature: Temperature used when none is chosen.
    """

    name: str
    display_name: str
    description: str
    status: str
    available: bool
    reason: str
    license: str
    takes_hints: bool
    hints_required: bool
    global_hint: bool
    distribution: bool
    decoders: tuple[str, ...]
    default_decoder: str
    default_temperature: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (lists instead of tuples)."""
        d = asdict(self)
        d["decoders"] = list(self.decoders)
        return d


def availability(record: Any) -> tuple[str, bool, str]:
    """A record's weight status, whether it can run now, and why not.

    Returns:
        ``(status, available, reason)``; ``reason`` names what to do, in words
        that fit every front end (no Python calls).
    """
    from tinct.models.loading import weights_status

    status = weights_status(record)
    if status in _RUNNABLE:
        return status, True, ""
    return (
        status,
        False,
        (
            f"{record.name} has no trained weights: train them with "
            f"`tinct train --recipe {record.name} --data DIR --out RUN`, then use the "
            f"file it writes, RUN/{record.name}.safetensors"
        ),
    )


def model_decoders(config: Any) -> tuple[str, ...]:
    """Decoders that apply to a model, its default first.

    Distribution models get every decoder of :data:`tinct.decode.DECODERS`
    (``larsson`` too for hue/chroma targets) and ``ab`` when they also have a
    regression head; regression-only models get ``ab``.
    """
    from tinct.decode import DECODERS

    names: list[str] = []
    if "logits" in config.heads:
        names = [*DECODERS, *get_target(config.target).extra_decoders]
    if "ab" in config.heads:
        names.append("ab")
    default = config.default_decoder
    if default in names:
        names.remove(default)
    return (default, *names)


def check_decoder(config: Any, decoder: str | None, model: str) -> None:
    """Raise ``ValueError`` when ``decoder`` does not apply to the model (``None`` passes)."""
    if decoder is None:
        return
    names = model_decoders(config)
    if decoder == "regression":
        decoder = "ab"
    if decoder not in names:
        raise ValueError(
            f"decoder {decoder!r} does not apply to {model}; choose one of {', '.join(names)}"
        )


def effective_decoder(config: Any, decoder: str | None, hinted: bool) -> str:
    """The decoder the engine uses: the chosen one, else the model's (hint) default."""
    if decoder is not None:
        return "ab" if decoder == "regression" else decoder
    if hinted and getattr(config, "hint_decoder", None):
        return str(config.hint_decoder)
    return str(config.default_decoder)


def fuses_hints(record: Any) -> bool:
    """The model blends its own colour with the propagated hints through a learned gate.

    That is :class:`~tinct.models.tinct_base.TinctUNet` built with ``fusion=True``
    (``tinct-base``, the domain models and models trained from them; a weights file's
    record keeps its builder arguments): the models whose hints ``local_hints`` keeps
    in their region (:func:`tinct.engine.reach.hint_reach`).
    """
    return bool(dict(getattr(record, "kwargs", None) or {}).get("fusion"))


def inactive_knobs(
    config: Any,
    *,
    decoder: str | None = None,
    hinted: bool = False,
    fusion: bool = False,
    mrf_weight: float | None = None,
) -> dict[str, str]:
    """The knobs that cannot change the result in this mode, each with the reason.

    Args:
        config: The model's :class:`~tinct.models.registry.ModelConfig`.
        decoder: The decoder chosen by the user (``None`` = automatic).
        hinted: The call has colour hints.
        fusion: The model fuses hints (:func:`fuses_hints` of its record); the
            config alone does not say so.
        mrf_weight: The MRF weight chosen (``None``: not judged). At 0 the MRF is
            off, so its iterations and edge sensitivity do nothing.

    Returns:
        ``{knob: reason}`` for knobs of :data:`KNOBS` that do nothing; a knob
        that is absent acts on the result (``local_hints`` not beyond 64 hints,
        nor on tiled images: the engine then keeps no per-hint weights).
    """
    out: dict[str, str] = {}
    dec = effective_decoder(config, decoder, hinted)
    distribution = "logits" in config.heads
    if not distribution:
        why = "this model predicts colours directly (no colour distribution)"
        out.update(temperature=why, mrf_weight=why, mrf_iters=why, mrf_edge=why)
    elif dec == "ab":
        why = (
            "with hints and decoder auto, this model uses its regression head"
            if decoder is None and hinted
            else "decoder 'ab' uses the regression head, not the colour distribution"
        )
        out.update(temperature=why, mrf_weight=why, mrf_iters=why, mrf_edge=why)
    else:
        if dec not in TEMPERATURE_DECODERS:
            out["temperature"] = f"decoder {dec!r} does not use a temperature"
        if not get_target(config.target).mrf:
            kind = get_target(config.target)
            why = f"the MRF does not apply to {kind.label or kind.name} distributions"
            out.update(mrf_weight=why, mrf_iters=why, mrf_edge=why)
    if mrf_weight is not None and mrf_weight <= 0 and "mrf_weight" not in out:
        why = "MRF weight is 0: the MRF is off"
        out.update(mrf_iters=why, mrf_edge=why)
    if len(model_decoders(config)) < 2:
        out["decoder"] = "this model has a single decoder"
    if not hinted:
        out["propagation"] = "hint propagation acts on colour hints only"
        out["local_hints"] = "local hints act on colour hints only"
    else:
        if config.color_space != "lab":
            out["propagation"] = "hint propagation works in CIELAB models only"
        elif config.hints_required and "logits" not in config.heads:  # levin
            out["propagation"] = "this model's colour already is the hints' propagation"
        if not fusion:
            out["local_hints"] = "local hints act on hint-fusing models only (such as tinct-base)"
    return {k: out[k] for k in KNOBS if k in out}


def entry_for(record: Any, *, status: str | None = None) -> ModelEntry:
    """The :class:`ModelEntry` of a registry record.

    Args:
        record: A :class:`~tinct.models.registry.ModelRecord`.
        status: Override the weight status (``"file"`` for a loaded weights file).
    """
    cfg = record.config
    if status is None:
        status, ok, reason = availability(record)
    else:
        ok, reason = True, ""
    weights = record.weights
    return ModelEntry(
        name=record.name,
        display_name=record.display_name,
        description=record.description,
        status=status,
        available=ok,
        reason=reason,
        license=(weights.license or "unknown") if weights is not None else "no weights",
        takes_hints=bool(cfg.hints),
        hints_required=bool(cfg.hints_required),
        global_hint=bool(cfg.global_hint),
        distribution="logits" in cfg.heads,
        decoders=model_decoders(cfg),
        default_decoder=cfg.default_decoder,
        default_temperature=float(cfg.default_temperature),
    )


def model_entries(records: Iterable[Any] | None = None) -> list[ModelEntry]:
    """Entries of the given records (default: every registered model), in registry order."""
    if records is None:
        from tinct.models.registry import list_models

        records = list_models()
    return [entry_for(r) for r in records]


def record_for(model: str) -> Any:
    """The registry record a ``--model`` value stands for, without building the network.

    Args:
        model: A registered name, or the path of a tinct ``.safetensors`` file
            (its metadata names the record; the file's network shape applies).

    Returns:
        The :class:`~tinct.models.registry.ModelRecord` (for a file: the record
        as :func:`tinct.models.load_model` would attach it, ``weights=None``).

    Raises:
        tinct.models.registry.UnknownModelError: An unknown name.
        FileNotFoundError: A weights path that does not exist.
        ValueError: A file that is not a tinct weights file.
    """
    import os
    from pathlib import Path

    from tinct.models import registry

    path = Path(model)
    if path.suffix.lower() not in (".safetensors", ".pth"):
        try:
            return registry.get_record(model)  # a registered name wins over a file of that name
        except registry.UnknownModelError:
            if not os.path.lexists(path):
                raise
    if not os.path.lexists(path):  # a FIFO or a device there is refused by what reads it
        raise FileNotFoundError(f"no weights file at {path}")
    from tinct.models import weights as _w
    from tinct.models._from_file import check_against_tensors, record_from_metadata

    try:
        shapes, meta = _w.read_weights_header(path)
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f"{path} is not a .safetensors weights file ({exc})") from None
    record = record_from_metadata(meta, path)
    check_against_tensors(record, shapes, path)  # on the meta device: no memory spent
    return record
