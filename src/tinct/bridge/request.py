"""The ``colorize`` request on the wire: frame in, :class:`ColorizeJob` out, pixels back.

:func:`parse_colorize` checks every header field and payload section of a
``colorize`` frame (:mod:`tinct.bridge.wire`) against the server's limits and the
backend's models, and decodes it into a :class:`~tinct.bridge.backend.ColorizeJob`;
:func:`encode_result` (:mod:`tinct.bridge.result`, also importable from here) turns
what the engine returned into the 8- or 16-bit layout the request asked for. Nothing
here touches sockets: a bridge connection (:mod:`tinct.bridge.connection`) calls
both, around the backend.
"""

from __future__ import annotations

import math
import secrets
from typing import Any, Literal, overload

import numpy as np

from tinct.bridge import wire as P
from tinct.bridge.backend import (
    Backend,
    ColorizeJob,
    PointHint,
    RequestError,
    decoder_applies,
    hint_min_alpha,
)
from tinct.bridge.job_warnings import precision_of
from tinct.bridge.result import encode_result
from tinct.engine.options import ColorizeOptions
from tinct.engine.optionspec import OptionError

__all__ = ["MAX_ID_CHARS", "check_request_id", "encode_result", "parse_colorize", "show"]

#: Longest request ``id`` accepted (it is echoed in every reply).
MAX_ID_CHARS = 128
#: Smallest image side the engine colorizes.
MIN_SIDE = 2


def check_request_id(header: dict[str, Any], key: str = "id") -> str | None:
    """A request id field: a string of 1 to 128 characters, or None when absent.

    Args:
        header: the frame's header.
        key: the field: ``id`` (the request's own), or ``request_id`` (the job a
            ``cancel`` names).

    Raises:
        RequestError: ``bad_request`` for any other value.
    """
    rid = header.get(key)
    if rid is None:
        return None
    if not isinstance(rid, str) or not 0 < len(rid) <= MAX_ID_CHARS:
        raise RequestError(
            P.E_BAD_REQUEST, f'"{key}" must be a string of 1 to {MAX_ID_CHARS} characters'
        )
    return rid


def parse_colorize(
    frame: P.Frame,
    *,
    max_pixels: int,
    backend: Backend,
    max_hints: int = P.DEFAULT_MAX_HINTS,
    max_mrf_iters: int = P.DEFAULT_MAX_MRF_ITERS,
) -> ColorizeJob:
    """Validate a ``colorize`` frame and decode it into a :class:`ColorizeJob`.

    Every malformed field is ``bad_request`` (never a crash); a well-formed
    value beyond a server limit is ``too_large`` with a message that names the
    limit.

    Args:
        frame: the received frame.
        max_pixels: largest accepted image (width x height), for the image and
            the reference.
        backend: its ``models()`` are the names a ``model`` field may take and
            their ``decoders`` the names of ``decoder`` (asked only when the
            request names them).
        max_hints: most hints: point hints plus the blobs of the hint layer.
        max_mrf_iters: most MRF sweeps.

    Returns:
        The decoded job; its ``request_id`` is the frame's ``id`` or a fresh one.

    Raises:
        RequestError: with code ``bad_request``, ``too_large`` or ``unknown_model``.
    """
    h = frame.header
    width = _int_field(h, "width", 1, 1 << 20)
    height = _int_field(h, "height", 1, 1 << 20)
    if width < MIN_SIDE or height < MIN_SIDE:
        raise RequestError(
            P.E_BAD_REQUEST,
            f"the image must be at least {MIN_SIDE}x{MIN_SIDE} pixels (width x height), "
            f"got {width}x{height}",
        )
    engine_side = _engine_limits()[0]
    if width > engine_side or height > engine_side:  # the engine's words are height x width
        raise RequestError(
            P.E_TOO_LARGE,
            f"the image is {width}x{height} pixels, and the engine colorizes images of at "
            f"most {engine_side} pixels a side: scale it down or crop it",
        )
    if width * height > max_pixels:
        raise _too_many_pixels("image", width, height, max_pixels)
    fmt = h.get("format")
    if not isinstance(fmt, str) or fmt not in P.PIXEL_FORMATS:
        raise RequestError(
            P.E_BAD_REQUEST,
            f"unknown pixel format {show(fmt)}; use one of {sorted(P.PIXEL_FORMATS)}",
        )
    pixels = _decode_pixels(frame, "image", width, height, fmt)
    alpha = None
    if fmt in ("rgba8", "rgba16"):
        alpha = pixels[..., 3]
        pixels = pixels[..., :3]
    rid = check_request_id(h) or secrets.token_hex(8)
    model, _decoder = _model_and_decoder(h, backend)
    result_format = h.get("result_format") or ("rgba8" if alpha is not None else "rgb8")
    if not isinstance(result_format, str) or result_format not in P.RESULT_FORMATS:
        raise RequestError(
            P.E_BAD_REQUEST, f"result_format must be one of {list(P.RESULT_FORMATS)}"
        )
    hint_layer = None
    sections = h.get("sections") or {}
    if "hint_layer" in sections:
        sec = sections["hint_layer"]
        if (sec.get("width"), sec.get("height")) != (width, height):
            raise RequestError(P.E_BAD_REQUEST, "the hint layer must have the image's size")
        if sec.get("format", "rgba8") != "rgba8":
            raise RequestError(P.E_BAD_REQUEST, "the hint layer must be rgba8")
        hint_layer = _decode_pixels(frame, "hint_layer", width, height, "rgba8")
    reference = None
    if "reference" in sections:
        sec = sections["reference"]
        try:
            rw = _int_field(sec, "width", 1, 1 << 20)
            rh = _int_field(sec, "height", 1, 1 << 20)
        except RequestError as exc:
            raise RequestError(
                P.E_BAD_REQUEST, f"section 'reference' needs its own size: {exc.message}"
            ) from None
        rfmt = sec.get("format")
        if not isinstance(rfmt, str) or rfmt not in P.PIXEL_FORMATS:
            raise RequestError(
                P.E_BAD_REQUEST, f"reference format must be one of {sorted(P.PIXEL_FORMATS)}"
            )
        if rw * rh > max_pixels:
            raise _too_many_pixels("reference image", rw, rh, max_pixels)
        reference = _decode_pixels(frame, "reference", rw, rh, rfmt)
        if rfmt in ("rgba8", "rgba16"):
            reference = reference[..., :3]
    hints = _parse_hints(h.get("hints"), width, height, max_hints)
    _check_hint_count(len(hints), hint_layer, max_hints)
    mrf_iters = _int_field(h, "mrf_iters", 0, 1 << 31, required=False)
    if mrf_iters is not None and mrf_iters > max_mrf_iters:
        raise RequestError(
            P.E_TOO_LARGE,
            f"mrf_iters={mrf_iters} exceeds the server limit of {max_mrf_iters} (max_mrf_iters)",
        )
    options = _options(h)  # every option field, with the ranges of every front end
    return ColorizeJob(
        image=pixels,
        alpha=alpha,
        model=model or None,
        options=options,
        hints=hints,
        hint_layer=hint_layer,
        hint_size=_int_field(h, "hint_size", 1, 256, required=False),
        reference=reference,
        result_format=result_format,
        request_id=rid,
        precision=precision_of(h, fmt),  # names the data in the warnings sent back
    )


def _options(h: dict[str, Any]) -> ColorizeOptions:
    """The request's :class:`~tinct.engine.options.ColorizeOptions` from its wire fields.

    Ranges and choices are the options' own (one validation for every front end);
    JSON numbers must be numbers, texts texts and switches (``local_hints``) true or
    false, and an error names the field. An absent field keeps its default, so a
    client that predates a field is served as before.
    """
    values = {}
    for key in ColorizeOptions.wire_fields():
        value = h.get(key)
        if value is None:
            continue
        spec = ColorizeOptions.specs()[key]
        if spec.kind in (int, float) and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            raise RequestError(P.E_BAD_REQUEST, f'"{key}" must be a number')
        if spec.kind is str and not isinstance(value, str):
            raise RequestError(P.E_BAD_REQUEST, f'"{key}" must be a string')
        if spec.kind is bool and not isinstance(value, bool):
            raise RequestError(P.E_BAD_REQUEST, f'"{key}" must be true or false')
        if spec.kind == "pair" and not (isinstance(value, list) and len(value) == 2):
            raise RequestError(P.E_BAD_REQUEST, f'"{key}" must be a list of two numbers')
        values[key] = value
    try:
        return ColorizeOptions.from_mapping(values)
    except OptionError as exc:
        raise RequestError(P.E_BAD_REQUEST, exc.message_for("wire")) from None


@overload
def _int_field(
    h: dict[str, Any], key: str, lo: int, hi: int, required: Literal[True] = True
) -> int: ...
@overload
def _int_field(h: dict[str, Any], key: str, lo: int, hi: int, required: bool) -> int | None: ...
def _int_field(h: dict[str, Any], key: str, lo: int, hi: int, required: bool = True) -> int | None:
    """An integer header field in ``[lo, hi]`` (``None`` when absent and not required)."""
    value = h.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise RequestError(P.E_BAD_REQUEST, f'"{key}" must be an integer in [{lo}, {hi}]')
    return value


def _model_and_decoder(h: dict[str, Any], backend: Backend) -> tuple[str | None, str | None]:
    """The ``model`` and ``decoder`` fields, checked against the backend's models."""
    model = h.get("model")
    if model is not None and not isinstance(model, str):
        raise RequestError(P.E_BAD_REQUEST, '"model" must be a string')
    decoder = h.get("decoder")
    if decoder is not None and not isinstance(decoder, str):
        raise RequestError(P.E_BAD_REQUEST, '"decoder" must be a string')
    if not model and not decoder:
        return None, None
    infos = backend.models()
    names = [m.get("name") for m in infos]
    if model and names and model not in names:
        available = ", ".join(map(str, names))
        raise RequestError(
            P.E_UNKNOWN_MODEL, f"unknown model {show(model)}; available: {available}"
        )
    if decoder:
        name = model or backend.default_model
        info = next((m for m in infos if m.get("name") == name), {})
        choices = info.get("decoders")
        if isinstance(choices, list) and choices and not decoder_applies(decoder, choices):
            raise RequestError(  # read by a GIMP user: names, not a Python list
                P.E_BAD_REQUEST,
                f"model {show(name)} has no decoder {show(decoder)}; it has: "
                f"{', '.join(map(str, choices))} (or leave the decoder to the model's default)",
            )
    return model or None, decoder or None


def _check_hint_count(points: int, hint_layer: np.ndarray | None, max_hints: int) -> None:
    """Refuse more than ``max_hints`` point hints plus hint-layer blobs."""
    blobs = 0
    if hint_layer is not None:
        from scipy import ndimage

        mask = hint_layer[..., 3] >= hint_min_alpha(hint_layer)  # the blobs the engine gets
        if points + int(mask.sum()) > max_hints:  # cheap bound before labelling
            blobs = ndimage.label(mask, structure=np.ones((3, 3), bool))[1]
    if points + blobs > max_hints:
        raise RequestError(
            P.E_TOO_LARGE,
            f"{points} hints and {blobs} hint-layer blobs exceed the server limit of "
            f"{max_hints} hints (max_hints; tinct serve --max-hints)",
        )


def _too_many_pixels(what: str, width: int, height: int, max_pixels: int) -> RequestError:
    """``too_large`` in the words of the person who reads it (a GIMP user): megapixels.

    E.g. "the image is 9000x8000 pixels (72 megapixels), more than this server's limit of
    67.1 megapixels: scale it down or crop it, or whoever runs the server can raise the
    limit (tinct serve --max-megapixels 72)"; beyond the engine's own limit (2^31 pixels)
    no flag would help, and it says so instead.
    """
    need = math.ceil(width * height / 1e5) / 10  # the limit that would take it, 0.1 MP steps
    size = f"the {what} is {width}x{height} pixels ({width * height / 1e6:.3g} megapixels)"
    engine_pixels = _engine_limits()[1]
    if width * height > engine_pixels:  # no limit a server may set would take it
        return RequestError(
            P.E_TOO_LARGE,
            f"{size}, more than the engine colorizes ({engine_pixels / 1e6:.4g} megapixels): "
            "scale it down or crop it",
        )
    return RequestError(
        P.E_TOO_LARGE,
        f"{size}, more than this server's limit of {max_pixels / 1e6:.3g} megapixels: scale it "
        "down or crop it, or whoever runs the server can raise the limit "
        f"(tinct serve --max-megapixels {need:g})",
    )


def _engine_limits() -> tuple[int, int]:
    """The engine's largest image: its longest side and its most pixels (MAX_SIDE, MAX_PIXELS)."""
    from tinct.engine.inputs import MAX_PIXELS, MAX_SIDE

    return MAX_SIDE, MAX_PIXELS


def _parse_hints(raw: Any, width: int, height: int, max_hints: int) -> tuple[PointHint, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise RequestError(P.E_BAD_REQUEST, '"hints" must be a list')
    if len(raw) > max_hints:
        raise RequestError(
            P.E_TOO_LARGE,
            f"{len(raw)} hints exceed the server limit of {max_hints} hints "
            "(max_hints; tinct serve --max-hints)",
        )
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise RequestError(P.E_BAD_REQUEST, f"hint {i} must be an object")
        try:
            row = _int_field(item, "row", 0, height - 1)
            col = _int_field(item, "col", 0, width - 1)
            rgb = tuple(_int_field(item, c, 0, 255) for c in "rgb")
            size = _int_field(item, "size", 1, 256, required=False)
        except RequestError as exc:
            raise RequestError(P.E_BAD_REQUEST, f"hint {i}: {exc.message}") from None
        out.append(PointHint(row, col, rgb, size))  # type: ignore[arg-type]
    return tuple(out)


def _decode_pixels(frame: P.Frame, name: str, width: int, height: int, fmt: str) -> np.ndarray:
    view = frame.section(name)
    if view is None:
        raise RequestError(P.E_BAD_REQUEST, f"missing payload section {name!r}")
    bpp = P.PIXEL_FORMATS[fmt]
    if view.nbytes != width * height * bpp:
        raise RequestError(
            P.E_BAD_REQUEST,
            f"section {name!r} has {view.nbytes} bytes; {width}x{height} {fmt} needs "
            f"{width * height * bpp}",
        )
    dtype = np.dtype("<u2") if fmt.endswith("16") else np.dtype(np.uint8)
    arr = np.frombuffer(view, dtype=dtype)
    channels = bpp // dtype.itemsize
    return arr.reshape(height, width) if channels == 1 else arr.reshape(height, width, channels)


def show(value: Any, limit: int = 60) -> str:
    """``repr(value)``, shortened: how a client's value appears in a message or the log.

    The repr escapes line breaks and control characters, so a client cannot forge
    log lines, and the limit keeps a huge value from being echoed or logged whole.
    """
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
