"""Where and how the network runs: device and precision choice, loading a model for inference.

Shared by :class:`tinct.engine.colorizer.Colorizer` and anything else that runs a tinct
network (batch jobs, the bridge server). Nothing here knows about images.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import torch

__all__ = [
    "DeviceUnavailableError",
    "cast_for_inference",
    "fold_batch_norms",
    "get_model",
    "model_key",
    "select_device",
    "select_dtype",
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
