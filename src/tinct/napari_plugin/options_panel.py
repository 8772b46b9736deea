"""The option controls of the napari Colorize widget, built from :class:`tinct.ColorizeOptions`.

Each control takes its label and tooltip from the option's
:class:`~tinct.engine.options.FieldSpec`, so the widget, the CLI and the bridge
describe a knob the same way. :func:`collect` turns the controls into one
:class:`~tinct.ColorizeOptions` (the widget builds nothing else), and
:func:`show_knob_state` greys out the knobs that cannot act on the selected
model in the current mode, with the reason in the tooltip and in a note
under the controls (:func:`tinct.models.catalog.inactive_knobs`).
"""

from __future__ import annotations

from typing import Any

from magicgui.widgets import ComboBox, FloatSlider, FloatSpinBox, Label, SpinBox

from tinct.engine.options import ColorizeOptions
from tinct.napari_plugin import logic

__all__ = ["OptionControls", "collect", "show_knob_state"]

#: Knobs the widget has a control for (the rest keep their defaults).
CONTROLLED = ("temperature", "decoder", "mrf_weight", "mrf_iters")


def _tip(name: str) -> str:
    spec = ColorizeOptions.specs()[name]
    return spec.help[0].upper() + spec.help[1:] + "."


class OptionControls:
    """The widgets of the colorization options (added to the dock by the widget).

    Attributes:
        temperature: Decoder temperature slider.
        decoder: Decoder box (``auto`` first; choices from the selected model).
        mrf_weight: MRF smoothing weight.
        mrf_iters: MRF iterations.
        normalization: How intensities map to gray (default: the layer's contrast limits).
        note: Says which knobs have no effect now, and why.
    """

    def __init__(self, decoder_choices: Any) -> None:
        label = ColorizeOptions.name_in
        self.temperature = FloatSlider(
            value=0.38, min=0.01, max=2.0, step=0.01, label=label("temperature", "gui"),
            tooltip=_tip("temperature"),
        )  # fmt: skip
        self.decoder = ComboBox(
            choices=decoder_choices, label=label("decoder", "gui"), tooltip=_tip("decoder")
        )
        self.mrf_weight = FloatSpinBox(
            value=0.0, min=0.0, max=20.0, step=0.1, label=label("mrf_weight", "gui"),
            tooltip=_tip("mrf_weight"),
        )  # fmt: skip
        self.mrf_iters = SpinBox(
            value=5, min=0, max=50, label=label("mrf_iters", "gui"), tooltip=_tip("mrf_iters")
        )
        self.normalization = ComboBox(
            choices=list(logic.NORMALIZATIONS),
            value="contrast",
            label=label("normalize", "gui"),
            tooltip="How image intensities map to gray before colorizing: by default the "
            "layer's contrast limits (what you see), so 12-bit microscopy in uint16 and "
            "astronomy data come out as displayed.",
        )
        self.note = Label(value="", label="")
        self.note.native.setWordWrap(True)
        self.note.visible = False

    @property
    def widgets(self) -> list[Any]:
        """The controls in display order (the note under the knobs it is about)."""
        return [self.temperature, self.decoder, self.mrf_weight, self.mrf_iters,
                self.note, self.normalization]  # fmt: skip


def collect(
    controls: OptionControls, choice: logic.ModelChoice, source: Any, device: str
) -> ColorizeOptions:
    """The :class:`~tinct.ColorizeOptions` the controls describe.

    Args:
        controls: The option controls.
        choice: The selected model.
        source: The image layer to colorize (its contrast limits), or ``None``.
        device: The selected device.

    Raises:
        tinct.engine.options.OptionError: A value out of range (names the control by
            its label through ``message_for("gui")``).
    """
    values: dict[str, Any] = {"decoder": logic.decoder_option(controls.decoder.value)}
    if choice.distribution:
        values["temperature"] = float(controls.temperature.value)
        values["mrf_weight"] = float(controls.mrf_weight.value)
        values["mrf_iters"] = int(controls.mrf_iters.value)
    limits = getattr(source, "contrast_limits", None)
    values.update(logic.normalization_options(controls.normalization.value, limits))
    model = choice.source or choice.name
    return ColorizeOptions(model=model, device=device, **values)


def show_knob_state(
    controls: OptionControls,
    choice: logic.ModelChoice,
    *,
    hinted: bool,
    local_hints: Any = None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """Enable the knobs that act, grey out the others with their reason.

    Args:
        controls: The option controls.
        choice: The selected model.
        hinted: The current run has hint points.
        local_hints: The "Local hints" checkbox, if the widget has one. It is greyed
            out only for models that do not fuse hints; without hints yet it stays
            usable, so that it can be ticked before the first hint is placed.
        extra: Knobs that the last run showed to have no effect, with the reason
            (:meth:`tinct.Colorizer.inactive_knobs`).

    Returns:
        ``{knob: reason}`` for the knobs shown disabled.
    """
    inactive: dict[str, str] = {}
    if choice.config is not None:
        from tinct.models import catalog

        decoder = logic.decoder_option(controls.decoder.value)
        inactive = catalog.inactive_knobs(
            choice.config, decoder=decoder, hinted=hinted, fusion=choice.fusion,
            mrf_weight=float(controls.mrf_weight.value),
        )  # fmt: skip
    elif not choice.distribution:
        why = "this model predicts colours directly (no colour distribution)"
        inactive = {"temperature": why, "mrf_weight": why, "mrf_iters": why}
    inactive = {**(extra or {}), **inactive}
    shown = {}
    for name in CONTROLLED:
        widget = getattr(controls, name)
        reason = inactive.get(name)
        if name == "decoder" and reason:  # the box stays usable: it shows the one decoder
            reason = None
        widget.enabled = reason is None
        widget.native.setEnabled(reason is None)  # sliders: grey out the readout too
        widget.tooltip = _tip(name) + (f"\nNo effect now: {reason}." if reason else "")
        if reason:
            shown[name] = reason
    if shown:
        by_reason: dict[str, list[str]] = {}
        for name, reason in shown.items():
            by_reason.setdefault(reason, []).append(ColorizeOptions.name_in(name, "gui"))
        controls.note.value = "; ".join(
            f"{', '.join(names)}: no effect ({reason})" for reason, names in by_reason.items()
        )
    controls.note.visible = bool(shown)
    if local_hints is not None:
        reason = _local_hints_reason(choice)
        local_hints.enabled = reason is None
        local_hints.tooltip = LOCAL_HINTS_TIP + (f"\nNo effect: {reason}." if reason else "")
        if reason:
            shown["local_hints"] = reason
    return shown


#: Tooltip of the "Local hints" checkbox.
LOCAL_HINTS_TIP = (
    "Each hint colours the region around it and stops at its edges, instead of "
    "spreading over the whole picture (tinct-base, tinct-he)."
)


def _local_hints_reason(choice: logic.ModelChoice) -> str | None:
    """Why "Local hints" cannot act on this model whatever the hints (``None``: it can)."""
    if choice.config is None or choice.fusion:
        return None
    from tinct.models import catalog

    reasons = catalog.inactive_knobs(choice.config, hinted=True, fusion=False)
    return reasons.get("local_hints")
