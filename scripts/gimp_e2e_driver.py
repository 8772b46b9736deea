"""Driver for tests/bridge/test_gimp_e2e.py, run inside GIMP 3 by python-fu-eval (stdin).

Environment: TINCT_E2E_PORT, TINCT_E2E_TOKEN_FILE, TINCT_E2E_OUT (a folder),
TINCT_E2E_DEAD_PORT (a closed port for the "server not running" case) and,
optionally, TINCT_E2E_IMPOSTOR_PORT (a port where something that is not the
server listens). TINCT_E2E_PHASE picks the cases: ``first`` (colorize, hints with
"Local hints" on, no server, impostor), ``list`` (the registered models only) or ``restarted``
(after a server restart with another model list: the models GIMP registered, a
model new on the server, an unknown name, a model without weights, Filters > Repeat after
the dialog chose the new model),
``masked`` (a layer mask and a selection limit the result; a 16-bit scan keeps its
tones; the server stops during a run), ``placed`` (the result takes its source's
place and look: parent, position, offsets, opacity, mode, visibility), ``noted`` (nearly
black layers of three precisions: the plug-in says why the result is dark) or ``served`` (the
server's default model and TINCT_E2E_MODEL by name, each result saved as OUT/<case>.png).
Every result is printed as one line ``TINCT-E2E {json}`` for the test to parse. What
every case uses (settings, running the procedure, reading layers) is
scripts/gimp_e2e_support.py, imported from TINCT_E2E_LIB.
"""

import json
import os
import struct
import sys

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

sys.path.insert(0, os.environ["TINCT_E2E_LIB"])
from gimp_e2e_support import (  # noqa: E402  (scripts/gimp_e2e_support.py)
    DEAD_PORT,
    HINTS,
    IMPOSTOR_PORT,
    OUT,
    PHASE,
    PORT,
    TOKEN_FILE,
    H,
    W,
    chroma,
    describe,
    gray_image,
    gray_pixels,
    look,
    registered_models,
    report,
    run,
)


def restarted(proc):
    """After a server restart with another model list."""
    for case, model in (
        ("new-model", os.environ["TINCT_E2E_NEW_MODEL"]),
        ("unknown-model", "no-such-model"),
        ("no-weights", "tinct-small"),
    ):
        img, bg = gray_image()
        status, message = run(proc, img, bg, PORT, model=model)
        report(case=case, status=status, message=message,
               layers=[la.get_name() for la in img.get_layers()])  # fmt: skip
        img.delete()
    repeat(proc, os.environ["TINCT_E2E_NEW_MODEL"])
    report(case="done")


def repeat(proc, model):
    """Filters > Repeat (WITH_LAST_VALS) after a dialog run that chose ``model``: the
    settings file GIMP 3.0 writes when the dialog's OK is clicked, then the rerun."""
    folder = os.path.join(os.environ["GIMP3_DIRECTORY"], "plug-in-settings")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "GimpProcedureConfigRun-plug-in-tinct-colorize.last"),
              "w", encoding="utf-8") as f:  # fmt: skip
        f.write(
            f'# settings\n\n(model "")\n(port {PORT})\n(token-file "{TOKEN_FILE}")\n'
            f'(model-choice "{model}")\n\n# end of settings\n'
        )
    img, bg = gray_image()
    cfg = proc.create_config()
    cfg.set_property("run-mode", Gimp.RunMode.WITH_LAST_VALS)
    cfg.set_property("image", img)
    cfg.set_core_object_array("drawables", [bg])
    status = proc.run(cfg).index(0).value_nick
    report(case="repeat", status=status, layers=[la.get_name() for la in img.get_layers()])
    img.delete()


def served(proc):
    """The server's default model, then TINCT_E2E_MODEL chosen by name."""
    for case, model in (("default", None), ("by-name", os.environ["TINCT_E2E_MODEL"])):
        img, bg = gray_image()
        status, message = run(proc, img, bg, PORT, model=model)
        describe(case, img, status, message)
        out = Gio.File.new_for_path(f"{OUT}/{case}.png")
        Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, img, out, None)
        img.delete()
    report(case="done")


def masked(proc):
    """A layer with alpha and a layer mask (right half hidden) and a selection: the new
    layer is masked to what is both visible and selected; the selection stays."""
    img = Gimp.Image.new(W, H, Gimp.ImageBaseType.RGB)
    rgba = Gimp.ImageType.RGBA_IMAGE
    layer = Gimp.Layer.new(img, "photo", W, H, rgba, 100.0, Gimp.LayerMode.NORMAL)
    img.insert_layer(layer, None, 0)
    rect = Gegl.Rectangle.new(0, 0, W, H)
    layer.get_buffer().set(
        rect, "R'G'B'A u8", bytes(v for g in gray_pixels() for v in (g, g, g, 255))
    )
    mask = layer.create_mask(Gimp.AddMaskType.WHITE)
    layer.add_mask(mask)
    mask.get_buffer().set(
        rect, "Y u8", bytes(255 * (x < W // 2) for _ in range(H) for x in range(W))
    )
    img.select_rectangle(Gimp.ChannelOps.REPLACE, 8, 8, 64, 40)
    status, message = run(proc, img, layer, PORT)
    new_mask = img.get_layers()[0].get_mask()
    values = (
        new_mask.get_buffer().get(rect, 1.0, "Y u8", Gegl.AbyssPolicy.CLAMP) if new_mask else b""
    )
    at = {
        k: values[y * W + x] if values else None
        for k, (x, y) in {"selected": (20, 20), "hidden": (60, 20), "outside": (2, 2)}.items()
    }
    report(case="masked", status=status, message=message, mask=at,
           layers=[la.get_name() for la in img.get_layers()], channels=len(img.get_channels()),
           selection=list(Gimp.Selection.bounds(img)[1:]))  # fmt: skip
    Gimp.file_save(
        Gimp.RunMode.NONINTERACTIVE, img, Gio.File.new_for_path(OUT + "/masked.png"), None
    )
    img.delete()
    # A 16-bit grayscale scan whose ramp spans a few 8-bit levels only: its tones are kept.
    u16 = Gimp.Precision.U16_NON_LINEAR
    img = Gimp.Image.new_with_precision(W, H, Gimp.ImageBaseType.GRAY, u16)
    gray = Gimp.ImageType.GRAY_IMAGE
    bg = Gimp.Layer.new(img, "scan", W, H, gray, 100.0, Gimp.LayerMode.NORMAL)
    img.insert_layer(bg, None, 0)
    ramp = b"".join((20000 + 8 * x).to_bytes(2, "little") for _ in range(H) for x in range(W))
    bg.get_buffer().set(rect, "Y' u16", ramp)
    status, message = run(proc, img, bg, PORT)
    row = (
        img.get_layers()[0]
        .get_buffer()
        .get(Gegl.Rectangle.new(0, 10, W, 1), 1.0, "R'G'B'A u16", Gegl.AbyssPolicy.CLAMP)
    )
    report(case="gray16", status=status, message=message,
           levels=len({bytes(row[i : i + 2]) for i in range(0, len(row), 8)}),
           precision=img.get_precision().value_nick)  # fmt: skip
    img.delete()
    # The layer's mask is the active drawable (the user edits it): its layer is colorized;
    # a layer group is refused with what to do.
    img, bg = gray_image()
    bg.add_mask(bg.create_mask(Gimp.AddMaskType.WHITE))
    group = Gimp.GroupLayer.new(img, "group")
    img.insert_layer(group, None, 0)
    mask_run = run(proc, img, bg.get_mask(), PORT)
    group_run = run(proc, img, group, PORT)
    report(case="active-mask", status=mask_run[0], message=mask_run[1],
           group=list(group_run), layers=[la.get_name() for la in img.get_layers()])  # fmt: skip
    img.delete()
    # The server stops while it colorizes this 50x40 image (the test sees to it).
    img = Gimp.Image.new(50, 40, Gimp.ImageBaseType.GRAY)
    bg = Gimp.Layer.new(img, "bg", 50, 40, gray, 100.0, Gimp.LayerMode.NORMAL)
    img.insert_layer(bg, None, 0)
    status, message = run(proc, img, bg, PORT)
    report(case="stopped", status=status, message=message,
           layers=[la.get_name() for la in img.get_layers()])  # fmt: skip
    img.delete()
    report(case="done")


def placed(proc):
    """A hidden 60 % multiply layer in a group and a visible 35 % screen layer at the top,
    each offset and between two others: each result copies its source's place and look."""
    img = Gimp.Image.new(W + 10, H + 6, Gimp.ImageBaseType.RGB)
    group = Gimp.GroupLayer.new(img, "group")
    img.insert_layer(group, None, 0)
    lm, space, layers = Gimp.LayerMode, Gimp.LayerColorSpace, {}
    for name, parent, pos, opacity, mode, visible, offsets in (
        ("below", group, 0, 100.0, lm.NORMAL, True, (0, 0)),
        ("in-group", group, 0, 60.0, lm.MULTIPLY, False, (5, 3)),
        ("above", group, 0, 100.0, lm.NORMAL, True, (0, 0)),
        ("bg", None, 1, 100.0, lm.NORMAL, True, (0, 0)),
        ("top", None, 1, 35.0, lm.SCREEN, True, (-4, 2)),
    ):
        layer = Gimp.Layer.new(img, name, W, H, Gimp.ImageType.RGB_IMAGE, opacity, mode)
        img.insert_layer(layer, parent, pos)
        layer.set_offsets(*offsets)
        layer.set_visible(visible)
        layer.get_buffer().set(Gegl.Rectangle.new(0, 0, W, H), "R'G'B' u8",
                               bytes(v for g in gray_pixels() for v in (g, g, g)))  # fmt: skip
        layers[name] = layer
    layers["in-group"].set_blend_space(space.RGB_LINEAR)
    layers["in-group"].set_composite_space(space.RGB_PERCEPTUAL)
    layers["in-group"].set_composite_mode(Gimp.LayerCompositeMode.CLIP_TO_BACKDROP)
    for case in ("in-group", "top"):
        source = layers[case]
        status, message = run(proc, img, source, PORT)
        siblings = source.get_parent().get_children() if case != "top" else img.get_layers()
        above = siblings[max(0, img.get_item_position(source) - 1)]
        report(case="placed-" + case, status=status, message=message, source=look(source),
               result=look(above), result_name=above.get_name(),
               siblings=[la.get_name() for la in siblings])  # fmt: skip
    img.delete()
    report(case="done")


def noted(proc):
    """A nearly black scan at 8 bits, 16 bits and 32-bit float, then a plain one: only the
    dark runs show a message, why the result is dark, naming the layer's precision. The
    plug-in's messages go to GIMP's stderr in batch mode, so each run sits between two
    messages of the driver's own, "TINCT-E2E-MARK begin|end <case>"."""
    dark = bytes(v % 12 for v in gray_pixels())  # below 5 % gray
    deep = b"".join(struct.pack("<H", v * 257) for v in dark)
    floats = b"".join(struct.pack("<f", v / 255.0) for v in dark)
    cases = (
        ("nearly-black", dark, None, "Y' u8"),
        ("nearly-black-16", deep, Gimp.Precision.U16_NON_LINEAR, "Y' u16"),
        ("nearly-black-float", floats, Gimp.Precision.FLOAT_LINEAR, "Y' float"),
        ("plain", None, None, "Y' u8"),
    )
    for case, pixels, precision, babl in cases:
        img, bg = gray_image(pixels, precision, babl)
        Gimp.message("TINCT-E2E-MARK begin " + case)
        status, message = run(proc, img, bg, PORT)
        Gimp.message("TINCT-E2E-MARK end " + case)
        describe(case, img, status, message)
        img.delete()
    report(case="done")


def main():
    proc = Gimp.get_pdb().lookup_procedure("plug-in-tinct-colorize")
    report(case="registered", ok=proc is not None)
    if proc is None:
        return
    report(case="models", names=registered_models(proc))
    if PHASE == "restarted":
        restarted(proc)
        return
    if PHASE == "served":
        served(proc)
        return
    if PHASE == "masked":
        masked(proc)
        return
    if PHASE == "placed":
        placed(proc)
        return
    if PHASE == "noted":
        noted(proc)
        return
    if PHASE == "list":
        report(case="done")
        return

    # 1. A grayscale image without hints: converted to RGB, layer added.
    img = Gimp.Image.new(W, H, Gimp.ImageBaseType.GRAY)
    bg = Gimp.Layer.new(img, "bg", W, H, Gimp.ImageType.GRAY_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    img.insert_layer(bg, None, 0)
    bg.get_buffer().set(Gegl.Rectangle.new(0, 0, W, H), "Y' u8", gray_pixels())
    status, message = run(proc, img, bg, PORT)
    describe("gray", img, status, message)
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, img, Gio.File.new_for_path(OUT + "/gray.png"), None)
    img.delete()

    # 2. An RGB image with gray content, an offset layer and a hint layer.
    img = Gimp.Image.new(W + 8, H + 4, Gimp.ImageBaseType.RGB)
    bg = Gimp.Layer.new(img, "photo", W, H, Gimp.ImageType.RGB_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    img.insert_layer(bg, None, 0)
    bg.set_offsets(8, 4)
    gray = gray_pixels()
    bg.get_buffer().set(
        Gegl.Rectangle.new(0, 0, W, H), "R'G'B' u8", bytes(v for g in gray for v in (g, g, g))
    )
    hint = Gimp.Layer.new(
        img, "hints", W + 8, H + 4, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL
    )
    img.insert_layer(hint, None, 0)
    data = bytearray((W + 8) * (H + 4) * 4)
    for row, col, rgb in HINTS:  # in image coordinates = drawable + (4, 8)
        i = ((row + 4) * (W + 8) + (col + 8)) * 4
        data[i : i + 4] = bytes((*rgb, 255))
    hint.get_buffer().set(Gegl.Rectangle.new(0, 0, W + 8, H + 4), "R'G'B'A u8", bytes(data))
    status, message = run(proc, img, bg, PORT, hint=hint, local_hints=True)
    layers = img.get_layers()
    colorized = [la for la in layers if la.get_name().startswith("Colorized")]
    report(
        case="hints",
        status=status,
        message=message,
        layers=[la.get_name() for la in layers],
        hint_visible=hint.get_visible(),
        colorized_size=[colorized[0].get_width(), colorized[0].get_height()] if colorized else None,
        colorized_offsets=list(colorized[0].get_offsets()[1:]) if colorized else None,
        colorized_chroma=chroma(colorized[0]) if colorized else 0,
    )
    Gimp.file_save(
        Gimp.RunMode.NONINTERACTIVE, img, Gio.File.new_for_path(OUT + "/hints.png"), None
    )
    img.delete()

    # 3. No server on the port: a clear error, nothing added.
    img = Gimp.Image.new(W, H, Gimp.ImageBaseType.GRAY)
    bg = Gimp.Layer.new(img, "bg", W, H, Gimp.ImageType.GRAY_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    img.insert_layer(bg, None, 0)
    status, message = run(proc, img, bg, DEAD_PORT)
    report(
        case="no-server",
        port=DEAD_PORT,
        status=status,
        message=message,
        layers=[la.get_name() for la in img.get_layers()],
        base_type=img.get_base_type().value_nick,
    )
    img.delete()

    # 4. Something else on the port (a stale bridge.json): refused, nothing sent or added.
    if IMPOSTOR_PORT:
        img = Gimp.Image.new(W, H, Gimp.ImageBaseType.GRAY)
        bg = Gimp.Layer.new(
            img, "bg", W, H, Gimp.ImageType.GRAY_IMAGE, 100.0, Gimp.LayerMode.NORMAL
        )
        img.insert_layer(bg, None, 0)
        bg.get_buffer().set(Gegl.Rectangle.new(0, 0, W, H), "Y' u8", gray_pixels())
        status, message = run(proc, img, bg, IMPOSTOR_PORT)
        report(
            case="impostor",
            status=status,
            message=message,
            layers=[la.get_name() for la in img.get_layers()],
        )
        img.delete()

    # 5. A hint layer in a grayscale image (its dots are gray) and an opaque hint layer:
    #    each refused with what to do, the image untouched.
    for case, rgb in (("gray-hints", False), ("opaque-hints", True)):
        img = Gimp.Image.new(W, H, Gimp.ImageBaseType.RGB if rgb else Gimp.ImageBaseType.GRAY)
        kind = Gimp.ImageType.RGB_IMAGE if rgb else Gimp.ImageType.GRAY_IMAGE
        bg = Gimp.Layer.new(img, "bg", W, H, kind, 100.0, Gimp.LayerMode.NORMAL)
        img.insert_layer(bg, None, 0)
        hk = Gimp.ImageType.RGBA_IMAGE if rgb else Gimp.ImageType.GRAYA_IMAGE
        hint = Gimp.Layer.new(img, "hints", W, H, hk, 100.0, Gimp.LayerMode.NORMAL)
        img.insert_layer(hint, None, 0)
        if rgb:  # every pixel opaque
            babl, data = "R'G'B'A u8", bytes((200, 40, 30, 255)) * (W * H)
        else:  # transparent but for one gray dot
            babl, dots = "Y'A u8", bytearray(2 * W * H)
            dots[(10 * W + 20) * 2 : (10 * W + 20) * 2 + 2] = bytes((128, 255))
            data = bytes(dots)
        hint.get_buffer().set(Gegl.Rectangle.new(0, 0, W, H), babl, data)
        status, message = run(proc, img, bg, PORT, hint=hint)
        report(case=case, status=status, message=message, hint_visible=hint.get_visible(),
               layers=[la.get_name() for la in img.get_layers()],
               base_type=img.get_base_type().value_nick)  # fmt: skip
        img.delete()
    # The dots' layer left active, as it is after painting (chosen as Hint layer too, or
    # not): refused with what to do, not colorized instead of the photo.
    for case, as_hint in (("active-hints", True), ("dots-only", False)):
        img = Gimp.Image.new(W, H, Gimp.ImageBaseType.RGB)
        bg = Gimp.Layer.new(img, "bg", W, H, Gimp.ImageType.RGB_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
        img.insert_layer(bg, None, 0)
        rgba = Gimp.ImageType.RGBA_IMAGE
        hint = Gimp.Layer.new(img, "hints", W, H, rgba, 100.0, Gimp.LayerMode.NORMAL)
        img.insert_layer(hint, None, 0)
        dots = bytearray(4 * W * H)
        dots[(10 * W + 20) * 4 : (10 * W + 20) * 4 + 4] = bytes((200, 40, 30, 255))
        hint.get_buffer().set(Gegl.Rectangle.new(0, 0, W, H), "R'G'B'A u8", bytes(dots))
        status, message = run(proc, img, hint, PORT, hint=hint if as_hint else None)
        report(case=case, status=status, message=message,
               layers=[la.get_name() for la in img.get_layers()])  # fmt: skip
        img.delete()

    # 6. A run does not rewrite the record of what was registered: with one model taken
    #    out of it, the run sees the server's list differ and asks GIMP to query again.
    folder = os.path.join(os.environ["GIMP3_DIRECTORY"], "plug-ins", "tinct-colorize")
    record = os.path.join(folder, "registered-models.json")
    script = os.path.join(folder, "tinct-colorize.py")
    with open(record, encoding="utf-8") as f:
        models = json.load(f)["models"]
    with open(record, "w", encoding="utf-8") as f:
        json.dump({"models": models[:-1]}, f)
    os.utime(script, (1_000_000_000, 1_000_000_000))
    img, bg = gray_image()
    status, message = run(proc, img, bg, PORT)
    img.delete()
    with open(record, encoding="utf-8") as f:
        kept = json.load(f)["models"] == models[:-1]
    report(case="record", status=status, message=message, kept=kept,
           touched=os.stat(script).st_mtime > 1_000_000_000)  # fmt: skip
    report(case="done")


main()
