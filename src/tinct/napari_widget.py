"""The napari "Colorize" dock widget.

A magicgui :class:`~magicgui.widgets.Container` that drives the shared
inference core (:class:`tinct.Colorizer`). The network runs in a napari
``thread_worker``; only the main thread touches layers. Torch and the engine
are imported on the first run, the model registry when the widget opens.

Set ``TINCT_NAPARI_SYNC=1`` to run every job synchronously in the main
thread (tests, scripts).

This module builds the controls and wires them up: model and options, hints
and colour suggestions, Run / Cancel / Live and the bridge server toggle. Its
helpers: pure decisions in :mod:`tinct._widget_logic`, reading and writing
layers in :mod:`tinct._widget_layers`, and the jobs that drive the engine (and
the runner that runs them off the main thread) in :mod:`tinct._widget_jobs`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSlider,
    FloatSpinBox,
    Label,
    ProgressBar,
    PushButton,
    SpinBox,
    create_widget,
)
from napari.layers import Image, Points
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QTimer

from tinct import _widget_jobs as jobs
from tinct import _widget_layers as layer_io
from tinct import _widget_logic as logic
from tinct._widget_jobs import (  # re-exported: part of this module's API
    ColorizerFactory,
    default_colorizer_factory,
)

if TYPE_CHECKING:
    import napari

__all__ = ["SYNC_ENV", "ColorizeWidget"]

#: Environment switch: run jobs synchronously in the main thread.
SYNC_ENV = "TINCT_NAPARI_SYNC"
#: Debounce delays (ms) for Live re-runs: hint edits / other inputs, and decode-only changes.
RERUN_DELAY_MS = 300
REDECODE_DELAY_MS = 0  # slider bursts are coalesced by the pending-run queue instead
#: Fallback decoder list while :mod:`tinct.decode` is not importable.
_FALLBACK_DECODERS = ("annealed_mean", "mean", "median", "mode")
_N_SWATCHES = 9


class ColorizeWidget(Container):
    """Colorize grayscale image layers with tinct, with optional hint points.

    Args:
        napari_viewer: The viewer (injected by napari).
        colorizer_factory: ``factory(model_name, device) -> colorizer``; the
            default loads :class:`tinct.Colorizer` with trained weights.

    Attributes:
        sync: Run jobs in the main thread (from ``TINCT_NAPARI_SYNC``).
        last_error: Message of the last error shown to the user.
        output: The output layer of the last run, if any.
    """

    def __init__(
        self,
        napari_viewer: napari.viewer.Viewer,
        colorizer_factory: ColorizerFactory | None = None,
    ) -> None:
        super().__init__(labels=True)
        self._viewer = napari_viewer
        self.colorizer_factory: ColorizerFactory = colorizer_factory or default_colorizer_factory
        self._runner = jobs.JobRunner(
            self._on_yielded,
            self._on_returned,
            self._on_errored,
            self._on_finished,
            sync=os.environ.get(SYNC_ENV, "") not in ("", "0"),
        )
        self.last_error: str | None = None
        self.output: Image | None = None
        self._colorizers: dict[tuple[str, str], Any] = {}
        self._pending: tuple[str, Any] | None = None
        self._server: Any = None
        self._server_stop: Callable[[], None] | None = None
        self._hints_layer: Points | None = None

        from tinct.models import list_models, weights_status

        self._choices = {c.name: c for c in logic.model_choices(list_models(), weights_status)}
        self._decoders = _decoder_names()

        self.image = create_widget(annotation=Image, label="image")
        self.hints = create_widget(annotation=Points | None, label="hints")
        self.add_hints_button = PushButton(text="Add hints layer")
        self.hint_size = SpinBox(
            value=0,
            min=0,
            max=256,
            label="hint size",
            tooltip="hint patch side in image pixels; 0 = auto",
        )
        self.swatches = Container(
            widgets=[PushButton(text="", visible=False) for _ in range(_N_SWATCHES)],
            layout="horizontal",
            labels=False,
            label="suggestions",
        )
        self.reference = create_widget(annotation=Image | None, label="reference")
        self.model = ComboBox(
            choices=[(c.label, c.name) for c in self._choices.values()], label="model"
        )
        self.temperature = FloatSlider(
            value=0.38, min=0.01, max=2.0, step=0.01, label="temperature"
        )
        # choices come from a callable so napari's reset_choices() keeps the model's list
        self.decoder = ComboBox(choices=self._decoder_choices, label="decoder")
        self.mrf_weight = FloatSpinBox(value=0.0, min=0.0, max=20.0, step=0.1, label="MRF weight")
        self.mrf_iters = SpinBox(value=5, min=0, max=50, label="MRF iterations")
        self.device = ComboBox(choices=list(logic.DEVICES), value="auto", label="device")
        self.live = CheckBox(value=False, text="Live")
        self.whole_stack = CheckBox(value=False, text="Whole stack")
        self.temporal = CheckBox(
            value=False, text="Temporal (axis 0)", enabled=False,
            tooltip="colorize the stack as a sequence along its first axis: colour holds "
            "still where content persists, hints carry to later planes",
        )  # fmt: skip
        self.run_button = PushButton(text="Run")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(value=0, min=0, max=1, label="progress")
        self.status = Label(value="", label="status")
        self.server = CheckBox(value=False, text="Bridge server (GIMP)")
        self.server_status = Label(value="off", label="server")
        self.extend(
            [
                self.image,
                self.hints,
                self.add_hints_button,
                self.hint_size,
                self.swatches,
                self.reference,
                self.model,
                self.temperature,
                self.decoder,
                self.mrf_weight,
                self.mrf_iters,
                self.device,
                self.live,
                self.whole_stack,
                self.temporal,
                self.run_button,
                self.cancel_button,
                self.progress,
                self.status,
                self.server,
                self.server_status,
            ]
        )
        self.max_width = 440  # leave the canvas most of the window
        self.swatches.visible = False
        for i, button in enumerate(self.swatches):
            button.changed.connect(lambda *_, i=i: self._apply_swatch(i))

        self._timer = QTimer(self.native)  # dies with the widget
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._timer_fired)

        self.model.changed.connect(self._on_model_changed)
        self.add_hints_button.changed.connect(self.add_hints_layer)
        self.run_button.changed.connect(lambda *_: self.run())
        self.cancel_button.changed.connect(lambda *_: self.cancel())
        self.server.changed.connect(self._on_server_toggled)
        self.hints.changed.connect(self._on_hints_layer_changed)
        for w in (self.temperature, self.decoder, self.mrf_weight, self.mrf_iters):
            w.changed.connect(lambda *_: self._live_changed(decode_only=True))
        for w in (self.image, self.reference, self.hint_size, self.device, self.live):
            w.changed.connect(lambda *_: self._live_changed(decode_only=False))
        self.image.changed.connect(self._on_image_changed)
        self.temporal.changed.connect(lambda *_: self._live_changed(decode_only=False))
        self._viewer.dims.events.current_step.connect(self._on_step_changed)
        self._viewer.dims.events.axis_labels.connect(
            lambda *_: self._on_image_changed(self.image.value)
        )
        self._on_model_changed(self.model.value)
        self._on_hints_layer_changed(self.hints.value)
        self._on_image_changed(self.image.value)

    @property
    def sync(self) -> bool:
        """Run jobs synchronously in the main thread (default: from ``TINCT_NAPARI_SYNC``)."""
        return self._runner.sync

    @sync.setter
    def sync(self, value: bool) -> None:
        self._runner.sync = value

    # ------------------------------------------------------------------ model / options

    @property
    def choice(self) -> logic.ModelChoice:
        """The selected model's :class:`~tinct._widget_logic.ModelChoice`."""
        return self._choices[self.model.value]

    def _on_model_changed(self, name: str) -> None:
        choice = self._choices[name]
        self.temperature.enabled = choice.distribution
        self.mrf_weight.enabled = self.mrf_iters.enabled = choice.distribution
        self.reference.enabled = choice.global_hint
        self.decoder.reset_choices()
        self.decoder.value = logic.AUTO_DECODER
        if choice.distribution:
            self.temperature.value = choice.default_temperature
        self.model.tooltip = f"weights: {choice.status}"
        self._live_changed(decode_only=False)

    def _decoder_choices(self, _widget: Any = None) -> list[str]:
        """Decoders of the selected model (``auto`` first); a magicgui choices callable."""
        model = getattr(self, "model", None)
        if model is None:
            return [logic.AUTO_DECODER, *self._decoders]
        return logic.decoder_choices(self._choices[model.value], self._decoders)

    def _options(self) -> dict[str, Any]:
        choice = self.choice
        kwargs: dict[str, Any] = {"decoder": logic.decoder_option(self.decoder.value)}
        if choice.distribution:
            kwargs["temperature"] = float(self.temperature.value)
            kwargs["mrf_weight"] = float(self.mrf_weight.value)
            kwargs["mrf_iters"] = int(self.mrf_iters.value)
        return kwargs

    def get_colorizer(self, model: str | None = None, device: str | None = None) -> Any:
        """The loaded colorizer for a model and device (loaded on first use).

        Args:
            model: Registry name; default: the selected model.
            device: Device name; default: the selected device.

        Returns:
            The colorizer, shared with the bridge server.
        """
        key = (model or self.model.value, device or self.device.value)
        if key not in self._colorizers:
            if len(self._colorizers) >= 2:  # keep at most two models in memory
                self._colorizers.pop(next(iter(self._colorizers)))
            self._colorizers[key] = self.colorizer_factory(*key)
        return self._colorizers[key]

    def _on_image_changed(self, layer: Any) -> None:
        """Name the temporal axis of the new layer; only (T|Z, Y, X) stacks can use it."""
        if not self._alive():
            return
        try:
            geometry = layer_io.source_geometry(layer) if layer is not None else None
        except Exception:  # not a colorizable layer; run() reports why
            geometry = None
        ok = geometry is not None and len(geometry.leading) == 1
        self.temporal.enabled = ok
        if ok:
            labels = self._viewer.dims.axis_labels
            label = labels[len(labels) - layer.ndim] if len(labels) >= layer.ndim else "0"
            self.temporal.text = f"Temporal (axis 0: {label})"
        else:
            self.temporal.text = "Temporal (stacks with one leading axis)"

    # ------------------------------------------------------------------ hints

    def add_hints_layer(self, *_: Any) -> Points:
        """Add an empty hints Points layer in add mode and select it in the widget.

        Returns:
            The new layer; each point's face colour is that hint's colour.
        """
        layer = layer_io.add_hints_layer(self._viewer, self.image.value)
        self.hints.reset_choices()
        self.hints.value = layer
        return layer

    def _on_hints_layer_changed(self, layer: Points | None) -> None:
        old = self._hints_layer
        if old is layer:
            return
        if old is not None:
            old.events.data.disconnect(self._on_hints_edited)
            old.events.face_color.disconnect(self._on_hints_edited)
            old.events.current_face_color.disconnect(self._on_hints_edited)
            old.selected_data.events.items_changed.disconnect(self._on_selection)
        self._hints_layer = layer
        if layer is not None:
            layer.events.data.connect(self._on_hints_edited)
            layer.events.face_color.connect(self._on_hints_edited)
            layer.events.current_face_color.connect(self._on_hints_edited)
            layer.selected_data.events.items_changed.connect(self._on_selection)
        self._live_changed(decode_only=False)

    def _on_hints_edited(self, *_: Any) -> None:
        self._live_changed(decode_only=False)

    # ------------------------------------------------------------------ suggestions

    def _on_selection(self, *_: Any) -> None:
        layer = self.hints.value
        sel = sorted(layer.selected_data) if layer is not None else []
        if len(sel) != 1 or self.image.value is None:
            self.swatches.visible = False
            return
        try:
            job = self._collect(whole_stack=False)
        except Exception:  # nothing to suggest for an invalid image; run() reports it
            return
        request = jobs.suggest_request(job, sel[0])
        if request is None:
            self.swatches.visible = False  # the point lies outside the image
            return
        self._submit("suggest", request)

    def show_suggestions(self, colors: np.ndarray) -> None:
        """Show suggested colours as clickable swatches.

        Args:
            colors: ``(k, 3)`` uint8 RGB colours (at most nine are shown).
        """
        colors = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
        _, first = np.unique(colors, axis=0, return_index=True)  # drop repeats, keep order
        colors = colors[np.sort(first)][:_N_SWATCHES]
        self._swatch_colors = colors
        for i, button in enumerate(self.swatches):
            if i < len(colors):
                button.native.setStyleSheet(logic.swatch_stylesheet(colors[i]))
                button.tooltip = "#{:02x}{:02x}{:02x}".format(*colors[i])
                button.visible = True
            else:
                button.visible = False
        self.swatches.visible = len(colors) > 0

    def _apply_swatch(self, i: int) -> None:
        layer = self.hints.value
        colors = getattr(self, "_swatch_colors", None)
        if layer is None or colors is None or i >= len(colors):
            return
        rgba = np.append(colors[i] / 255.0, 1.0)
        selected = sorted(layer.selected_data)
        if selected:
            fc = np.asarray(layer.face_color).copy()
            fc[selected] = rgba
            layer.face_color = fc
        layer.current_face_color = rgba

    # ------------------------------------------------------------------ running

    def _collect(self, whole_stack: bool | None = None, layer: Any = None) -> jobs.Job:
        """Snapshot the inputs of a run (main thread); raises ValueError for bad input."""
        source = layer if layer is not None else self.image.value
        geometry = layer_io.source_geometry(source)
        stack = self.whole_stack.value if whole_stack is None else whole_stack
        temporal = bool(self.temporal.value) and len(geometry.leading) == 1
        if stack or temporal or not geometry.leading:
            planes = list(logic.iter_plane_indices(geometry.leading))
        else:
            planes = [layer_io.shown_plane(source, self._viewer.dims.point, geometry.leading)]
        reference = None
        ref_layer = self.reference.value
        if ref_layer is not None and self.choice.global_hint:
            reference = layer_io.reference_plane(ref_layer, self._viewer.dims.point)
        choice = self.choice
        return jobs.Job(
            source=source,
            data=source.data,
            geometry=geometry,
            planes=planes,
            hints=layer_io.hint_groups(self.hints.value, source, geometry),
            hint_size=int(self.hint_size.value),
            reference=reference,
            model=choice.name,
            device=self.device.value,
            kwargs=self._options(),
            download=choice.downloadable
            and (choice.name, self.device.value) not in self._colorizers,
            temporal=temporal,
            stops=layer_io.stop_points(self.hints.value) if temporal else frozenset(),
        )

    def run(self, whole_stack: bool | None = None, layer: Any = None) -> Any:
        """Colorize the selected layer (current plane, or every plane with "Whole stack").

        Bad input is reported as a napari error notification, never raised.

        Args:
            whole_stack: Override the "Whole stack" checkbox.
            layer: Colorize this layer instead of the selected one.

        Returns:
            The started worker (``None`` in sync mode, on error, or when the run
            was queued behind a running job).
        """
        try:
            job = self._collect(whole_stack, layer)
        except Exception as exc:
            self._error(str(exc))
            return None
        return self._submit("colorize", job)

    def cancel(self) -> None:
        """Stop the running job after the current plane; drop any queued re-run."""
        self._pending = None
        self._timer.stop()
        if self._runner.cancel():
            self.status.value = "cancelling…"

    @property
    def busy(self) -> bool:
        """A job is running."""
        return self._runner.busy

    def _submit(self, kind: str, arg: Any) -> Any:
        if self._runner.busy:
            self._pending = (kind, arg)  # keep only the newest request
            return None
        if kind == "colorize":
            body = functools.partial(
                jobs.colorize_job,
                get_colorizer=self.get_colorizer,
                cancel=self._runner.cancel_event,
            )
            self.progress.max = max(1, len(arg.planes))
            self.progress.value = 0
        else:
            body = functools.partial(
                jobs.suggest_job, get_colorizer=self.get_colorizer, k=_N_SWATCHES
            )
        worker = self._runner.start(body, arg)
        if worker is not None:
            self.cancel_button.enabled = True
        return worker

    def _on_yielded(self, item: Any) -> None:
        if not self._alive():
            return
        if item[0] == "status":
            self.status.value = item[1]
        elif item[0] == "plane":
            _, job, idx, rgb, done, total = item
            self.output = layer_io.write_output(
                self._viewer, job.source, job.geometry.output_shape, idx, rgb, self.hints.value
            )
            self.progress.value = done
            self.status.value = f"done {done}/{total}" if total > 1 else "done"

    def _on_returned(self, value: Any) -> None:
        if not self._alive():
            return
        if value and value[0] == "error":
            self._on_errored(value[1])
            return
        if value and value[0] == "suggest":
            self.show_suggestions(value[1])
            self.status.value = "click a swatch to recolour the selected hint"

    def _on_errored(self, exc: BaseException) -> None:
        if type(exc).__name__ == "Cancelled":  # tinct.engine.Cancelled: the user pressed Cancel
            self._runner.cancelled = True
            return
        self._error(f"{type(exc).__name__}: {exc}")

    def _on_finished(self) -> None:
        if self._runner.cancelled:
            self.status.value = "cancelled"
        self.cancel_button.enabled = False
        pending, self._pending = self._pending, None
        if pending is not None and not self._runner.cancelled:
            kind, arg = pending
            if kind == "colorize":  # re-snapshot so the newest inputs are used
                self.run(whole_stack=len(arg.planes) > 1 and bool(arg.geometry.leading))
            else:
                self._submit(kind, arg)

    def _error(self, message: str) -> None:
        self.last_error = message
        self.status.value = f"error: {message}"[:200]
        show_error(f"tinct: {message}")

    # ------------------------------------------------------------------ live mode

    def _alive(self) -> bool:
        """False once Qt has deleted the widget (events can still arrive while napari closes)."""
        try:
            self.native.objectName()
            self.image.native.objectName()
        except RuntimeError:
            return False
        return True

    def _live_changed(self, decode_only: bool) -> None:
        if not getattr(self, "live", None) or not self._alive():
            return
        if not self.live.value or self.image.value is None:
            return
        if self.sync:
            self.run(whole_stack=False)
            return
        delay = REDECODE_DELAY_MS if decode_only else RERUN_DELAY_MS
        if self._timer.isActive() and self._timer.remainingTime() > delay:
            self._timer.stop()
        if not self._timer.isActive():
            self._timer.start(delay)

    def _timer_fired(self) -> None:
        if self._alive():
            self.run(whole_stack=False)

    def _on_step_changed(self, *_: Any) -> None:
        source = self.image.value
        if self.temporal.value and self.temporal.enabled:
            return  # a temporal run already covers every plane
        if source is not None and source.ndim > 2:
            self._live_changed(decode_only=False)

    # ------------------------------------------------------------------ bridge server

    def _on_server_toggled(self, on: bool) -> None:
        if not on:
            self.stop_server()
            return
        try:
            self.start_server()
        except Exception as exc:
            self._error(f"could not start the bridge server: {exc}")
            self.server.value = False

    def start_server(self) -> int:
        """Serve the loaded colorizer to the GIMP bridge (same model in memory).

        Returns:
            The TCP port the server listens on (loopback only).
        """
        if self._server is not None:
            return int(self._server.port)
        colorizer = self.get_colorizer()
        from tinct import server as srv

        starter = getattr(srv, "start_server_in_thread", None)
        if starter is not None:
            handle = starter(colorizer, port=0)
            self._server, self._server_stop = handle, handle.stop
        else:  # older bridge API
            bridge = srv.BridgeServer(colorizer=colorizer, port=0).start()
            self._server, self._server_stop = bridge, bridge.shutdown
        self.server_status.value = f"on, 127.0.0.1:{self._server.port}"
        show_info(f"tinct bridge server listening on 127.0.0.1:{self._server.port}")
        return int(self._server.port)

    def stop_server(self) -> None:
        """Stop the bridge server if it runs."""
        if self._server_stop is not None:
            self._server_stop()
        self._server = self._server_stop = None
        self.server_status.value = "off"

    def __del__(self) -> None:
        stop = getattr(self, "_server_stop", None)
        if stop is not None:
            stop()


def _decoder_names() -> tuple[str, ...]:
    try:
        from tinct.decode import DECODERS
    except ImportError:
        return _FALLBACK_DECODERS
    return tuple(DECODERS)
