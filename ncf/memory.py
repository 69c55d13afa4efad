"""Will a training run fit in memory? Estimated up front, so that a run too large for the machine is
refused with the reason and what to do, instead of being killed by the OOM killer mid-epoch.

The estimate counts what `ncf.train.Fitter` allocates on top of the loaded split (measured on
ML-25M-shaped data, benchmarks/large_data.py): an epoch's shuffled samples and their transients,
the training positives and their sorted keys, and the model with its optimizer state.
"""

from __future__ import annotations

import os
from pathlib import Path

from ncf.errors import ConfigError

# Bytes per epoch sample at the peak of `Fitter.epoch_data` with int32 indices: the permutation (4),
# users and items before and after it (4 + 4 each), the negatives' own users and items while the
# concatenation is built (4 + 4 per negative) and the bool target (1); not the last epoch's data
# first (it is freed before the next is drawn). 21 counted, rounded up.
EPOCH_BYTES_PER_SAMPLE = 24
# Bytes per training positive: int32 users and items (8), int64 sorted keys for excluding seen
# items and the sort's transient (8 + 16).
POSITIVE_BYTES = 32
# Share of the available memory a run may plan to use: the rest is slack for the allocator, the
# evaluation's chunks and whatever else runs on the machine.
USABLE_SHARE = 0.85


def available_bytes() -> int | None:
    """Memory this process may still take: the smaller of the kernel's MemAvailable and the room left
    under a cgroup (v2) limit; None where neither can be read (then nothing is refused)."""
    limits = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                limits.append(int(line.split()[1]) * 1024)
                break
    except OSError:
        pass
    try:
        cg = Path("/sys/fs/cgroup")
        high = (cg / "memory.max").read_text().strip()
        if high != "max":
            limits.append(int(high) - int((cg / "memory.current").read_text()))
    except (OSError, ValueError):
        pass
    env = os.environ.get("NCF_MEMORY_LIMIT_GB")  # an explicit budget (a shared machine), in GiB
    if env:
        try:
            limits.append(int(float(env) * 2**30))
        except ValueError:
            raise ConfigError(f"NCF_MEMORY_LIMIT_GB must be a number of GiB, got {env!r}.") from None
    return min(limits) if limits else None


def training_bytes(n_positives: int, n_negatives: int, n_parameters: int, embedding_parameters: int,
                   rowwise: bool) -> int:
    """Bytes a Fitter adds at its peak: the epoch's samples, the positives, the model and optimizer.
    Row-wise tables keep weights and two moments (3 floats a number); dense ones also a gradient (4)."""
    samples = n_positives * (1 + n_negatives)
    dense = n_parameters - embedding_parameters
    model = 4 * (4 * dense + (3 if rowwise else 4) * embedding_parameters)
    return EPOCH_BYTES_PER_SAMPLE * samples + POSITIVE_BYTES * n_positives + model


def check_training_fits(n_positives: int, n_negatives: int, n_parameters: int, embedding_parameters: int,
                        rowwise: bool, available: int | None = None) -> None:
    """Raises ConfigError when the run would need more memory than the machine has left."""
    available = available_bytes() if available is None else available
    if available is None:
        return
    need = training_bytes(n_positives, n_negatives, n_parameters, embedding_parameters, rowwise)
    if need <= USABLE_SHARE * available:
        return
    gib = 2**30
    fit = int(USABLE_SHARE * available / max(1, need) * n_positives)
    raise ConfigError(
        f"Training on {n_positives:,} interactions with {n_negatives} negatives each needs about {need / gib:.1f} GiB "
        f"more memory, but only {available / gib:.1f} GiB are available. Train on a smaller sample (about "
        f"{fit:,} interactions would fit), keep only users with more interactions (the data's min_per_user), use "
        f"fewer negatives (--neg), or run on a machine with more memory.")
