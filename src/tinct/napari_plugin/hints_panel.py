"""Hint points and colour suggestions of the napari Colorize widget (a mix-in).

**Add hints layer** makes a Points layer in add mode whose face colours are the
hints; a new point is deselected so the colour picked next applies to the next
point; selecting one hint shows the model's suggested colours as swatches.
The swatches describe the shown plane: moving the stack slider to another plane
asks for that plane's suggestions (or hides them when the hint is not on it), and
a suggestion that arrives for a plane or hint no longer shown is dropped.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Points
from napari.utils.notifications import show_warning

from tinct.napari_plugin import jobs, logic
from tinct.napari_plugin import layers as layer_io

__all__ = ["SWATCH_TIP", "HintsMixin"]

_N_SWATCHES = 9
#: The status line while the swatches show (cleared with them: there is nothing to click).
SWATCH_TIP = "click a swatch to recolour the selected hint"


def _unwrapped(obj: Any) -> Any:
    """The layer behind napari's plugin proxy (a plugin sees proxies of the viewer's layers)."""
    return getattr(obj, "__wrapped__", obj)


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    """Whether two face-colour arrays hold the same colours (``None``: no layer)."""
    return a is not None and b is not None and a.shape == b.shape and bool(np.all(a == b))


class HintsMixin:
    """Hints layer wiring and colour suggestions of the widget."""

    if TYPE_CHECKING:  # the rest of ColorizeWidget, which this mix-in is part of

        def __getattr__(self, name: str) -> Any: ...

    _hints_layer: Points | None
    _just_added: set[int] | None
    _outside_told: int = 0  # hint points outside the image, as last told
    _suggesting: Any = None  # the job of the suggestions the swatches wait for or show
    _hint_colours: np.ndarray | None = None  # the hints' face colours at the last edit

    def _hints_for(
        self, source: Any, geometry: logic.PlaneGeometry, choice: logic.ModelChoice
    ) -> dict[tuple[int, ...], logic.PlaneHints]:
        """The hints of a run by plane; says when points lie outside the image.

        Raises:
            ValueError: The model needs hints and none lies on the image.
        """
        hints = layer_io.hint_groups(self.hints.value, source, geometry)
        points = self.hints.value
        placed = 0 if points is None else len(points.data)
        used = {int(i) for h in hints.values() for i in h.index}
        outside = placed - len(used)
        if getattr(choice.config, "hints_required", False) and not used:
            if placed:
                which = "the hint point lies" if placed == 1 else f"all {placed} hint points lie"
                raise ValueError(
                    f"{which} outside the image {source.name!r}: "
                    f"move {'it' if placed == 1 else 'them'} onto the image"
                )
            raise ValueError(
                f"{choice.name} colorizes from colour hints only: press 'Add hints layer' and "
                "click on the image to place hints"
            )
        if outside != self._outside_told:  # told once per change, not on every live edit
            self._outside_told = outside
            if outside:
                are = "is" if outside == 1 else "are"
                show_warning(
                    f"tinct: {outside} of {placed} hint points {'lies' if outside == 1 else 'lie'} "
                    f"outside the image {source.name!r} and {are} ignored"
                )
        return hints

    def add_hints_layer(self, *_: Any) -> Points:
        """Add an empty hints Points layer in add mode and select it in the widget.

        The layer is made for the selected image: choosing another image in the widget
        chooses that image's own hints layer, or none (see :meth:`_hints_follow_image`).

        Returns:
            The new layer; each point's face colour is that hint's colour.
        """
        image = self.image.value
        layer = layer_io.add_hints_layer(self._viewer, image)
        if image is not None:
            self._made_for[_unwrapped(layer)] = weakref.ref(_unwrapped(image))
        self.hints.reset_choices()
        self.hints.value = layer
        return layer

    @property
    def _made_for(self) -> weakref.WeakKeyDictionary[Any, Any]:
        """The image each hints layer of **Add hints layer** was made for (weak references)."""
        found = self.__dict__.get("_made_for_images")
        if found is None:
            found = self.__dict__["_made_for_images"] = weakref.WeakKeyDictionary()
        return found

    def _image_of(self, hints: Any) -> Any:
        """The image a hints layer was made for (``None``: one the user made or chose)."""
        ref = self._made_for.get(_unwrapped(hints)) if hints is not None else None
        return ref() if ref is not None else None

    def _hints_follow_image(self, image: Any) -> None:
        """A hints layer made for another image is not applied to ``image`` unasked.

        When the hints box holds a layer **Add hints layer** made for another image (or
        none), it is set to the hints layer made for ``image``, if there is one, else to
        none, and the status line says so. A hints layer made otherwise, or chosen in the
        box, is left: points meant for several images are the user's choice.
        """
        hints, image = self.hints.value, _unwrapped(image)
        made_for = self._image_of(hints)
        if image is None or (hints is not None and made_for is None) or made_for is image:
            return
        self.hints.reset_choices()
        own = next(
            (c for c in self.hints.choices if c is not None and self._image_of(c) is image), None
        )
        if own is hints:
            return
        self.hints.value = own
        if hints is not None:
            now = repr(own.name) if own is not None else "none"
            self._say(f"hints: {now} (the layer {hints.name!r} was made for {made_for.name!r})")

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
        self._hint_colours = None if layer is None else np.asarray(layer.face_color).copy()
        if layer is not None:
            layer.events.data.connect(self._on_hints_edited)
            layer.events.face_color.connect(self._on_hints_edited)
            layer.events.current_face_color.connect(self._on_hints_edited)
            layer.selected_data.events.items_changed.connect(self._on_selection)
        self._update_knobs()
        self._live_changed(decode_only=False)

    def _on_hints_edited(self, event: Any = None) -> None:
        layer = self.hints.value
        colours = None if layer is None else np.asarray(layer.face_color).copy()
        was, self._hint_colours = self._hint_colours, colours
        if getattr(event, "type", None) == "current_face_color" and _same(was, colours):
            # napari sets the current colour when a point is selected (from that point) and
            # when a colour is picked for the next point: no hint changed, nothing to re-run
            return
        if getattr(event, "action", None) == "added" and layer is not None and layer.mode == "add":
            # napari selects a new point: the next colour picked for the *next* point
            # would recolour it, so the selection is cleared once napari has set it
            self._just_added = set(
                range(len(layer.data) - len(event.data_indices), len(layer.data))
            )
        self._update_knobs()
        self._live_changed(decode_only=False)

    # ------------------------------------------------------------------ suggestions

    def _on_selection(self, *_: Any) -> None:
        layer = self.hints.value
        if layer is not None and self._just_added is not None:
            added, self._just_added = self._just_added, None
            if set(layer.selected_data) == added:
                layer.selected_data = set()
                return
        self._suggest_here()

    def _suggest_here(self) -> None:
        """Ask for suggestions at the one selected hint, on the shown plane; else hide them."""
        self._hide_swatches()
        layer = self.hints.value
        sel = sorted(layer.selected_data) if layer is not None else []
        if len(sel) != 1 or self.image.value is None:
            return
        try:
            job = self._collect(whole_stack=False)
        except Exception:  # nothing to suggest for an invalid image; run() reports it
            return
        request = jobs.suggest_request(job, sel[0])
        if request is None:
            return  # the point lies outside the image, or not on the shown plane
        self._suggesting = request[0]  # before a synchronous run returns its colours
        self._submit("suggest", request)

    def _hide_swatches(self) -> None:
        """Hide the swatches and forget the suggestions asked for (a late answer is dropped)."""
        self.swatches.visible = False
        self._suggesting = None
        if self.status.value in (SWATCH_TIP, "suggesting colours…"):  # said of them
            self.status.value = ""

    def _plane_changed_for_swatches(self) -> None:
        """The viewer moved along a stack: the selected hint's suggestions are asked anew.

        On a plane the hint is not on, the swatches are hidden; back on its plane (the
        hint still selected) they are asked for again. Under **Temporal** they stay: a
        hint is on the first plane it lies on (2-D points: plane 0), and carried on.
        """
        layer, source, wanted = self.hints.value, self.image.value, self._suggesting
        if layer is None or source is None or len(layer.selected_data) != 1:
            return  # no swatches to update: they show for one selected hint only
        if self._temporal_active:  # a hint is placed on its first plane, whichever is shown
            return
        if wanted is not None:
            try:
                leading = layer_io.source_geometry(source).leading
                shown = layer_io.shown_plane(source, self._viewer.dims.point, leading)
            except Exception:  # an image that cannot be colorized has no suggestions
                self._hide_swatches()
                return
            if list(wanted.planes) == [shown]:
                return
        self._suggest_here()

    def _suggestions_arrived(self, job: Any, colors: np.ndarray) -> bool:
        """Show the colours suggested for ``job`` if they are still the ones wanted.

        Returns:
            Whether they were shown (not when the plane or the selection changed since).
        """
        if job is None or job is not self._suggesting:
            return False
        self.show_suggestions(colors)
        return True

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
