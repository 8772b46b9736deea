"""The napari Colorize widget's **Temporal** checkbox (a mix-in of the widget).

On a ``(T, Y, X)`` or ``(Z, Y, X)`` layer the checkbox (its text names the
layer's first axis) makes a run colorize the whole stack as one sequence
(:attr:`tinct.ColorizeOptions.temporal`, :mod:`tinct.engine.temporal`): colour holds
still where the content persists, and hints carry to the later planes
(:func:`tinct.napari_plugin.jobs.temporal_hints`). Hint points drawn with the cross
symbol stop carried hints (:func:`tinct.napari_plugin.layers.stop_points`). Layers
with no or several leading axes cannot use it; the checkbox is then disabled.
**Whole stack** is greyed out, with the reason, on a 2-D layer and under Temporal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from magicgui.widgets import CheckBox

from tinct.napari_plugin import layers as layer_io
from tinct.napari_plugin import logic

__all__ = ["TemporalMixin"]

_TIP = (
    "Colorize the stack as one sequence along its first axis (time or depth): colour holds "
    "still where the content persists, and hints carry to the later planes (a point with "
    "the cross symbol stops them). Runs the whole stack."
)


#: Tooltip of the "Whole stack" checkbox.
WHOLE_STACK_TIP = (
    "Run colorizes every plane of an n-D layer, not only the shown one (Live re-runs "
    "still do the shown plane)."
)


class TemporalMixin:
    """The Temporal checkbox: enabled on one-leading-axis stacks, naming that axis.

    It also greys out **Whole stack** where that does nothing (one plane, or Temporal on).
    """

    if TYPE_CHECKING:  # the rest of ColorizeWidget, which this mix-in is part of

        def __getattr__(self, name: str) -> Any: ...

    temporal: CheckBox

    def _make_temporal(self) -> CheckBox:
        """The checkbox (disabled until a stack with one leading axis is selected)."""
        return CheckBox(value=False, text="Temporal (axis 0)", enabled=False, tooltip=_TIP)

    def _update_temporal(self, *_: Any) -> None:
        """Enable the checkbox for ``(T|Z, Y, X)`` layers and name their first axis."""
        if getattr(self, "temporal", None) is None or not self._alive():  # type: ignore[attr-defined]
            return
        layer = self.image.value  # type: ignore[attr-defined]
        try:
            geometry = layer_io.source_geometry(layer) if layer is not None else None
        except Exception:  # not a colorizable layer; run() reports why
            geometry = None
        ok = geometry is not None and len(geometry.leading) == 1
        self.temporal.enabled = ok
        if ok:
            labels = self._viewer.dims.axis_labels  # type: ignore[attr-defined]
            label = str(labels[len(labels) - layer.ndim]) if len(labels) >= layer.ndim else ""
            named = label and not label.lstrip("-").isdigit()  # napari's default labels: "-3"
            self.temporal.text = f"Temporal (axis 0: {label})" if named else "Temporal (axis 0)"
        else:
            self.temporal.text = "Temporal (stacks with one leading axis)"
        self._update_whole_stack(geometry)

    def _update_whole_stack(self, geometry: logic.PlaneGeometry | None) -> None:
        """Grey out **Whole stack** where it does nothing: one plane, or under Temporal."""
        box = getattr(self, "whole_stack", None)
        if box is None:
            return
        reason = None
        if geometry is not None and not geometry.leading:
            reason = "the layer is a single 2-D plane"
        elif geometry is not None and self._temporal_on(geometry) and self.temporal.enabled:
            reason = "Temporal always colorizes the whole stack"
        box.enabled = reason is None
        box.tooltip = WHOLE_STACK_TIP + (f"\nNo effect now: {reason}." if reason else "")

    def _temporal_on(self, geometry: logic.PlaneGeometry) -> bool:
        """Whether a run on a layer of this geometry is temporal."""
        return bool(self.temporal.value) and len(geometry.leading) == 1

    @property
    def _temporal_active(self) -> bool:
        """The checkbox is ticked and applies to the selected layer."""
        return bool(self.temporal.value) and bool(self.temporal.enabled)
