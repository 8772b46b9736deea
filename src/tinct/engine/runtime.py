"""Where and how the network runs: device and precision choice, CPU threads, model cache.

Shared by :class:`tinct.engine.colorizer.Colorizer` and anything else that runs a tinct
network (batch jobs, the bridge server). Nothing here knows about images.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from threadpoolctl import ThreadpoolController

__all__ = [
    "DeviceUnavailableError",
    "blas_single_thread",
    "call_threads",
    "cast_for_inference",
    "cpu_busy",
    "fold_batch_norms",
    "get_model",
    "model_key",
    "resolve_threads",
    "select_device",
    "select_dtype",
    "torch_threads",
]


class DeviceUnavailableError(RuntimeError):
    """An explicitly requested device is not available."""


def select_device(preference: str | torch.device = "auto") -> torch.device:
    """Pick the compute device.

    Args:
        preference: ``"auto"`` (CUDA, then Apple MPS, then CPU), ``"cpu"``,
            ``"cuda"``, ``"cuda:N"`` or ``"mps"``.

    Returns:
        The device.

    Raises:
        DeviceUnavailableError: An explicit device that this machine or torch
            build does not have.
        ValueError: An unknown device name.
    """
    if isinstance(preference, torch.device):
        preference = str(preference)
    p = str(preference).strip().lower()
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps is not None and mps.is_available())
    if p == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps_ok else torch.device("cpu")
    if p == "cpu":
        return torch.device("cpu")
    if p.startswith("cuda"):
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA" if torch.version.cuda is None else "no GPU found"
            raise DeviceUnavailableError(
                f"device {preference!r} requested but CUDA is not available ({why})"
            )
        dev = torch.device(p)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceUnavailableError(
                f"device {preference!r} requested but only {torch.cuda.device_count()} GPU(s) exist"
            )
        return dev
    if p == "mps":
        if not mps_ok:
            raise DeviceUnavailableError("device 'mps' requested but Apple MPS is not available")
        return torch.device("mps")
    raise ValueError(f"unknown device {preference!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when the CPU has bfloat16 instructions (AVX512-BF16 or AMX-BF16; Linux only).

    There oneDNN runs bfloat16 convolutions about twice as fast as float32
    (measured on this project's AMD EPYC: ECCV16 at 256 px 424 -> 204 ms).
    Read once per process.
    """
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = line.split()
                    return "avx512_bf16" in flags or "amx_bf16" in flags
    except OSError:
        pass
    return False


def select_dtype(precision: str, device: torch.device) -> torch.dtype:
    """Network precision for a precision name and a device.

    ``"auto"`` = float16 on CUDA, bfloat16 on CPUs with native bfloat16
    instructions (see :func:`cpu_has_native_bf16`), float32 elsewhere.

    Raises:
        ValueError: float16 on a CPU (unsupported there) or an unknown name.
    """
    table = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if precision == "auto":
        if device.type == "cuda":
            return torch.float16
        if device.type == "cpu" and cpu_has_native_bf16():
            return torch.bfloat16
        return torch.float32
    if precision not in table:
        raise ValueError(f"unknown precision {precision!r}; use auto, {', '.join(table)}")
    if precision == "float16" and device.type == "cpu":
        raise ValueError("precision float16 is not supported on the CPU; use float32 or bfloat16")
    return table[precision]


# ----------------------------------------------------------------------------- CPU threads

_THREADS_LOCK = threading.Lock()
_THREADS_STATE = {"depth": 0, "saved": 0}


#: Shortest interval over which :func:`cpu_busy` measures the other processes' use.
_BUSY_MIN_INTERVAL = 0.2
_BUSY_STATE: dict[str, Any] = {"sample": None, "verdict": None}
_BUSY_LOCK = threading.Lock()


def _cpu_sample() -> tuple[float, float, float] | None:
    """``(wall s, busy CPU s of the machine, CPU s of this process)``, or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
        with open("/proc/self/stat") as f:
            own = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    values = [int(v) for v in fields]
    # user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait
    busy = sum(values) - values[3] - (values[4] if len(values) > 4 else 0)
    return time.monotonic(), busy / tick, (int(own[11]) + int(own[12])) / tick


def cpu_busy() -> bool:
    """True when *other* processes leave less than one idle core.

    On Linux the machine's busy CPU time minus this process's own, over the time since
    the previous call (at least 0.2 s; between closer calls the last verdict stands), so
    a colorization does not count itself: with the load average (the fallback, for the
    first call and elsewhere), a 2-core machine running only tinct's own hint edits
    reads as busy and drops to one thread.
    """
    now = _cpu_sample()
    if now is not None:
        with _BUSY_LOCK:
            last, verdict = _BUSY_STATE["sample"], _BUSY_STATE["verdict"]
            if last is None or now[0] - last[0] >= _BUSY_MIN_INTERVAL:
                if last is not None:
                    others = max(0.0, (now[1] - last[1]) - (now[2] - last[2])) / (now[0] - last[0])
                    verdict = others + 1.0 > (os.cpu_count() or 1)
                _BUSY_STATE.update(sample=now, verdict=verdict)
        if verdict is not None:
            return bool(verdict)
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - Windows
        return False
    return load + 1.0 > (os.cpu_count() or 1)


def resolve_threads(num_threads: int | str | None, device: torch.device) -> int | None:
    """Intra-op thread count to use for one call (``None`` = leave torch's setting).

    ``"auto"``: one thread on a CPU device when the machine is busy (see
    :func:`cpu_busy`). PyTorch's parallel regions wait for every thread of the
    team, so when other processes hold the cores a 2-thread team is often
    several times slower than a single thread (measured 5-20x on a 2-core VM
    with a background job).
    """
    if num_threads is None or device.type != "cpu":
        return None
    if num_threads == "auto":
        return 1 if cpu_busy() and torch.get_num_threads() > 1 else None
    n = int(num_threads)
    if n < 1:
        raise ValueError(f"num_threads must be >= 1, 'auto' or None, got {num_threads!r}")
    return n


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily set ``torch.set_num_threads(n)`` (process-wide; nested/concurrent safe)."""
    if n is None:
        yield
        return
    with _THREADS_LOCK:
        if _THREADS_STATE["depth"] == 0:
            _THREADS_STATE["saved"] = torch.get_num_threads()
            torch.set_num_threads(n)
        _THREADS_STATE["depth"] += 1
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _THREADS_STATE["depth"] -= 1
            if _THREADS_STATE["depth"] == 0:
                torch.set_num_threads(_THREADS_STATE["saved"])


_BLAS_LOCK = threading.Lock()
_BLAS_STATE: dict[str, Any] = {"depth": 0, "controller": None, "limiter": None}


@contextlib.contextmanager
def blas_single_thread() -> Iterator[None]:
    """Run NumPy/SciPy's BLAS (OpenBLAS, MKL, ...) on one thread for the duration.

    After a BLAS call, OpenBLAS's worker threads keep spinning for a while; on a
    machine with few cores they take the cores PyTorch's next parallel region waits
    for. A 512 px hint edit of ``tinct-base`` interleaves small NumPy/SciPy steps
    (hint rasters, Levin's sparse solve) with network passes, and on this project's
    2-core CPU its network pass took 134 ms instead of 68 (the whole edit 225 ms
    instead of 150). The engine's own BLAS work is small, so one thread costs
    nothing. Process-wide like :func:`torch_threads`, nested/concurrent safe (the
    first caller sets the limit, the last one restores it), through threadpoolctl.
    """
    with _BLAS_LOCK:
        if _BLAS_STATE["depth"] == 0:
            if _BLAS_STATE["controller"] is None:  # finds the loaded BLAS libraries (~15 ms)
                _BLAS_STATE["controller"] = ThreadpoolController()
            _BLAS_STATE["limiter"] = _BLAS_STATE["controller"].limit(limits=1, user_api="blas")
        _BLAS_STATE["depth"] += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_STATE["depth"] -= 1
            if _BLAS_STATE["depth"] == 0:
                _BLAS_STATE["limiter"].restore_original_limits()
                _BLAS_STATE["limiter"] = None


@contextlib.contextmanager
def call_threads(num_threads: int | str | None, device: torch.device) -> Iterator[None]:
    """The thread policy of one engine call: :func:`resolve_threads` and single-threaded BLAS.

    Args:
        num_threads: ``"auto"``, a count, or ``None`` (leave torch's and BLAS's
            thread settings alone).
        device: The call's device.
    """
    if num_threads is None:
        yield
        return
    with blas_single_thread(), torch_threads(resolve_threads(num_threads, device)):
        yield


# ----------------------------------------------------------------------------- model cache


def _is_registered(name: str) -> bool:
    from tinct.models import UnknownModelError, get_record

    try:
        get_record(name)
    except UnknownModelError:
        return False
    return True


def _is_file_reference(name_or_path: str | Path) -> bool:
    """A weights file rather than a name.

    That is a Path, a ``.safetensors`` path, or an existing file that is not
    also a registered name (registered names win).
    """
    p = Path(name_or_path)
    if isinstance(name_or_path, Path) or p.suffix == ".safetensors":
        return True
    return p.exists() and not _is_registered(str(name_or_path))


def model_key(name_or_path: str | Path) -> str:
    """Cache key of a model reference: the resolved path for files, the lowercased name else.

    A user model's key also holds its file's time and size, so a model
    retrained under the same name is loaded afresh.
    """
    if _is_file_reference(name_or_path):
        return str(Path(name_or_path).resolve())
    from tinct.models.user_store import file_signature

    key = str(name_or_path).lower()
    sig = file_signature(key)
    return key if sig is None else f"{key}@{sig}"


#: Layers whose weights autocast casts to the reduced precision on every call.
_AUTOCAST_LAYERS = (
    torch.nn.Conv1d,
    torch.nn.Conv2d,
    torch.nn.Conv3d,
    torch.nn.ConvTranspose1d,
    torch.nn.ConvTranspose2d,
    torch.nn.ConvTranspose3d,
    torch.nn.Linear,
)


def cast_for_inference(
    model: torch.nn.Module, dtype: torch.dtype, *, copy_model: bool = True
) -> torch.nn.Module:
    """Store convolution and linear weights in ``dtype`` once, for autocast inference.

    Under ``torch.autocast`` every convolution casts its float32 weight to the
    reduced precision on *every* call (autocast caches casts only while
    gradients are recorded); for ``zhang-eccv16`` on the CPU that is 6 ms of
    a 210 ms forward pass. Casting exactly those weights once gives the same
    numbers without the per-call copies. Normalisation layers keep their
    float32 parameters, as under autocast.

    Args:
        model: The network.
        dtype: ``torch.bfloat16`` or ``torch.float16`` (float32 returns ``model``).
        copy_model: Cast a deep copy (leave ``model`` as it is).

    Returns:
        The model to run under ``torch.autocast(dtype=dtype)`` (``model`` itself
        for float32, and on devices where the engine does not autocast, e.g. MPS).
    """
    param = next(model.parameters(), None)
    if dtype == torch.float32 or param is None or param.device.type not in ("cpu", "cuda"):
        return model
    out = copy.deepcopy(model) if copy_model else model
    for module in out.modules():
        if isinstance(module, _AUTOCAST_LAYERS):
            module.to(dtype)
    return out


def fold_batch_norms(model: torch.nn.Module) -> torch.nn.Module:
    """Fold every BatchNorm that directly follows a convolution into it (inference only).

    In eval mode ``BN(conv(x)) = conv'(x)`` with ``conv'`` the convolution whose weights
    and bias absorb the normalisation's running statistics and affine parameters, so
    one pass over the feature map is saved per pair (``tinct-base`` on the CPU: 16
    BatchNorms, about 14 ms of a 512 px hint edit). Pairs are found inside
    ``nn.Sequential`` containers (conv at position ``i``, BatchNorm at ``i + 1``); the
    BatchNorm becomes ``nn.Identity``. The outputs equal the unfolded model's up to
    float rounding (about 1e-5 relative).

    Args:
        model: A network in eval mode (modified in place).

    Returns:
        ``model``.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    if model.training:
        raise ValueError("fold_batch_norms needs a model in eval mode")
    for seq in [m for m in model.modules() if isinstance(m, torch.nn.Sequential)]:
        for i in range(len(seq) - 1):
            conv, bn = seq[i], seq[i + 1]
            if (
                type(conv) is torch.nn.Conv2d
                and type(bn) is torch.nn.BatchNorm2d
                and bn.track_running_stats
                and bn.running_mean is not None
                and bn.num_features == conv.out_channels
            ):
                seq[i] = fuse_conv_bn_eval(conv, bn)
                seq[i + 1] = torch.nn.Identity()
    return model


def get_model(
    name_or_path: str | Path,
    device: torch.device | str = "cpu",
    pretrained: bool = True,
    dtype: torch.dtype = torch.float32,
) -> torch.nn.Module:
    """A model loaded for inference: eval, BatchNorms folded, channels-last, in the precision.

    Not cached: loaded colorizers (which hold their models) are cached once, in
    :mod:`tinct.engine.shared`.

    Args:
        name_or_path: Registry name or weights file.
        device: Torch device.
        pretrained: Load trained weights (``False``: random weights, for tests).
        dtype: Inference precision; reduced precisions store the convolution
            and linear weights in it (:func:`cast_for_inference`).

    Returns:
        The model in eval mode.
    """
    from tinct.models import load_model

    arg = Path(name_or_path) if _is_file_reference(name_or_path) else str(name_or_path)
    model = fold_batch_norms(load_model(arg, device=device, pretrained=pretrained).eval())
    # NHWC: faster conv kernels
    model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return cast_for_inference(model, dtype, copy_model=False)
