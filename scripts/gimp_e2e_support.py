"""What every case of scripts/gimp_e2e_driver.py uses, inside GIMP 3: the test's settings,
running the plug-in's procedure, building a test image and reading results back.

The driver imports it from TINCT_E2E_LIB, the folder ``tests/gimp_helpers.run_gimp``
copies it to (python-fu-eval reads the driver from stdin, so it has no folder of its own).
Every result is printed as one line ``TINCT-E2E {json}`` (:func:`report`).
"""

import json
import os

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp  # noqa: E402

W, H = 96, 64
PORT = int(os.environ["TINCT_E2E_PORT"])
DEAD_PORT = int(os.environ["TINCT_E2E_DEAD_PORT"])
IMPOSTOR_PORT = int(os.environ.get("TINCT_E2E_IMPOSTOR_PORT") or 0)
TOKEN_FILE = os.environ["TINCT_E2E_TOKEN_FILE"]
OUT = os.environ["TINCT_E2E_OUT"]
PHASE = os.environ.get("TINCT_E2E_PHASE", "first")
HINTS = [(10, 20, (255, 0, 0)), (40, 70, (0, 0, 255))]  # row, col, colour


def report(**kw):
    print("TINCT-E2E " + json.dumps(kw), flush=True)


def gray_pixels():
    return bytes((x * 255 // (W - 1) + y) % 256 for y in range(H) for x in range(W))


def run(proc, image, layer, port, hint=None, model=None, local_hints=False):
    cfg = proc.create_config()
    if model is not None:
        cfg.set_property("model", model)
    cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", [layer])
    cfg.set_property("port", port)
    cfg.set_property("token-file", TOKEN_FILE)
    if hint is not None:
        cfg.set_property("hint-layer", hint)
    if local_hints:
        cfg.set_property("local-hints", True)
    res = proc.run(cfg)
    status = res.index(0)
    message = ""
    if status != Gimp.PDBStatusType.SUCCESS and res.length() > 1:
        message = str(res.index(1))
    return status.value_nick, message


def chroma(layer):
    w, h = layer.get_width(), layer.get_height()
    data = layer.get_buffer().get(
        Gegl.Rectangle.new(0, 0, w, h), 1.0, "R'G'B'A u8", Gegl.AbyssPolicy.CLAMP
    )
    total = 0
    for i in range(0, len(data), 4):
        r, g, b = data[i], data[i + 1], data[i + 2]
        total += max(r, g, b) - min(r, g, b)
    return total / (w * h)


def describe(case, image, status, message):
    layers = image.get_layers()
    top = layers[0]
    report(
        case=case,
        status=status,
        message=message,
        layers=[la.get_name() for la in layers],
        base_type=image.get_base_type().value_nick,
        top_size=[top.get_width(), top.get_height()],
        top_offsets=list(top.get_offsets()[1:]),
        top_chroma=chroma(top),
    )


def registered_models(proc):
    """The model ids GIMP registered for the dialog (aux arguments are not in the PDB,
    so they are read from the plug-in's record of its registration, and checked against
    GIMP's pluginrc by the test)."""
    folder = os.path.join(os.environ["GIMP3_DIRECTORY"], "plug-ins", "tinct-colorize")
    with open(os.path.join(folder, "registered-models.json"), encoding="utf-8") as f:
        return [m[0] for m in json.load(f)["models"]]


def gray_image(pixels=None, precision=None, babl="Y' u8"):
    """A W x H grayscale image with one layer, "bg", of ``pixels`` (default: gray_pixels()).

    ``precision`` (a ``Gimp.Precision``; default 8-bit) is the image's, ``babl`` the format
    of ``pixels``.
    """
    if precision is None:
        img = Gimp.Image.new(W, H, Gimp.ImageBaseType.GRAY)
    else:
        img = Gimp.Image.new_with_precision(W, H, Gimp.ImageBaseType.GRAY, precision)
    bg = Gimp.Layer.new(img, "bg", W, H, Gimp.ImageType.GRAY_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    img.insert_layer(bg, None, 0)
    bg.get_buffer().set(Gegl.Rectangle.new(0, 0, W, H), babl, pixels or gray_pixels())
    return img, bg


def look(layer):
    """Where and how a layer sits: what the result layer must copy from its source."""
    parent = layer.get_parent()
    return {
        "parent": parent.get_name() if parent else None,
        "offsets": list(layer.get_offsets()[1:]), "opacity": round(layer.get_opacity(), 3),
        "mode": layer.get_mode().value_nick, "visible": layer.get_visible(),
        "blend_space": layer.get_blend_space().value_nick,
        "composite_space": layer.get_composite_space().value_nick,
        "composite_mode": layer.get_composite_mode().value_nick,
    }  # fmt: skip
