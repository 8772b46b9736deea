"""The bridge server inside another program (the napari widget), in a thread of its own."""

from __future__ import annotations

from typing import Any

from tinct.bridge.server import BridgeServer

__all__ = [
    "ServerHandle",
    "start_server_in_thread",
]


class ServerHandle:
    """A server running in a background thread (see :func:`start_server_in_thread`).

    Attributes:
        server: the :class:`BridgeServer`.
    """

    def __init__(self, server: BridgeServer) -> None:
        self.server = server

    @property
    def port(self) -> int:
        """The TCP port."""
        return self.server.port

    @property
    def token(self) -> str:
        """The auth token."""
        return self.server.token

    def stop(self) -> None:
        """Stop the server and remove its bridge.json."""
        self.server.shutdown()

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server_in_thread(colorizer: Any, port: int = 0, **kwargs: Any) -> ServerHandle:
    """Serve a loaded colorizer (or a :class:`~tinct.bridge.backend.Backend`) from a daemon thread.

    Used by the napari plugin so GIMP can share the model napari has loaded.

    Args:
        colorizer: a colorizer object (``.colorize(image, ...)``) or a Backend
            (``.colorize(job, progress)`` plus ``.models()``).
        port: TCP port (0 = any free port).
        **kwargs: further :class:`BridgeServer` arguments (``config_path``, ``host``...).

    Returns:
        A handle with ``.port``, ``.token`` and ``.stop()``.
    """
    if hasattr(colorizer, "models") and hasattr(colorizer, "default_model"):
        server = BridgeServer(colorizer, port=port, **kwargs)
    else:
        server = BridgeServer(colorizer=colorizer, port=port, **kwargs)
    return ServerHandle(server.start())
