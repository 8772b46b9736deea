"""Decoding a frame's JSON header within bounds: its values, depth, numbers and strings.

A header may be megabytes long; parsed, tiny values (``[0,0,…]``, ``[[],[],…]``)
cost tens of times their text, so :func:`loads_header` counts them on the bytes
before it parses anything (see :data:`~.spec.DEFAULT_MAX_HEADER_VALUES`), and
checks what it has parsed for depth and strings that UTF-8 cannot hold.

Standard library only: ``tinct gimp install`` copies this package next to the
GIMP plug-in (see :mod:`tinct.bridge.wire`).
"""

from __future__ import annotations

import json

from .spec import (
    _MAX_INT_DIGITS,
    DEFAULT_MAX_HEADER_VALUES,
    E_BAD_FRAME,
    E_TOO_LARGE,
    MAX_JSON_DEPTH,
    ProtocolError,
)

__all__ = [
    "loads_header",
]


def _json_int(text):
    if len(text) > _MAX_INT_DIGITS:
        raise ValueError(f"integer of {len(text)} digits")
    return int(text)


def _json_float(text):
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _json_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _check_json_tree(obj, max_depth):
    """Bound the nesting and reject strings that cannot be UTF-8 (lone surrogates)."""
    stack = [(obj, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value)
        elif isinstance(value, (dict, list)):
            if depth >= max_depth:
                raise ProtocolError(
                    E_BAD_FRAME, f"header nests objects/arrays deeper than {max_depth} levels"
                )
            if isinstance(value, dict):
                for key, item in value.items():
                    _check_text(key)
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in value)


def _check_text(text):
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ProtocolError(
                E_BAD_FRAME, "header holds a string with invalid unicode (a lone surrogate)"
            ) from None


_BRACKETS_ONLY = bytes(b for b in range(256) if b not in b"[]{}")


def _check_shape(raw, max_depth, max_values):
    """Refuse, before parsing, a header with too many values or nested too deep.

    Parsed, every value costs some 50 to 200 bytes, tens of times its text. Values
    are counted as ``[``, ``{`` and ``,``: first in all the bytes, an upper bound
    that costs no memory and passes any real header; only when that is over
    ``max_values`` are the strings left out (commas in strings are no values) and
    the nesting measured, so that a deep header is told so (``bad_frame``, as
    :func:`_check_json_tree` would) unless it is also far too large. Linear time;
    the memory is a few copies of ``raw`` at most.
    """
    if raw.count(b",") + raw.count(b"[") + raw.count(b"{") <= max_values:
        return
    # with the escapes blanked out, every quote left opens or closes a string
    text = raw.replace(b"\\\\", b"__").replace(b'\\"', b"__")
    too_many = ProtocolError(
        E_TOO_LARGE,
        f"header holds more than {max_values} values (its '[', '{{' and ',' outside "
        "strings); the limit grows with the server's max_hints",
    )
    if text.count(b'"') > 4 * max_values + 2:  # a value per 2 strings at least
        raise too_many
    values, pos, brackets = 0, 0, bytearray()
    while True:  # the text before each string
        start = text.find(b'"', pos)
        end = len(text) if start < 0 else start
        values += sum(text.count(c, pos, end) for c in (b",", b"[", b"{"))
        brackets += text[pos:end].translate(None, _BRACKETS_ONLY)
        close = -1 if start < 0 else text.find(b'"', start + 1)
        if close < 0:
            break
        pos = close + 1
    if len(brackets) <= 8 * max_values:  # (longer: refused for its size, however deep)
        for _ in range(max_depth):  # each pass strips at least the innermost level
            brackets = brackets.replace(b"[]", b"").replace(b"{}", b"")
        if b"[]" in brackets or b"{}" in brackets:
            raise ProtocolError(
                E_BAD_FRAME, f"header nests objects/arrays deeper than {max_depth} levels"
            )
    if values > max_values:
        raise too_many


def loads_header(raw, max_depth=MAX_JSON_DEPTH, max_values=DEFAULT_MAX_HEADER_VALUES):
    """Decode header bytes as bounded JSON.

    More than ``max_values`` values (see :data:`DEFAULT_MAX_HEADER_VALUES`) is
    ``too_large``, refused before anything is parsed. Integers longer than 40
    digits, NaN/Infinity and numbers that overflow a float, nesting deeper than
    ``max_depth`` and strings with lone surrogates are ``bad_frame``.

    Raises:
        ProtocolError: ``too_large`` or ``bad_frame`` with a message naming what was wrong.
    """
    raw = bytes(raw)
    _check_shape(raw, max_depth, max_values)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(E_BAD_FRAME, f"header is not valid UTF-8: {exc}") from None
    try:
        obj = json.loads(
            text, parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant
        )
    except RecursionError:
        raise ProtocolError(
            E_BAD_FRAME, f"header nests objects/arrays deeper than {max_depth} levels"
        ) from None
    except ValueError as exc:
        raise ProtocolError(E_BAD_FRAME, f"header is not valid JSON: {exc}") from None
    _check_json_tree(obj, max_depth)
    return obj
