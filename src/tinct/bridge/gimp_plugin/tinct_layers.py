"""The image side of the Tinct Colorize plug-in: the pixels it sends and the layer it adds.

``tinct gimp install`` copies this module next to ``tinct-colorize.py`` (GIMP runs
only the script named like its folder; the script imports this one). Standard
library + GIMP's GObject bindings only.
"""

import sys

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp  # noqa: E402

BABL_RGBA8 = "R'G'B'A u8"
#: The wire's pixel formats and GIMP's (babl) names for them.
BABL = {"rgba8": BABL_RGBA8, "rgba16": "R'G'B'A u16"}
#: Precisions whose layers are sent as 8 bits a channel (all others: 16).
EIGHT_BIT = ("U8_LINEAR", "U8_NON_LINEAR", "U8_PERCEPTUAL")
#: How a layer looks in the image, copied from the source to the result layer: the
#: ``get_<name>`` / ``set_<name>`` pairs of ``Gimp.Layer``, set in this order (the mode
#: before the blend and composite settings that go with it).
LOOK = ("opacity", "mode", "blend_space", "composite_space", "composite_mode", "visible")
#: GIMP's precisions (Image > Precision), by the start of their ``Gimp.Precision`` names, as
#: the server's notes about the layer name them ("16-bit integer: 99.5% of its pixels ...").
PRECISION_NAMES = (
    ("U8", "8-bit integer"),
    ("U16", "16-bit integer"),
    ("U32", "32-bit integer"),
    ("HALF", "16-bit floating point"),
    ("FLOAT", "32-bit floating point"),
    ("DOUBLE", "64-bit floating point"),
)


class UserError(Exception):
    """A problem the user can fix (shown as a message)."""


#: A hint layer of a grayscale image holds gray dots only, which would colour nothing.
GRAY_HINTS = (
    "the image is grayscale, so the dots of its hint layer have no colour: convert it "
    "with Image > Mode > RGB, paint the colour dots again and run Tinct Colorize"
)
#: A hint layer without transparent pixels would be one hint of its mean colour.
OPAQUE_HINTS = (
    "the hint layer %r has no transparent pixels: choose a transparent layer with a few "
    "colour dots painted on it (Layer > New Layer, Fill with: Transparency)"
)
#: The hint layer chosen as the layer to colorize: it is the active layer after painting.
HINTS_ACTIVE = (
    "the layer to colorize, %r, is the hint layer: select the photo's layer in the Layers "
    "dialog, then run Tinct Colorize again"
)
#: A layer (almost) all transparent: most likely the painted dots, not the photo.
MOSTLY_TRANSPARENT = (
    "the layer %r is %d%% transparent, so there is next to nothing to colorize: select the "
    "photo's layer (a layer of painted colour dots goes in Hint layer); for a small "
    "cut-out, use Layer > Crop to Content first"
)
#: Share of fully transparent pixels above which a layer is refused (MOSTLY_TRANSPARENT).
MAX_TRANSPARENT = 0.95


#: What the plug-in says about a server's error, by its code (docs/protocol.md), around the
#: server's message, so that a GIMP user reads what happened, not a protocol code (an
#: unknown model's message says it all). Any other code is named as it is.
SERVER_ERRORS = {
    "too_large": "the layer is too large for the server: %s",
    "bad_request": "the server refused the request: %s",
    "unknown_model": "%s",
    "busy": "the server is busy with other clients (try again in a moment): %s",
    "internal": "the server failed (its log says more): %s",
    "timeout": "the server took too long: %s",
    "closed": "the connection to the server was lost (%s); the image is unchanged",
    "shutting_down": "%s; the image is unchanged",  # "the server is shutting down"
    # never asked by the plug-in: the server stopped the job ("cancelled: the server is
    # shutting down"), so its message already says what happened
    "cancelled": "%s; the image is unchanged",
}


def server_error_message(code, message):
    """What the plug-in says about a server's error ``code`` with its ``message``."""
    if code not in SERVER_ERRORS:
        return "Tinct server error (%s): %s" % (code, message)
    return "Tinct: " + SERVER_ERRORS[code] % message


def pixel_format(image, formats):
    """The wire format to send and ask back: ``rgba16`` or ``rgba8``.

    ``rgba16`` for an image of more than 8 bits a channel (a 16-bit or float scan keeps
    its smooth tones), if the server returns that format (``formats``).
    """
    eight = [getattr(Gimp.Precision, name, None) for name in EIGHT_BIT]
    if image.get_precision() in eight or "rgba16" not in formats:
        return "rgba8"
    return "rgba16"


def precision_name(image):
    """The image's precision as GIMP's Image > Precision menu names it, or None if unknown.

    The plug-in sends it with the pixels (a float layer travels as 16-bit integers), so
    that what the server says about the layer names the precision its user chose.
    """
    precision = image.get_precision()
    for prefix, name in PRECISION_NAMES:
        for curve in ("LINEAR", "NON_LINEAR", "PERCEPTUAL"):
            if precision == getattr(Gimp.Precision, "%s_%s" % (prefix, curve), None):
                return name
    return None


def transparent_share(pixels, fmt="rgba8"):
    """The share (0 to 1) of fully transparent pixels in ``pixels`` of wire format ``fmt``.

    In ``rgba16`` (native byte order, as GEGL gives it) a pixel counts when its alpha is
    below 1/256.
    """
    step = 8 if fmt == "rgba16" else 4
    offset = 3 if step == 4 else (7 if sys.byteorder == "little" else 6)
    alpha = bytes(pixels)[offset::step]
    return alpha.count(0) / len(alpha) if alpha else 0.0


def read_layer(drawable, fmt="rgba8"):
    """The layer's pixels as the plug-in sends them: ``(width, height, bytes)`` in ``fmt``.

    Raises:
        UserError: the layer is more than :data:`MAX_TRANSPARENT` transparent (the painted
            hint dots were left as the active layer, say).
    """
    width, height = drawable.get_width(), drawable.get_height()
    rect = Gegl.Rectangle.new(0, 0, width, height)
    pixels = drawable.get_buffer().get(rect, 1.0, BABL[fmt], Gegl.AbyssPolicy.CLAMP)
    if drawable.has_alpha():
        share = transparent_share(pixels, fmt)
        if share > MAX_TRANSPARENT:
            raise UserError(MOSTLY_TRANSPARENT % (drawable.get_name(), int(share * 100)))
    return width, height, pixels


def read_hints(image, drawable, hint_layer):
    """The hint layer's rgba8 pixels over the drawable's area, or None without one.

    Raises:
        UserError: the hint layer is the layer to colorize, the image is grayscale (its
            dots have no colour), or the hint layer has no transparent pixels (it would be
            one huge hint).
    """
    if hint_layer is None:
        return None
    if hint_layer.get_id() == drawable.get_id():
        raise UserError(HINTS_ACTIVE % drawable.get_name())
    if image.get_base_type() == Gimp.ImageBaseType.GRAY:
        raise UserError(GRAY_HINTS)
    _, dx, dy = drawable.get_offsets()
    _, hx, hy = hint_layer.get_offsets()
    rect = Gegl.Rectangle.new(dx - hx, dy - hy, drawable.get_width(), drawable.get_height())
    hints = hint_layer.get_buffer().get(rect, 1.0, BABL_RGBA8, Gegl.AbyssPolicy.NONE)
    if hints and min(bytes(hints)[3::4]) == 255:
        raise UserError(OPAQUE_HINTS % hint_layer.get_name())
    return hints


def copy_look(
    source: "Gimp.Layer", layer: "Gimp.Layer", names: "tuple[str, ...]" = LOOK
) -> "list[str]":
    """Give ``layer`` the look of ``source``: opacity, layer mode and its spaces, visibility.

    Only what differs is set (each set is a step of the undo group). A mode that fixes
    its blend or composite settings (``normal``, the legacy modes) keeps GIMP's own
    values on both layers, so those compare equal and are left alone.

    Args:
        source: The layer to copy from (``get_<name>()`` for each name).
        layer: The layer to change (``get_<name>()`` and ``set_<name>(value)``).
        names: The properties, in the order they are set.

    Returns:
        list[str]: The names of the properties that were set.
    """
    changed = []
    for name in names:
        value = getattr(source, "get_" + name)()
        if getattr(layer, "get_" + name)() != value:
            getattr(layer, "set_" + name)(value)
            changed.append(name)
    return changed


def add_result(image, drawable, name, pixels, fmt="rgba8", hint_layer=None):
    """Add the colorized pixels as a layer directly above ``drawable``, as one undo step.

    The new layer sits where and as the drawable sits: in its parent (the image or a
    layer group) directly above it, with its size and offsets, and with its opacity,
    layer mode (with its blend and composite settings) and visibility (:data:`LOOK`).
    Where the drawable is hidden by its (applied) layer mask, or outside an active
    selection, the new layer is masked too, so that only what the user sees and selected
    changes colour. A grayscale or indexed image is converted to RGB first;
    ``hint_layer`` is hidden.
    ``pixels`` are in the wire format ``fmt`` (``rgba8`` or ``rgba16``).

    Returns:
        The new layer.
    """
    width, height = drawable.get_width(), drawable.get_height()
    image.undo_group_start()
    try:
        if image.get_base_type() != Gimp.ImageBaseType.RGB:
            image.convert_rgb()  # a GRAY image cannot hold colour
        layer = Gimp.Layer.new(
            image, name, width, height, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL
        )
        image.insert_layer(layer, drawable.get_parent(), image.get_item_position(drawable))
        _, ox, oy = drawable.get_offsets()
        layer.set_offsets(ox, oy)
        copy_look(drawable, layer)
        buffer = layer.get_buffer()
        buffer.set(Gegl.Rectangle.new(0, 0, width, height), BABL[fmt], bytes(pixels))
        buffer.flush()
        layer.update(0, 0, width, height)
        _limit_to_mask_and_selection(image, drawable, layer)
        if hint_layer is not None:
            hint_layer.set_visible(False)  # the dots would hide the result
    finally:
        image.undo_group_end()
    return layer


def _limit_to_mask_and_selection(image, drawable, layer):
    """Give ``layer`` a mask: the drawable's applied layer mask, within the selection.

    Nothing is done when there is neither. The selection is built from them with
    GIMP's own channel operations (feathered edges and 16-bit masks stay as they
    are) and put back as it was afterwards.
    """
    mask = drawable.get_mask()
    if mask is not None and not drawable.get_apply_mask():
        mask = None
    selected = not Gimp.Selection.is_empty(image)
    if mask is None and not selected:
        return
    saved = Gimp.Selection.save(image) if selected else None
    try:
        if mask is not None:
            op = Gimp.ChannelOps.INTERSECT if selected else Gimp.ChannelOps.REPLACE
            image.select_item(op, mask)
        layer.add_mask(layer.create_mask(Gimp.AddMaskType.SELECTION))
    finally:
        if saved is not None:
            image.select_item(Gimp.ChannelOps.REPLACE, saved)
            image.remove_channel(saved)
        else:
            Gimp.Selection.none(image)
