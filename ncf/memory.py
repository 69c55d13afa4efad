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
    env = os.environ.get("NCF_MEMORY_LIMIT_GB")  # an explicit budget for this process (a shared machine), in GiB
    if env:
        try:
            budget = int(float(env) * 2**30)
        except ValueError:
            raise ConfigError(f"NCF_MEMORY_LIMIT_GB must be a number of GiB, got {env!r}.") from None
        limits.append(max(0, budget - resident_bytes()))  # what the process already holds counts against it
    return min(limits) if limits else None


def resident_bytes() -> int:
    """This process's resident memory now (VmRSS), 0 where /proc cannot be read."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def training_bytes(n_positives: int, n_negatives: int, n_parameters: int, embedding_parameters: int,
                   rowwise: bool) -> int:
    """Bytes a Fitter adds at its peak: the epoch's samples, the positives, the model and optimizer.
    Row-wise tables keep weights and two moments (3 floats a number); dense ones also a gradient (4)."""
    samples = n_positives * (1 + n_negatives)
    dense = n_parameters - embedding_parameters
    model = 4 * (4 * dense + (3 if rowwise else 4) * embedding_parameters)
    return EPOCH_BYTES_PER_SAMPLE * samples + POSITIVE_BYTES * n_positives + model


# Bytes per interaction of a leave-one-out split on top of the loaded data: at its peak (sorting by user
# and time, the keys, the masks) and what it keeps (the train and test columns). Measured 96 and 22 on
# 2.5M ML-25M-shaped rows (VmHWM and VmRSS against VmRSS before the split).
SPLIT_PEAK_BYTES = 100
SPLIT_KEPT_BYTES = 24
# Parameters per user and per item of the default NeuMF (32 GMF factors, a 64-wide MLP embedding), the
# size assumed before a model is built.
DEFAULT_PARAMETERS_PER_ROW = 96


def pipeline_bytes(n_interactions: int, n_users: int, n_items: int, n_negatives: int = 4,
                   parameters_per_row: int = DEFAULT_PARAMETERS_PER_ROW) -> int:
    """Bytes that splitting and then training on loaded data add at their peak: the larger of the
    split's own peak and what it keeps plus the training's peak (`training_bytes`, row-wise tables)."""
    n_emb = (n_users + n_items) * parameters_per_row
    train = SPLIT_KEPT_BYTES * n_interactions + training_bytes(n_interactions, n_negatives, n_emb + 30_000, n_emb,
                                                               rowwise=True)
    return max(SPLIT_PEAK_BYTES * n_interactions, train)


def check_pipeline_fits(n_interactions: int, n_users: int, n_items: int, n_negatives: int = 4,
                        available: int | None = None) -> None:
    """Raises ConfigError, before any split is made, when splitting and training on this many loaded
    interactions would need more memory than is available (see `pipeline_bytes`)."""
    available = available_bytes() if available is None else available
    if available is None:
        return
    need = pipeline_bytes(n_interactions, n_users, n_items, n_negatives)
    if need > USABLE_SHARE * available:
        raise ConfigError(_refusal("Splitting and training on", n_interactions, n_negatives, need, available))


def _refusal(what: str, n: int, n_negatives: int, need: int, available: int) -> str:
    gib = 2**30
    fit = int(USABLE_SHARE * available / max(1, need) * n)
    limit = os.environ.get("NCF_MEMORY_LIMIT_GB")
    where = f" (under NCF_MEMORY_LIMIT_GB={limit})" if limit else ""
    return (f"{what} {n:,} interactions with {n_negatives} negatives each needs about {need / gib:.1f} GiB "
            f"more memory, but only {available / gib:.1f} GiB are available{where}, of which a run plans on "
            f"{USABLE_SHARE:.0%} ({USABLE_SHARE * available / gib:.1f} GiB). Train on a smaller sample "
            f"(about {fit:,} interactions would fit), keep only users with more interactions (the data's "
            f"min_per_user), use fewer negatives (--neg), or run on a machine with more memory.")


# Peak bytes of parsing a ratings file per byte of the file (pandas' C reader, the id encoding, the
# duplicate check): measured 2.85 for a 25M-row ML-25M-shaped CSV (1.80 GiB for 647 MiB) and 3.3 for
# ML-32M's shape (2.73 GiB), so 3.5 with some room.
PARSE_BYTES_PER_FILE_BYTE = 3.5


def check_parse_fits(file_bytes: int, label: str, available: int | None = None) -> None:
    """Raises ConfigError before a ratings file is read when parsing it would not fit in memory."""
    available = available_bytes() if available is None else available
    if available is None:
        return
    need = int(PARSE_BYTES_PER_FILE_BYTE * file_bytes)
    if need > USABLE_SHARE * available:
        gib = 2**30
        share = USABLE_SHARE * available / max(1, need)
        raise ConfigError(
            f"Reading {label} ({file_bytes / gib:.1f} GiB) needs about {need / gib:.1f} GiB of memory, but only "
            f"{available / gib:.1f} GiB are available. Use a sample of the file (about {share:.0%} of its rows "
            f"would fit), or run on a machine with more memory.")


def check_training_fits(n_positives: int, n_negatives: int, n_parameters: int, embedding_parameters: int,
                        rowwise: bool, available: int | None = None) -> None:
    """Raises ConfigError when the run would need more memory than the machine has left."""
    available = available_bytes() if available is None else available
    if available is None:
        return
    need = training_bytes(n_positives, n_negatives, n_parameters, embedding_parameters, rowwise)
    if need <= USABLE_SHARE * available:
        return
    raise ConfigError(_refusal("Training on", n_positives, n_negatives, need, available))
