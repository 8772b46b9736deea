"""The napari "Colorize" dock widget.

A magicgui :class:`~magicgui.widgets.Container` that drives the shared
inference core (:class:`tinct.Colorizer`). The network runs in a napari
``thread_worker``; only the main thread touches layers. Torch and the engine
are imported on the first run, the model registry when the widget opens.

Set ``TINCT_NAPARI_SYNC=1`` to run every job synchronously in the main
thread (tests, scripts).

This module builds the controls and wires them up: model and options, hints
and colour suggestions, Run / Cancel / Live. Its helpers: pure decisions in
:mod:`tinct.napari_plugin.logic`, the option controls (from
:class:`tinct.ColorizeOptions`, with greyed-out knobs and their reasons) in
:mod:`tinct.napari_plugin.options_panel`, reading and writing layers in
:mod:`tinct.napari_plugin.layers`, the jobs that drive the engine in
:mod:`tinct.napari_plugin.jobs` and the runner that runs them off the main thread in
:mod:`tinct.napari_plugin.job_runner`, the
Temporal checkbox in :mod:`tinct.napari_plugin.temporal_panel`, the life of a job
(queue, Cancel, what stops a run) in :mod:`tinct.napari_plugin.run_panel`, and the
bridge server toggle in :mod:`tinct.napari_plugin.server_panel`.
"""

from __future__ import annotations

import functools
import os
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    Label,
    ProgressBar,
    PushButton,
    SpinBox,
    create_widget,
)
from napari.layers import Image, Points
from napari.utils.notifications import show_warning
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QSizePolicy

from tinct.napari_plugin import jobs, logic
from tinct.napari_plugin import layers as layer_io
from tinct.napari_plugin import options_panel as opt_ui
from tinct.napari_plugin.hints_panel import _N_SWATCHES, HintsMixin
from tinct.napari_plugin.job_runner import JobRunner
from tinct.napari_plugin.jobs import (
    ColorizerFactory,
    default_colorizer_factory,
)
from tinct.napari_plugin.live_panel import LiveMixin
from tinct.napari_plugin.models_panel import REFERENCE_TIP, ModelMixin, reference_reason
from tinct.napari_plugin.progress import done_status
from tinct.napari_plugin.run_panel import RunMixin
from tinct.napari_plugin.server_panel import ServerToggle
from tinct.napari_plugin.status_line import NOTIFIED, StatusLineMixin, cut
from tinct.napari_plugin.temporal_panel import WHOLE_STACK_TIP, TemporalMixin
from tinct.napari_plugin.typed_numbers import tell_refusals

if TYPE_CHECKING:
    import napari

__all__ = ["SYNC_ENV", "ColorizeWidget", "live_widgets"]

#: Environment switch: run jobs synchronously in the main thread.
SYNC_ENV = "TINCT_NAPARI_SYNC"
_LIVE: weakref.WeakSet[ColorizeWidget] = weakref.WeakSet()


def live_widgets() -> list[ColorizeWidget]:
    """The Colorize widgets open now (e.g. to refresh their model lists after training)."""
    return [w for w in list(_LIVE) if w._alive()]


class ColorizeWidget(  # type: ignore[misc, override]
    RunMixin,
    ModelMixin,
    HintsMixin,
    TemporalMixin,
    LiveMixin,
    ServerToggle,
    StatusLineMixin,
    Container,
):
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
        self._runner = JobRunner(
            self._on_yielded,
            self._on_returned,
            self._on_errored,
            self._on_finished,
            sync=os.environ.get(SYNC_ENV, "") not in ("", "0"),
        )
        self.last_error: str | None = None
        self.output: Image | None = None
        self._pending: tuple[str, Any] | None = None
        self._hints_layer: Points | None = None
        self._image_layer: Image | None = None
        self._just_added: set[int] | None = None
        self._done_text: Callable[[bool], str] | None = None  # the last plane's "done ..."
        _LIVE.add(self)

        from tinct.decode import DECODERS
        from tinct.models import list_models, weights_status

        self._choices = {c.name: c for c in logic.model_choices(list_models(), weights_status)}
        self._decoders = tuple(DECODERS)

        self.image = create_widget(annotation=Image, label="image")
        self.image.tooltip = "The image layer to colorize (gray or RGB, 2-D or n-D)."
        self.hints = create_widget(annotation=Points | None, label="hints")
        self.hints.tooltip = "A Points layer whose points are colour hints (face colour = hint)."
        self.add_hints_button = PushButton(text="Add hints layer")
        self.add_hints_button.tooltip = (
            "Add an empty hints layer in add mode: set the colour in the layer controls, "
            "then click on the image."
        )
        self.hint_size = SpinBox(
            value=0, min=0, max=256, label="hint size (0 = auto)",
            tooltip="Hint patch side in image pixels; 0 = the engine's default.",
        )  # fmt: skip
        self.local_hints = CheckBox(value=False, text="Local hints")
        self.local_hints.tooltip = opt_ui.LOCAL_HINTS_TIP
        self.swatches = Container(
            widgets=[PushButton(text="", visible=False) for _ in range(_N_SWATCHES)],
            layout="horizontal",
            labels=False,
            label="suggestions",
        )
        self.swatches.tooltip = "Colours the model suggests at the selected hint; click one."
        self.reference = ComboBox(  # colour layers only: a gray one has no colours to give
            choices=self._reference_layers, nullable=True, label="reference"
        )
        self.reference.tooltip = REFERENCE_TIP
        self.model = ComboBox(choices=self._model_list, label="model")  # a callable: see below
        self.weights_file = FileEdit(mode="r", filter="*.safetensors", label="weights file")  # type: ignore[arg-type]
        self.weights_file.tooltip = (
            "Load a .safetensors file written by `tinct train`; it joins the model list."
        )
        # choices come from a callable so napari's reset_choices() keeps the model's list
        self.controls = opt_ui.OptionControls(self._decoder_choices)
        c = self.controls
        self.temperature, self.decoder = c.temperature, c.decoder
        self.mrf_weight, self.mrf_iters, self.normalization = (
            c.mrf_weight,
            c.mrf_iters,
            c.normalization,
        )
        self.device = ComboBox(choices=list(logic.DEVICES), value="auto", label="device")
        self.device.tooltip = "Where the model runs: auto = CUDA, then MPS, then the CPU."
        self.live = CheckBox(value=False, text="Live")
        self.live.tooltip = "Re-run automatically when a control or a hint changes."
        self.whole_stack = CheckBox(value=False, text="Whole stack")
        self.whole_stack.tooltip = WHOLE_STACK_TIP
        self.temporal = self._make_temporal()
        self.run_button = PushButton(text="Run")
        self.run_button.tooltip = "Colorize the image layer (the shown plane, or the whole stack)."
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.cancel_button.tooltip = "Stop the running job after the current plane."
        self.progress = ProgressBar(value=0, min=0, max=1, label="progress")
        self._show_progress("idle")  # empty, without a stale "0%"
        self.status = Label(value="", label="status")
        self.server = CheckBox(value=False, text="Bridge server (GIMP)")
        self.server.tooltip = "Serve this model to the GIMP plug-in (tinct bridge on 127.0.0.1)."
        self.server_status = Label(value="off", label="server")
        for label in (self.status, self.server_status):  # long messages wrap, not cut off
            label.native.setWordWrap(True)  # (using the row's width: short ones stay one line)
            label.native.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.extend(
            [
                self.image,
                self.hints,
                self.add_hints_button,
                self.hint_size,
                self.local_hints,
                self.swatches,
                self.reference,
                self.model,
                self.weights_file,
                *self.controls.widgets,
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
        for box in (self.hint_size, self.temperature, self.mrf_weight, self.mrf_iters):
            tell_refusals(box, self._say)  # a number the box refused: said, not dropped
        self.swatches.visible = False
        for i, button in enumerate(self.swatches):
            button.changed.connect(lambda *_, i=i: self._apply_swatch(i))

        self._timer = QTimer(self.native)  # dies with the widget
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._timer_fired)
        self._watch_runs()  # closing the viewer or removing the input stops a run

        self.model.changed.connect(self._on_model_changed)
        self.weights_file.changed.connect(self._on_weights_file)  # on every keystroke
        self.weights_file.line_edit.native.editingFinished.connect(self._weights_file_typed)
        self.add_hints_button.changed.connect(self.add_hints_layer)
        self.run_button.changed.connect(lambda *_: self.run())
        self.cancel_button.changed.connect(lambda *_: self.cancel())
        self.server.changed.connect(self._on_server_toggled)
        self.model.changed.connect(self._server_follows)
        self.device.changed.connect(self._server_follows)
        self.hints.changed.connect(self._on_hints_layer_changed)  # type: ignore[attr-defined]
        self.image.changed.connect(self._on_image_changed)
        self.image.changed.connect(self._update_temporal)
        for w in (self.decoder, self.mrf_weight):  # each can idle other knobs
            w.changed.connect(lambda *_: self._update_knobs())
        for name in sorted(logic.DECODE_ONLY_PARAMS):  # re-decoded from the engine's cache
            getattr(self, name).changed.connect(lambda *_: self._live_changed(decode_only=True))
        reruns: tuple[Any, ...] = (
            self.reference, self.hint_size, self.local_hints, self.device, self.live,
            self.normalization,
        )  # fmt: skip
        for w in reruns:
            w.changed.connect(lambda *_: self._live_changed(decode_only=False))
        self.temporal.changed.connect(self._update_temporal)  # Whole stack follows it
        self.whole_stack.changed.connect(self._restate_done)  # "tick Whole stack" no more
        self.temporal.changed.connect(lambda *_: self._live_changed(decode_only=False))
        self._viewer.dims.events.current_step.connect(self._on_step_changed)
        self._viewer.dims.events.axis_labels.connect(self._update_temporal)
        self._on_model_changed(self.model.value)
        self._on_hints_layer_changed(self.hints.value)  # type: ignore[attr-defined]
        self._on_image_changed(self.image.value)
        self._update_temporal()

    @property
    def sync(self) -> bool:
        """Run jobs synchronously in the main thread (default: from ``TINCT_NAPARI_SYNC``)."""
        return self._runner.sync

    @sync.setter
    def sync(self, value: bool) -> None:
        self._runner.sync = value

    # ------------------------------------------------------------------ running

    def _collect(self, whole_stack: bool | None = None, layer: Any = None) -> jobs.Job:
        """Snapshot the inputs of a run (main thread); raises ValueError for bad input."""
        source = layer if layer is not None else self.image.value
        geometry = layer_io.source_geometry(source)
        stack = self.whole_stack.value if whole_stack is None else whole_stack
        temporal = self._temporal_on(geometry)  # a sequence: always the whole stack
        if stack or temporal or not geometry.leading:
            planes = list(logic.iter_plane_indices(geometry.leading))
        else:
            planes = [layer_io.shown_plane(source, self._viewer.dims.point, geometry.leading)]
        reference = None
        ref_layer = self.reference.value  # type: ignore[attr-defined]
        if ref_layer is not None and reference_reason(self.choice) is None:
            reference = layer_io.reference_plane(ref_layer, self._viewer.dims.point)
        choice = self.choice
        if not choice.available:
            raise ValueError(f"cannot run {choice.name}: {choice.reason}")
        hints = self._hints_for(source, geometry, choice)
        from tinct.engine.optionspec import OptionError

        try:
            options = self.options(source).replace(
                temporal=temporal, local_hints=bool(self.local_hints.value)
            )
        except OptionError as exc:
            raise ValueError(exc.message_for("gui")) from None
        return jobs.Job(
            source=source,
            data=layer_io.full_resolution(source),
            geometry=geometry,
            planes=planes,
            hints=hints,
            hint_size=int(self.hint_size.value),
            reference=reference,
            model=choice.source or choice.name,
            device=self.device.value,
            options=options,
            download=choice.downloadable
            and not self._colorizer_loaded(choice.name, self.device.value),
            stops=layer_io.stop_points(self.hints.value) if temporal else frozenset(),  # type: ignore[attr-defined]
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
            if not self.busy:  # this Run failed to start (a run in flight keeps its bar)
                self._show_progress("failed")
            return None
        return self._submit("colorize", job)

    def _on_yielded(self, item: Any) -> None:
        if not self._alive():
            return
        if item[0] == "status":
            self.status.value = item[1]
        elif item[0] == "knobs":  # knobs this run shows to have no effect
            self._run_inactive = (self._knob_key(), item[1])
            self._update_knobs()
        elif item[0] == "warning":
            self._warned = item[1]
            self.status.value = cut(f"warning: {item[1]}", NOTIFIED)
            self._told_run = self._told_run | {item[1]}
            if item[1] not in self._told_last:  # each Live re-run would pop it up again
                show_warning(f"tinct: {item[1]}")
        elif item[0] == "plane":
            _, job, idx, rgb, done, total = item
            if not self._source_present(job):  # removed while its plane was colorized
                return
            self.output = layer_io.write_output(
                self._viewer, job.source, job.geometry.output_shape, idx, rgb, self.hints.value,  # type: ignore[attr-defined]
                model=job.model,
            )  # fmt: skip
            self._plane_done(done, total)
            self._done_text = functools.partial(done_status, done, total, idx, job.geometry.leading)
            ticked = bool(self.whole_stack.value and self.whole_stack.enabled)
            done_text = self._done_text(ticked)  # a warning stays said with it
            warned = f"; warning: {self._warned}" if self._warned else ""
            self.status.value = cut(done_text + warned, NOTIFIED)

    def _restate_done(self, *_: Any) -> None:
        """Say the last run's ``done`` again as **Whole stack** now reads (ticked or not).

        The one-plane note advises ticking the box; once it is ticked it says what Live
        and Run do instead. Any other status line (a warning, an error) is left.
        """
        said = self._done_text
        if said is None or self.status.value not in {said(False), said(True)}:
            return
        self.status.value = said(bool(self.whole_stack.value and self.whole_stack.enabled))
