"""Where tensors live: CUDA if present, then Apple MPS, then the CPU; and how many CPU threads to use."""

from __future__ import annotations

import os

import torch

from ncf.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def pick_device(name: str = "auto") -> torch.device:
    """The device to train on. "auto" prefers CUDA, then MPS, then the CPU; naming an absent device
    is an error rather than a silent fallback, so a user never believes a GPU was used when it was not."""
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"Device {name!r} was asked for but this machine has no CUDA GPU; use auto or cpu.")
        return torch.device(name)
    if name == "mps":
        if not _mps_available():
            raise ConfigError("Device 'mps' was asked for but Apple's Metal backend is not available; use auto or cpu.")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"Unknown device {name!r}; expected one of {', '.join(DEVICES)}.")


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def configure_threads() -> int:
    """Sets torch's intra-op threads to half the cores this process may use, at most 4 (or $NCF_THREADS).

    These models are small: a step is a few milliseconds of little matrix products, so extra
    threads gain little, while threads that outnumber free cores spin and wait on each other. On
    this 2-core machine shared with a web server and other jobs, 2 threads trained the synthetic
    default 8x slower than 1 thread under load (61 s against 8 s). Half the cores leaves room for
    the app and for a second job.
    """
    wanted = os.environ.get("NCF_THREADS")
    n = int(wanted) if wanted and wanted.isdigit() and int(wanted) > 0 else max(1, min(4, available_cores() // 2))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
