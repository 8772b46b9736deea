#!/usr/bin/env python3
"""Tinct Colorize: a GIMP 3 plug-in that colorizes a layer with a running tinct server.

The plug-in is a thin, short-lived client: it reads the active layer over GEGL,
sends the pixels (and an optional hint layer) to ``tinct serve`` on 127.0.0.1,
and adds the result as a new layer above the original, named after the model
that made the colour ("Colorized (tinct-base)"); what the server warned about the
input (a nearly black layer, say) is shown as a message. The model never runs inside
GIMP. Standard library + GIMP's GObject bindings only.

Install with ``tinct gimp install``; check the set-up with ``tinct gimp doctor``.
"""

import contextlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
import tinct_wire  # noqa: E402  (tinct.bridge.wire, copied here by `tinct gimp install`)
from gi.repository import Gimp, GLib, GObject  # noqa: E402
from tinct_layers import (  # noqa: E402
    UserError,
    add_result,
    pixel_format,
    precision_name,
    read_hints,
    read_layer,
    server_error_message,
)

PROC_NAME = "plug-in-tinct-colorize"
LAYER_NAME = "Colorized"

#: Used when the server cannot be asked at registration time.
FALLBACK_MODELS = [{"name": "tinct-base", "display_name": "tinct base", "weights": "bundled"}]
#: Used when the server cannot be asked at registration time (tinct.decode.DECODERS + ab).
FALLBACK_DECODERS = [
    "coherent",
    "annealed_mean",
    "mean",
    "median",
    "mode",
    "sample",
    "larsson",
    "ab",
]
DECODER_LABELS = {
    "coherent": "Coherent (no invented colour)",
    "annealed_mean": "Annealed mean",
    "mean": "Mean",
    "median": "Median",
    "mode": "Mode",
    "sample": "Sample",
    "larsson": "Larsson (hue/chroma models)",
    "ab": "Regression head",
}
#: What this plug-in registered with GIMP: the server's model list at that time.
REGISTERED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "registered-models.json")


#: The procedure's arguments: (kind, name, label, description, *values); the two choices
#: get their lists (the server's models, its decoders) when the procedure is made.
ARGUMENTS = [
    ("string", "model", "_Model name",
     "Model name as `tinct models` lists it on the server (empty = the dialog's choice, "
     "else the server default); an unknown name is an error", ""),
    ("choice_aux", "model-choice", "_Model",
     "Colorization model (the server's list, with each model's weight status)"),
    ("double", "temperature", "_Temperature",
     "Decoder temperature: low = saturated, high = muted (0 = model default)", 0.0, 100.0, 0.0),
    ("choice", "decoder", "_Decoder", "How colours are picked from the model's distribution"),
    ("double", "mrf-weight", "MRF _weight",
     "Smoothing weight (0 = model default: off but for models made with an MRF)", 0.0, 100.0,
     0.0),
    ("layer", "hint-layer", "_Hint layer",
     "Layer whose opaque pixels are colour hints (optional)", True),
    ("int", "hint-size", "H_int size",
     "Hint patch side in image pixels (0 = each painted dot's own size)", 0, 64, 0),
    ("boolean", "local-hints", "Loc_al hints",
     "Hints colour the region around them and stop at its edges, instead of spreading over "
     "the whole picture (hint-fusing models such as tinct-base)", False),
    ("int", "port", "_Port", "Server port (0 = read from bridge.json)", 0, 65535, 0),
    ("string", "token-file", "Token _file",
     "bridge.json written by tinct serve (empty = the default location)", ""),
]  # fmt: skip


def layer_name(model, models):
    """The result layer's name: which model made the colour, e.g. "Colorized (tinct-base)".

    ``model`` is the requested name (None = the server's default, listed first).
    """
    used = model or (models[0].get("name") if models else None)
    return "%s (%s)" % (LAYER_NAME, used) if used else LAYER_NAME


def models_signature(models):
    """What the dialog shows of a model list: names, labels and weight states (sorted)."""
    return sorted(
        [str(m.get("name")), str(m.get("display_name") or ""), str(m.get("weights") or "")]
        for m in models
    )


def _server_models(config_path=None, port=None):
    """The running server's model list (dicts), or None when no server answers."""
    try:
        with tinct_wire.BridgeClient(port=port, config_path=config_path, timeout=2.0) as client:
            client.hello()
            return client.models()
    except Exception:
        return None


def _model_label(m):
    state = m.get("weights") or "?"
    if m.get("available") is False:
        state = "no weights"
    return "%s [%s]" % (m.get("display_name") or m["name"], state)


_KEEP = []  # Gimp.Choice objects must outlive the procedure's registration


def _choice(pairs):
    choice = Gimp.Choice.new()
    for i, (ident, label) in enumerate(pairs):
        choice.add(ident, i, label, "")
    _KEEP.append(choice)
    return choice


def _remember(models):
    """Write what was registered, so a later run can tell the server's list changed."""
    with contextlib.suppress(OSError), open(REGISTERED, "w", encoding="utf-8") as f:
        json.dump({"models": models_signature(models)}, f)


def _registered_signature():
    try:
        with open(REGISTERED, encoding="utf-8") as f:
            return json.load(f).get("models")
    except (OSError, ValueError):
        return None


def _registering():
    """GIMP starts a plug-in with ``-query`` (or ``-init``) to register it, ``-run`` to run it.

    ``do_create_procedure`` is called in both; only a registration may record the model
    list that GIMP now holds for the procedure.
    """
    return any(arg in ("-query", "-init") for arg in sys.argv[1:])


def _ask_for_reregistration():
    """Make GIMP query this plug-in again at its next start (it caches by file time)."""
    with contextlib.suppress(OSError):
        os.utime(os.path.abspath(__file__), None)


class TinctColorize(Gimp.PlugIn):
    """Registers Filters > Colors > Tinct Colorize..."""

    def do_query_procedures(self):
        """Names of the procedures this plug-in provides."""
        return [PROC_NAME]

    def do_set_i18n(self, name):
        """No translations."""
        return False

    def do_create_procedure(self, name):
        """Build the procedure with its arguments and menu entry."""
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run, None)
        procedure.set_image_types("RGB*, GRAY*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        procedure.set_menu_label("Tinct _Colorize...")
        procedure.add_menu_path("<Image>/Filters/Colors")
        procedure.set_documentation(
            "Colorize a grayscale layer with tinct",
            "Sends the layer to a running tinct server (start it with: tinct serve) and "
            "adds the result as a new layer above it. Opaque pixels of the optional hint "
            "layer are used as colour hints. A grayscale image is converted to RGB.",
            name,
        )
        procedure.set_attribution("The tinct developers", "The tinct developers", "2025")
        models = _server_models()  # a run's dialog shows the server's list as it is now
        reachable = models is not None
        models = models or FALLBACK_MODELS
        if _registering():
            _remember(models if reachable else [])
        decoders = []
        for m in models:
            for d in m.get("decoders") or []:
                if d not in decoders:
                    decoders.append(d)
        decoders = decoders or FALLBACK_DECODERS
        flags = GObject.ParamFlags.READWRITE
        model_choice = [("default", "Server default")]
        model_choice += [(m["name"], _model_label(m)) for m in models]
        decoder_choice = [("default", "Model default")]
        decoder_choice += [(d, DECODER_LABELS.get(d, d)) for d in decoders]
        for kind, name, label, blurb, *values in ARGUMENTS:
            if kind == "choice_aux":
                values = [_choice(model_choice), "default"]
            elif kind == "choice":
                values = [_choice(decoder_choice), "default"]
            getattr(procedure, "add_%s_argument" % kind)(name, label, blurb, *values, flags)
        return procedure

    # ------------------------------------------------------------------ run
    def run(self, procedure, run_mode, image, drawables, config, run_data):
        """Show the dialog if interactive, colorize, and report errors clearly."""
        if run_mode == Gimp.RunMode.INTERACTIVE:
            gi.require_version("GimpUi", "3.0")
            from gi.repository import GimpUi

            GimpUi.init(PROC_NAME)
            dialog = GimpUi.ProcedureDialog.new(procedure, config, "Tinct Colorize")
            dialog.fill([arg[1] for arg in ARGUMENTS if arg[1] != "model"])  # model: scripts
            ok = dialog.run()
            dialog.destroy()
            if not ok:
                return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
        try:  # the dialog's model, also for Filters > Repeat (its last values)
            self.colorize(image, drawables, config, run_mode != Gimp.RunMode.NONINTERACTIVE)
        except (tinct_wire.ServerNotRunning, tinct_wire.ServerUnverified) as exc:
            # not running, a stale bridge.json, or a process on the port that cannot
            # prove it holds the token: the client sent it neither token nor pixels
            return self.fail(procedure, run_mode, "Tinct: %s" % exc.message)
        except tinct_wire.BridgeError as exc:
            return self.fail(procedure, run_mode, server_error_message(exc.code, exc.message))
        except UserError as exc:
            return self.fail(procedure, run_mode, "Tinct: %s" % exc)
        except Exception as exc:
            return self.fail(
                procedure, run_mode, "Tinct failed: %s: %s" % (type(exc).__name__, exc)
            )
        finally:
            Gimp.progress_end()
        return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())

    @staticmethod
    def fail(procedure, run_mode, message):
        """Return an execution error (GIMP's interface shows it; a script run also logs it)."""
        if run_mode == Gimp.RunMode.NONINTERACTIVE:
            Gimp.message(message)  # from the menus GIMP shows the returned error itself
        return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(message))

    def colorize(self, image, drawables, config, from_dialog=False):
        """Send the layer to the server and add the result as a new layer.

        ``from_dialog``: the settings are the dialog's (an interactive run, or Filters >
        Repeat, which reruns with them), so its *Model* choice counts when the ``model``
        string is empty; a script names the model with ``model``.
        """
        if len(drawables) != 1:
            raise UserError("select exactly one layer")
        drawable = drawables[0]
        if isinstance(drawable, Gimp.LayerMask):  # the mask is being edited: its layer
            drawable = Gimp.Layer.from_mask(drawable)
        if isinstance(drawable, Gimp.Layer) and drawable.is_group():
            raise UserError("%r is a layer group: select one of its layers" % drawable.get_name())
        if not isinstance(drawable, Gimp.Layer):
            raise UserError("the active drawable must be a layer (not a channel or a path)")
        port = config.get_property("port")
        token_file = config.get_property("token-file") or None
        model = (config.get_property("model") or "").strip()
        if not model and from_dialog:
            model = config.get_property("model-choice")
        model = None if model in ("", "default") else model
        decoder = config.get_property("decoder")
        temperature = config.get_property("temperature")
        mrf_weight = config.get_property("mrf-weight")
        hint_layer = config.get_property("hint-layer")
        hint_size = config.get_property("hint-size")
        local_hints = bool(config.get_property("local-hints"))

        Gimp.progress_init("Tinct: contacting the server")
        client = tinct_wire.BridgeClient(port=port or None, config_path=token_file, timeout=120.0)
        with client:
            info = client.hello()  # the mutual handshake: the server proves the token first
            models = client.models()
            if models_signature(models) != _registered_signature():
                _ask_for_reregistration()  # GIMP shows the new list after its next start
            if model is not None:
                _check_model(model, models)
            Gimp.progress_set_text("Tinct: reading pixels")
            fmt = pixel_format(image, info.get("result_formats") or [])
            hints = read_hints(image, drawable, hint_layer)  # first: is it the layer itself?
            width, height, pixels = read_layer(drawable, fmt)

            def progress(fraction, message):
                Gimp.progress_update(max(0.0, min(1.0, fraction)))
                if message:
                    Gimp.progress_set_text("Tinct: %s" % message)

            Gimp.progress_set_text("Tinct: colorizing")
            result = client.colorize(
                width,
                height,
                fmt,
                pixels,
                model=None if model == "default" else model,
                decoder=None if decoder == "default" else decoder,
                temperature=temperature if temperature > 0 else None,
                mrf_weight=mrf_weight if mrf_weight > 0 else None,
                hint_layer=hints,
                hint_size=hint_size or None,
                local_hints=local_hints or None,  # off: not sent, as before the field existed
                result_format=fmt,
                normalize="dtype",  # a photo: full range as is (16-bit data is not stretched)
                precision=precision_name(image),  # how the server's notes name the layer's data
                progress=progress,
            )
        if (result.width, result.height, result.format) != (width, height, fmt):
            raise UserError(
                "the server returned a %dx%d %s image"
                % (result.width, result.height, result.format)
            )

        layer = add_result(
            image,
            drawable,
            layer_name(model, models),
            result.pixels,
            fmt,
            hint_layer=hint_layer if hints is not None else None,
        )
        Gimp.displays_flush()
        Gimp.progress_update(1.0)
        tell_warnings(getattr(result, "warnings", None) or [])
        return layer


def warnings_message(warnings):
    """One message for what the server said about the input (why the result looks poor).

    Returns None when it said nothing.
    """
    if not warnings:
        return None
    if len(warnings) == 1:
        return "Tinct warning: %s" % warnings[0]
    return "Tinct warnings:\n" + "\n".join("- %s" % w for w in warnings)


def tell_warnings(warnings):
    """Show the server's warnings once the result layer is in the image.

    ``Gimp.message`` never waits for the user: GIMP shows it in its message window
    or Error Console, and in batch mode prints it, so a script carries on.
    """
    message = warnings_message(warnings)
    if message:
        Gimp.message(message)


def _check_model(name, models):
    """Refuse a model the server does not have or cannot run (never a silent default)."""
    match = [m for m in models if m.get("name") == name]
    if not match:
        names = ", ".join(m.get("name", "?") for m in models)
        raise UserError(
            "unknown model %r; the server has: %s (restart GIMP if the server's list changed)"
            % (name, names)
        )
    if match[0].get("available") is False:
        reason = match[0].get("reason") or "model %r cannot run on the server" % name
        raise UserError(reason + ", and serve it with `tinct serve --model PATH`")


status = Gimp.main(TinctColorize.__gtype__, sys.argv)
# End without Python's teardown: it would free the registration's Gimp.Choice objects
# (_KEEP) once more, after GIMP's own parameter specs have, and crash the plug-in at exit
# ("fatal error: Segmentation fault" each time GIMP registers it).
sys.stdout.flush()
sys.stderr.flush()
os._exit(status or 0)
