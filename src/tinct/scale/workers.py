"""The colorizer of a Dask worker process: its device (one GPU per worker) and its model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tinct.engine.colorizer import Colorizer

__all__ = ["worker_colorizer", "worker_device"]


def worker_device(device: str = "auto", worker_name: Any = None) -> str:
    """Spread Dask workers over the GPUs of a machine.

    Inside a Dask worker whose name is a number (the workers of a
    ``LocalCluster`` are named 0, 1, ...), ``"auto"`` and ``"cuda"`` become
    ``cuda:<name % GPU count>`` when the machine has several GPUs. Any other
    device (``"cpu"``, ``"cuda:1"``, ...) is returned unchanged, as is
    everything outside a worker or on machines with at most one GPU.

    Args:
        device: Requested device name.
        worker_name: The worker's name; ``None`` = look up the current worker.

    Returns:
        The device name to use in this process.
    """
    if device not in ("auto", "cuda"):
        return device
    if worker_name is None:
        try:
            from distributed import get_worker

            worker_name = get_worker().name
        except (ImportError, ValueError):
            return device
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n < 2 or not str(worker_name).isdigit():
        return device
    return f"cuda:{int(str(worker_name)) % n}"


def worker_colorizer(
    model: str | Path = "tinct-base",
    device: str = "auto",
    precision: str = "auto",
    *,
    pretrained: bool = True,
    threads: int | None = None,
) -> Colorizer:
    """The process-wide :class:`Colorizer` for a model, loaded on first use.

    Dask tasks call this instead of building a colorizer, so each worker
    process loads a model once and keeps it for every later task (the
    engine's one colorizer cache, :mod:`tinct.engine.shared`). The
    network-output cache is off (``cache_size=0``): tasks never re-decode the
    same image.

    Args:
        model: Registry name or ``.safetensors`` path (must exist on the worker).
        device: Device name; in a worker of a multi-GPU machine ``"auto"`` and
            ``"cuda"`` pick a GPU by worker number (:func:`worker_device`).
        precision: Network precision.
        pretrained: Load trained weights.
        threads: If given, ``torch.set_num_threads(threads)`` for this process
            (intra-op threads of the network; keep ``workers * threads`` at or
            below the number of cores).

    Returns:
        The shared colorizer (thread-safe; calls are serialised).
    """
    if threads is not None and threads > 0:
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(int(threads))
    device = worker_device(str(device))
    from tinct.engine import shared

    return shared.get_colorizer(
        model, str(device), str(precision), pretrained=bool(pretrained), cache_size=0
    )
