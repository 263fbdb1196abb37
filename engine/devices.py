"""Choosing the device: auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps."""

from __future__ import annotations

import torch

from .errors import RnnTuiError


class DeviceError(RnnTuiError):
    """A device that is unknown or not available here; the message names those that are."""


def available_devices() -> list[str]:
    names = ["cpu"]
    if torch.cuda.is_available():
        names.append("cuda")
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return names


def resolve_device(name: str = "auto") -> torch.device:
    """The torch.device for a name, or a DeviceError that lists the available ones."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    available = available_devices()
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device {name!r}; available here: {', '.join(available)}") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"unsupported device {name!r}; available here: {', '.join(available)}")
    if name not in available:
        raise DeviceError(f"device {name!r} is not available here; available: {', '.join(available)}")
    return device


def describe(device: torch.device) -> str:
    """A short human name, e.g. 'cuda:0 (NVIDIA H100)' or 'cpu'."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return str(device)


def to_device(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch of the corpus on `device`, without making the host wait for the GPU.

    From pageable memory, CUDA waits for the stream to drain before a host-to-device copy:
    one synchronization per batch. From pinned memory the copy is queued like a kernel (and
    PyTorch keeps the pinned block until the copy has run).
    """
    if device.type == "cuda":
        return batch.pin_memory().to(device, non_blocking=True)
    return batch.to(device)


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels, so wall-clock timings are honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def free_memory(device: torch.device) -> int | None:
    """Bytes free for a new model on device, or None where it cannot be told."""
    try:
        if device.type == "cuda":
            return torch.cuda.mem_get_info(device)[0]
        if device.type == "cpu":
            import os
            return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError, RuntimeError):
        return None
    return None
