"""Model choice of the napari Colorize widget (a mix-in of the widget).

The model list comes from the registry with each model's weight status; a
model without weights cannot run (the reason is shown); a ``.safetensors`` file
from ``tinct train`` joins the list; the option controls follow the selected
model (defaults, decoders, knobs greyed out with their reason); the options of
a run are one :class:`tinct.ColorizeOptions`; loaded colorizers live in the
engine's one cache (:mod:`tinct.engine.shared`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image

from tinct.napari_plugin import logic
from tinct.napari_plugin import options_panel as opt_ui
from tinct.napari_plugin.status_line import cut

__all__ = ["REFERENCE_TIP", "ModelMixin", "defaults_note", "reference_reason"]

#: Tooltip of the reference box.
REFERENCE_TIP = (
    "A colour (RGB) image layer whose colours guide the result: a global hint, or a "
    "colour histogram that weights the model's colour distribution."
)


def reference_reason(choice: logic.ModelChoice) -> str | None:
    """Why a reference image cannot act on this model (``None``: it can).

    The engine uses one for a global-hint input and, on other models, weights their
    colour distribution by its histogram (:mod:`tinct.engine.conditioning`).
    """
    if choice.global_hint or choice.distribution:
        return None
    return "this model has neither a global-hint input nor a colour distribution"


def defaults_note(name: str, before: tuple[str, float], widget: Any) -> str:
    """What a model change did to the decoder and temperature the user had set.

    Args:
        name: The model now selected.
        before: ``(decoder, temperature)`` before the change.
        widget: The widget (its ``decoder`` and ``temperature`` now).

    Returns:
        ``""`` when neither changed, else e.g. ``"zhang-eccv16's defaults: temperature
        0.70 -> 0.38, decoder mode -> auto"``.
    """
    decoder, temperature = widget.decoder.value, float(widget.temperature.value)
    parts = []
    if round(temperature, 2) != round(before[1], 2):
        parts.append(f"temperature {before[1]:.2f} -> {temperature:.2f}")
    if decoder != before[0]:
        parts.append(f"decoder {before[0]} -> {decoder}")
    return f"{logic.model_label(name)}'s defaults: {', '.join(parts)}" if parts else ""


class ModelMixin:
    """Model list, weights files, option controls and the colorizers of the widget."""

    if TYPE_CHECKING:  # the rest of ColorizeWidget, which this mix-in is part of

        def __getattr__(self, name: str) -> Any: ...

    # provided by ColorizeWidget
    _choices: dict[str, logic.ModelChoice]
    _decoders: tuple[str, ...]
    _image_layer: Any
    _viewer: Any
    controls: opt_ui.OptionControls

    @property
    def choice(self) -> logic.ModelChoice:
        """The selected model's :class:`~tinct.napari_plugin.logic.ModelChoice`."""
        return self._choices[self.model.value]

    def _model_list(self, _widget: Any = None) -> list[tuple[str, str]]:
        """``(label, name)`` of every model (a choices callable: survives ``reset_choices``)."""
        return [(c.label, c.name) for c in self._choices.values()]

    def _reference_layers(self, _widget: Any = None) -> list[tuple[str, Image]]:
        """``(name, layer)`` of the colour image layers (the reference box's choices callable)."""
        return [
            (lyr.name, lyr) for lyr in self._viewer.layers if isinstance(lyr, Image) and lyr.rgb
        ]

    def _on_model_changed(self, name: str) -> None:
        choice = self._choices[name]
        reason = reference_reason(choice)
        self.reference.enabled = reason is None
        self.reference.tooltip = REFERENCE_TIP + (f"\nNo effect: {reason}." if reason else "")
        previous, self._shown_model = getattr(self, "_shown_model", None), name
        before = (self.decoder.value, float(self.temperature.value))
        self.decoder.reset_choices()
        if name != previous:  # another model: its defaults (the same one keeps the user's)
            self.decoder.value = logic.AUTO_DECODER
            if choice.distribution:
                self.temperature.value = choice.default_temperature
        note = "" if previous is None else defaults_note(name, before, self)
        self.model.tooltip = f"Model (registry: `tinct models`); weights: {choice.status}." + (
            f"\n{choice.reason}." if choice.reason else ""
        )
        self.run_button.enabled = choice.available
        if not choice.available:
            self.status.value = cut(f"cannot run: {choice.reason}")
        elif note:  # what the user set was changed: said, not silent
            self.status.value = cut(note)
        elif self.status.value.startswith("cannot run:") or "'s defaults: " in self.status.value:
            self.status.value = ""  # about another model
        self._update_knobs()
        self._live_changed(decode_only=False)

    def _has_hints(self) -> bool:
        layer = self.hints.value
        return layer is not None and len(layer.data) > 0

    def _update_knobs(self) -> dict[str, str]:
        """Grey out the knobs that cannot act now (model, decoder, hints), with reasons."""
        model = getattr(self, "model", None)
        if model is None or getattr(self, "controls", None) is None:
            return {}
        run = getattr(self, "_run_inactive", None)  # from the last run, if nothing changed
        return opt_ui.show_knob_state(
            self.controls,
            self.choice,
            hinted=self._has_hints(),
            local_hints=getattr(self, "local_hints", None),
            extra=run[1] if run is not None and run[0] == self._knob_key() else None,
        )

    def _knob_key(self) -> tuple[Any, ...]:
        """What a run's own knob reasons depend on: the model, the hints, local hints."""
        layer = self.hints.value
        points = () if layer is None else tuple(np.round(layer.data, 1).ravel().tolist())
        colours = () if layer is None else tuple(np.round(layer.face_color, 3).ravel().tolist())
        local = bool(getattr(getattr(self, "local_hints", None), "value", False))
        return (self.model.value, points, colours, local)

    def _decoder_choices(self, _widget: Any = None) -> list[str]:
        """Decoders of the selected model (``auto`` first); a magicgui choices callable."""
        model = getattr(self, "model", None)
        if model is None:
            return [logic.AUTO_DECODER, *self._decoders]
        return logic.decoder_choices(self._choices[model.value], self._decoders)

    @property
    def viewer(self) -> Any:
        """The viewer this widget belongs to."""
        return self._viewer

    def refresh_models(self, select: str | None = None) -> None:
        """Re-read the model list from the registry (e.g. after a user model was trained).

        Weights files loaded in the widget stay in the list. A selected model that
        went away (a removed user model) gives way to the first one. Loaded user
        models are dropped from the colorizer cache (one may have been replaced).

        Args:
            select: Select this model afterwards (if it is in the list).
        """
        from tinct.models import list_models, user_store, weights_status

        user_store.refresh_if_changed()
        files = {k: c for k, c in self._choices.items() if c.source is not None}
        fresh = {c.name: c for c in logic.model_choices(list_models(), weights_status)}
        current = self.model.value
        self._choices = {**fresh, **files}
        from tinct.engine import shared

        shared.clear(user_store.is_user_model)
        self.model.reset_choices()
        if select is not None and select in self._choices:
            self.model.value = select
        elif current not in self._choices:
            self.model.value = next(iter(self._choices))
        if self.model.value == current:  # no change event: the entry itself may be new
            self._on_model_changed(current)

    def load_weights_file(self, path: str | os.PathLike[str]) -> logic.ModelChoice:
        """Add a ``.safetensors`` file (from ``tinct train``) to the model list and select it.

        Args:
            path: The weights file.

        Returns:
            Its model choice (named by the file's path).

        Raises:
            ValueError: Not a tinct weights file (also shown as a notification).
        """
        from pathlib import Path

        from tinct.models import catalog

        path = Path(path)
        try:
            record = catalog.record_for(str(path))
        except Exception as exc:
            self._error(f"cannot load {path.name}: {exc}")
            raise ValueError(str(exc)) from None
        base = logic.model_choices([record], lambda _r: "file")[0]
        choice = dataclasses.replace(
            base, name=str(path), label=f"{path.stem} [file]", source=str(path)
        )
        self._choices[choice.name] = choice
        self.model.reset_choices()
        self.model.value = choice.name
        return choice

    def _on_weights_file(self, value: Any) -> None:
        if value and str(value).endswith(".safetensors") and os.path.isfile(value):
            with contextlib.suppress(ValueError):  # already reported
                self.load_weights_file(value)

    def _weights_file_typed(self) -> None:
        """The weights-file path was typed (Enter or focus out): say why it was not loaded.

        A path that names a ``.safetensors`` file is loaded as it is typed
        (:meth:`_on_weights_file`); the others were ignored without a word.
        """
        text = str(self.weights_file.line_edit.value)
        if self.status.value.startswith("error: weights file"):  # about the text replaced
            self.status.value = ""
        if not text.strip():
            return
        if not os.path.isfile(text):  # quoted: a stray space in the path shows
            self._error(f"weights file: no file at {text!r}")
        elif not text.endswith(".safetensors"):
            self._error(
                f"weights file {os.path.basename(text)!r}: choose a .safetensors file "
                "written by `tinct train`"
            )

    def _on_image_changed(self, layer: Image | None) -> None:
        self._hide_swatches()  # suggestions belong to the previous image
        self._hints_follow_image(layer)  # and hints made for it are not this one's
        old = self._image_layer
        if old is not None and old is not layer:
            with contextlib.suppress(Exception):
                old.events.contrast_limits.disconnect(self._on_contrast_changed)
        self._image_layer = layer
        if layer is not None and layer is not old:
            layer.events.contrast_limits.connect(self._on_contrast_changed)
        self._live_changed(decode_only=False)

    def _on_contrast_changed(self, *_: Any) -> None:
        if self.normalization.value == "contrast":
            self._live_changed(decode_only=False)

    def options(self, layer: Any = None) -> Any:
        """The :class:`tinct.ColorizeOptions` the controls describe (for ``layer``'s contrast).

        Raises:
            tinct.engine.options.OptionError: A control value out of range.
        """
        source = layer if layer is not None else self.image.value
        return opt_ui.collect(self.controls, self.choice, source, self.device.value)

    def get_colorizer(self, model: str | None = None, device: str | None = None) -> Any:
        """The loaded colorizer for a model and device (loaded on first use).

        Args:
            model: Registry name; default: the selected model.
            device: Device name; default: the selected device.

        Returns:
            The colorizer, shared with the bridge server.
        """
        from tinct.engine import shared

        model, device = model or self.model.value, device or self.device.value
        factory = self.colorizer_factory
        return shared.get_or_make(
            self._colorizer_key(model, device), lambda: factory(model, device), model=model
        )

    def _colorizer_key(self, model: str, device: str) -> tuple[Any, ...]:
        """The widget's key in the engine's colorizer cache (:mod:`tinct.engine.shared`)."""
        return ("napari", self.colorizer_factory, model, device)

    def _colorizer_loaded(self, model: str, device: str) -> bool:
        from tinct.engine import shared

        return shared.contains(self._colorizer_key(model, device))
