"""The shared inference core: :class:`Colorizer` and the one-shot :func:`colorize`.

Every front end (CLI, napari widget, GIMP bridge server, Dask batch jobs)
calls this module. A :class:`Colorizer` holds one loaded model on one device
and a small LRU cache of network outputs, so that changing the temperature, the
decoder or the MRF re-decodes without running the network again.

Pipeline (see ``docs/engine.md``)::

    array --validate/normalise--> gray (B, 1, H, W) in [0, 1]  (engine.inputs)
          --network pass--------> log-probs / ab on the network grid (engine.forward) [cached]
          --MRF, decode---------> ab on the logits grid (tinct.mrf, tinct.decode)
          --guided filter-------> ab at a working resolution, edges from L   (tinct.upsample)
          --to sRGB, affine fit-> colour = A * gray + b per window, applied at full resolution
          --> uint8 / float32 RGB(A), same leading shape as the input
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tinct import cancel as _cancel
from tinct.engine import chroma as _chroma
from tinct.engine import forward as _fw
from tinct.engine import fusion as _fusion
from tinct.engine import inputs as _in
from tinct.engine.hints import Hint, hints_digest
from tinct.engine.options import ColorizeOptions, model_defaults
from tinct.engine.render import (
    Entry,
    Scratch,
    Work,
    build_work,
    concat_outputs,
    digest,
    render,
)
from tinct.engine.runtime import cast_for_inference, get_model, select_device, select_dtype
from tinct.engine.threads import call_threads, resolve_threads

__all__ = ["Colorizer", "EngineStats"]


ProgressFn = Callable[[float, str], None]


# ----------------------------------------------------------------------------- state


@dataclass
class EngineStats:
    """Counters for tests and monitoring.

    Attributes:
        forward_calls: Network invocations (each tile counts).
        network_passes: ``colorize``/``suggest_colors`` calls that ran the network.
        cache_hits: Calls served from the network-output cache.
        decodes: Decode + render passes.
    """

    forward_calls: int = 0
    network_passes: int = 0
    cache_hits: int = 0
    decodes: int = 0


# ----------------------------------------------------------------------------- Colorizer


class Colorizer:
    """A loaded model plus the cached pipeline around it.

    Thread-safe: concurrent ``colorize`` calls (e.g. server threads) are
    serialised per colorizer, and network passes per device.

    Args:
        model: Registry name (``"tinct-base"``), path of a ``.safetensors``
            weights file, or a model from :func:`tinct.load_model`.
        device: ``"auto"`` (CUDA > MPS > CPU), ``"cpu"``, ``"cuda[:N]"``, ``"mps"``.
            With a model object and ``"auto"``, the model's own device is used.
        precision: ``"auto"`` (float16 on CUDA, float32 otherwise), ``"float32"``,
            ``"float16"`` or ``"bfloat16"``.
        pretrained: Load trained weights (``False`` = random weights, for tests).
        options: Default options for every call (model/device/precision fields
            are ignored here; they are for :meth:`from_options`).
        cache_size: Network outputs kept for re-decoding (0 disables the cache).
        num_threads: CPU intra-op threads during calls: ``"auto"`` (one thread
            while the machine is busy, see :func:`resolve_threads`), a number,
            or ``None`` to leave torch's global setting alone. The setting is
            process-wide while a call runs and restored afterwards; unless
            ``None``, NumPy/SciPy's BLAS also runs on one thread during calls
            (:func:`tinct.engine.threads.blas_single_thread`).

    Example:
        >>> c = Colorizer("tinct-base")                       # doctest: +SKIP
        >>> rgb = c.colorize(gray, hints=[Hint(10, 20, color=(255, 0, 0))])  # doctest: +SKIP
        >>> warmer = c.colorize(gray, temperature=0.2)        # re-decode, no network pass
    """

    def __init__(
        self,
        model: str | Path | torch.nn.Module = "tinct-base",
        device: str | torch.device = "auto",
        precision: str = "auto",
        *,
        pretrained: bool = True,
        options: ColorizeOptions | None = None,
        cache_size: int = 2,
        num_threads: int | str | None = "auto",
    ):
        is_module = isinstance(model, torch.nn.Module)
        if is_module and str(device) == "auto":  # where the caller's module already is
            p = next(model.parameters(), None)  # type: ignore[union-attr]
            self.device = p.device if p is not None else select_device("auto")
        else:
            self.device = select_device(device)
        self.dtype = select_dtype(precision, self.device)
        if is_module:
            # a reduced-precision copy; the caller's module keeps its float32 weights
            self.model = cast_for_inference(model.to(self.device).eval(), self.dtype)  # type: ignore[union-attr]
            name = getattr(getattr(model, "record", None), "name", type(model).__name__)
        else:
            self.model = get_model(model, self.device, pretrained, self.dtype)  # type: ignore[arg-type]
            name = str(model)
        self.info = _fw.ModelInfo.of(self.model)
        self.options = (options or ColorizeOptions()).replace(model=name)
        self.cache_size = int(cache_size)
        self.num_threads = num_threads
        resolve_threads(num_threads, torch.device("cpu"))  # validate early
        self.stats = EngineStats()
        self._cache: OrderedDict[str, Entry] = OrderedDict()
        self._lock = threading.RLock()
        self._scratch = Scratch()  # full-resolution strips, reused under the lock
        self._centres = _fw.bin_centres(self.info, self.device)

    @classmethod
    def from_options(cls, options: ColorizeOptions, **kwargs: Any) -> Colorizer:
        """Build a colorizer for ``options.model`` on ``options.device``/``precision``."""
        return cls(options.model, options.device, options.precision, options=options, **kwargs)

    @property
    def record(self) -> Any:
        """The model's registry record (``None`` for bare modules)."""
        return getattr(self.model, "record", None)

    def defaults(self) -> dict[str, Any]:
        """Option defaults from the model record (temperature, decoder, net_size)."""
        cfg = getattr(self.record, "config", None)
        return (
            model_defaults(cfg)
            if cfg is not None
            else {
                "temperature": self.info.default_temperature,
                "decoder": self.info.default_decoder,
                "net_size": self.info.input_size,
            }
        )

    def resolve_options(
        self, options: ColorizeOptions | None = None, *, hinted: bool = False, **overrides: Any
    ) -> ColorizeOptions:
        """Library defaults < model record < ``options`` (or the colorizer's) < ``overrides``.

        With ``hinted`` (the call has hints) and no decoder chosen, the model's
        ``hint_decoder`` (if any) is the default decoder: e.g. tinct-base decodes
        its distribution automatically but uses its hint-trained regression head
        when hints are given.
        """
        base = (options or self.options).replace(**overrides)
        defaults = self.defaults()
        if hinted and base.decoder is None and defaults.get("hint_decoder"):
            base = base.replace(decoder=defaults["hint_decoder"])
        return base.resolved(defaults)

    def clear_cache(self) -> None:
        """Forget cached network outputs."""
        with self._lock:
            self._cache.clear()

    # ------------------------------------------------------------------ public calls

    def colorize(
        self,
        image: Any,
        hints: Sequence[Hint] | Mapping[int, Sequence[Any]] = (),
        reference: Any = None,
        temperature: float | None = None,
        decoder: str | None = None,
        mrf_weight: float | None = None,
        mrf_iters: int | None = None,
        tile: int | None = None,
        options: ColorizeOptions | None = None,
        progress: ProgressFn | None = None,
        *,
        propagation: float | None = None,
        rgb: bool | None = None,
        cancel: Any = None,
        temporal: bool | None = None,
        axis: int = 0,
        local_hints: bool | None = None,
    ) -> np.ndarray:
        """Colorize a gray (or RGB) image or stack.

        Args:
            image: ``(..., H, W)`` gray or ``(..., H, W, 3|4)`` RGB(A) array of
                any integer or float dtype (see :mod:`tinct.engine.inputs`). Never modified.
            hints: :class:`~tinct.engine.hints.Hint` list (image pixel coordinates),
                applied to every plane.
            reference: Optional ``(H', W', 3|4)`` colour image whose colour
                histogram guides the result (global hint).
            temperature: Decoder temperature (> 0); ``None`` = options/model default.
            decoder: Decoder name or ``"ab"`` (regression head).
            mrf_weight: MRF smoothing strength (0 = off).
            mrf_iters: MRF iterations.
            tile: Tile side in network pixels; ``0`` = never tile; ``None`` =
                options (automatic for huge images).
            options: Options for this call (defaults: the colorizer's).
            progress: ``progress(fraction, message)`` callback.
            propagation: Edge-aware hint propagation strength (see
                :class:`~tinct.engine.options.ColorizeOptions`); ``None`` = the model's.
            rgb: Force/forbid reading the last axis as colour channels.
            cancel: Object with ``is_set()`` (e.g. ``threading.Event``); raises
                :class:`~tinct.cancel.Cancelled` when set.
            temporal: Colorize the stack as a sequence along ``axis`` (time or
                depth): colour holds still where content persists and hints
                carry to the following planes (:mod:`tinct.engine.temporal`). ``None``
                = ``options.temporal``. ``hints`` may then also be
                ``{plane: [Hint | HintStop, ...]}``; a plain list is placed on plane 0.
            axis: The sequence axis among the leading axes of a stack.
            local_hints: Hints stay in their region (:mod:`tinct.engine.reach`); ``None`` = options.

        Returns:
            ``(..., H, W, 3)`` RGB, or ``(..., H, W, 4)`` with the input's alpha;
            uint8 for uint8 input, float32 in ``[0, 1]`` otherwise.

        Raises:
            TypeError: Unsupported input type/dtype.
            ValueError: Invalid input shape/values, hints or options.
        """
        if temporal is None:
            temporal = (options or self.options).temporal
        hinted = bool(hints)
        if isinstance(hints, Mapping):
            if not temporal:
                raise ValueError("hints given by plane ({plane: [hints]}) need temporal=True")
            from tinct.engine.carry import has_colour_hints

            hinted = has_colour_hints(hints)
        opts = self.resolve_options(
            options, hinted=hinted, temperature=temperature, decoder=decoder,
            mrf_weight=mrf_weight, mrf_iters=mrf_iters, tile=tile, propagation=propagation,
        )  # fmt: skip
        opts = opts if local_hints is None else opts.replace(local_hints=bool(local_hints))
        self._check_hints(hinted)
        user_net = (options or self.options).net_size
        if temporal:
            from tinct.engine import temporal as _tm

            return _tm.colorize_sequence(self, image, hints, opts, axis=axis, reference=reference,
                                         rgb=rgb, user_net=user_net, progress=progress,
                                         cancel=cancel)  # fmt: skip
        # the scope carries ``cancel`` into the MRF, Levin solves and rendering
        with self._lock, call_threads(self.num_threads, self.device), _cancel.scope(cancel):
            entry = self._entry(image, hints, reference, opts, rgb, progress, cancel, user_net)  # type: ignore[arg-type]
            out = self._render(entry, opts)
        for note in entry.prepared.notes:
            warnings.warn(note, _in.InputWarning, stacklevel=2)
        if progress:
            progress(1.0, "done")
        return out

    def _check_hints(self, hinted: bool) -> None:
        """Refuse a call without colour hints for a model that colorizes from hints only."""
        cfg = getattr(self.record, "config", None)
        if not hinted and cfg is not None and cfg.hints_required:
            raise ValueError(
                f"model {self.info.name!r} colorizes from colour hints only (without them the "
                "result stays gray); give at least one hint"
            )

    def suggest_colors(
        self,
        image: Any,
        row: float,
        col: float,
        k: int = 9,
        **kwargs: Any,
    ) -> np.ndarray:
        """Colour suggestions at a pixel, as ideepcolor offers them: ``(k, 3)`` uint8 sRGB.

        See :func:`tinct.engine.chroma.suggest_colors` for the arguments
        (``hints``, ``reference``, ``options``, ``plane``, ``rgb``, ``samples``, ``seed``).
        """
        return _chroma.suggest_colors(self, image, row, col, k, **kwargs)

    def inactive_knobs(self, image: Any, **kwargs: Any) -> dict[str, str]:
        """The knobs that cannot change this call's result, each with the reason.

        See :func:`tinct.engine.chroma.inactive_knobs` (same keywords as ``colorize``).
        """
        return _chroma.inactive_knobs(self, image, **kwargs)

    # ------------------------------------------------------------------ internals

    def _entry(
        self,
        image: Any,
        hints: Sequence[Hint],
        reference: Any,
        opts: ColorizeOptions,
        rgb: bool | None,
        progress: ProgressFn | None,
        cancel: Any,
        user_net: int | None,
    ) -> Entry:
        hints = list(hints or ())
        for h in hints:
            if not isinstance(h, Hint):
                raise TypeError(f"hints must be tinct.Hint objects, got {type(h).__name__}")
        arr, is_rgb = _in._validate(image, rgb)
        H, W = arr.shape[-3:-1] if is_rgb else arr.shape[-2:]
        tile, net_long = _fw.plan_tiling(
            self.info, opts.net_size, opts.tile, user_net, (H, W), opts.tile_overlap
        )
        ref = None if reference is None else np.asarray(reference)

        # The image is hashed once; the key of the same request without hints shares it.
        base = digest(
            arr, is_rgb, opts.normalize, opts.percentiles, ref, tile, opts.tile_overlap,
            net_long, opts.hint_size, opts.intensity_range,
        )  # fmt: skip
        key = digest(base, hints_digest(hints), bool(opts.local_hints and hints))  # plain: shared
        if key in self._cache:
            self._cache.move_to_end(key)
            self.stats.cache_hits += 1
            return self._cache[key]
        # A hint edit on an image already colorized without hints: the prepared input and
        # the luminance-only upsampling state do not depend on the hints; reuse them.
        plain_key = digest(base, hints_digest([]), False)
        plain = self._cache.get(plain_key) if hints else None
        if plain is not None:
            self._cache.move_to_end(plain_key)  # kept for the next edit
        prep = plain.prepared if plain is not None else _in.prepare_noted(
            arr, space=self.info.space, normalize=opts.normalize, percentiles=opts.percentiles,
            rgb=is_rgb, intensity_range=opts.intensity_range,
        )  # fmt: skip
        outs = _fw.run_planes(
            self.model, self.info, prep.gray, hints=hints, reference=ref, net_long=net_long,
            tile=tile, tile_overlap=opts.tile_overlap, hint_size=int(opts.hint_size or 5),
            device=self.device, dtype=self.dtype, progress=progress, cancel=cancel,
        )  # fmt: skip
        net = concat_outputs(outs)
        self.stats.forward_calls += net.forward_calls
        self.stats.network_passes += 1
        if net.fusion is not None and hints:
            # how wrong is the network here? its automatic colour under the hints says
            if plain is None:
                plain = self._entry(image, [], reference, opts, rgb, None, cancel, user_net)
            else:
                self.stats.cache_hits += 1
            if plain.net.ab is not None:
                _fusion.apply_trust(net, plain.net.ab, local=bool(opts.local_hints))
        entry = Entry(prep, net)
        if plain is not None and plain.net.net_size == net.net_size:
            entry.work = plain.work = self._work(plain)
        if self.cache_size > 0:
            self._cache[key] = entry
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return entry

    def _decode(self, entry: Entry, opts: ColorizeOptions) -> Tensor:
        return _chroma.decode_chroma(entry, opts, self.info, self._centres)

    def _work(self, entry: Entry) -> Work:
        if entry.work is None:
            entry.work = build_work(entry, self.info.space, self.device)
        return entry.work

    def _chroma(self, entry: Entry, opts: ColorizeOptions) -> Tensor:
        """Chrominance ``(B, 2, h, w)`` as rendered: decoded, hints propagated, flat planes gray."""
        ab = self._decode(entry, opts)
        if opts.propagation and entry.net.patches and self.info.space == "lab":
            ab = _chroma.propagate_hints(entry, ab, float(opts.propagation))
        return _in.neutral_if_featureless(ab, entry.prepared.featureless, bool(entry.net.patches))

    def _render(self, entry: Entry, opts: ColorizeOptions) -> np.ndarray:
        self.stats.decodes += 1
        ab = self._chroma(entry, opts)
        return render(entry, ab, self._work(entry), self.info.space, self._scratch)
