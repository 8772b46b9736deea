"""The napari Colorize widget's bridge-server toggle (a mix-in of the widget).

**Bridge server (GIMP)** serves the colorizer already loaded in napari over the
tinct bridge, so GIMP and napari share one model in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from napari.utils.notifications import show_info

from tinct.napari_plugin.logic import model_label

__all__ = ["ServerToggle"]


class ServerToggle:
    """Start and stop a bridge server on the widget's colorizer (needs ``get_colorizer``)."""

    if TYPE_CHECKING:  # the rest of ColorizeWidget, which this mix-in is part of

        def __getattr__(self, name: str) -> Any: ...

    _server: Any = None
    _server_stop: Callable[[], None] | None = None
    _served: tuple[str, str] = ("", "")  # the served colorizer's (model, device)

    def _on_server_toggled(self, on: bool) -> None:
        if not on:
            self.stop_server()
            return
        try:
            self.start_server()
        except Exception as exc:
            self._error(f"could not start the bridge server: {exc}")  # type: ignore[attr-defined]
            self.server.value = False  # type: ignore[attr-defined]

    def start_server(self) -> int:
        """Serve the loaded colorizer to the GIMP bridge (same model in memory).

        Returns:
            The TCP port the server listens on (loopback only).
        """
        if self._server is not None:
            return int(self._server.port)
        served = (str(self.model.value), str(self.device.value))  # type: ignore[attr-defined]
        colorizer = self.get_colorizer(*served)  # type: ignore[attr-defined]
        from tinct.bridge import embedded

        handle = embedded.start_server_in_thread(colorizer, port=0)
        self._server, self._server_stop, self._served = handle, handle.stop, served
        self.server_status.value = f"on, 127.0.0.1:{handle.port}"  # type: ignore[attr-defined]
        show_info(
            f"tinct bridge server listening on 127.0.0.1:{handle.port} "
            f"({model_label(served[0])} on {served[1]})"
        )
        return int(handle.port)

    def _server_follows(self, *_: Any) -> None:
        """Say when the model or device chosen is not the one the running server serves.

        The server keeps the colorizer it was started with (a GIMP client may be using it).
        """
        if self._server is None:
            return
        now = (str(self.model.value), str(self.device.value))  # type: ignore[attr-defined]
        port = f"on, 127.0.0.1:{self._server.port}"
        if now == self._served:
            self.server_status.value = port  # type: ignore[attr-defined]
            return
        model, device = model_label(self._served[0]), self._served[1]
        self.server_status.value = f"{port}: still {model} on {device}"  # type: ignore[attr-defined]
        show_info(
            f"tinct: the bridge server still serves {model} on {device}; untick and tick "
            "'Bridge server (GIMP)' to serve the model chosen now"
        )

    def stop_server(self) -> None:
        """Stop the bridge server if it runs."""
        if self._server_stop is not None:
            self._server_stop()
        self._server = self._server_stop = None
        self.server_status.value = "off"  # type: ignore[attr-defined]

    def __del__(self) -> None:
        stop = getattr(self, "_server_stop", None)
        if stop is not None:
            stop()
