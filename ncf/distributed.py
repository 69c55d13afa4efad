"""One training job on many processes: `torchrun --nproc_per_node N -m ncf train ...`.

Data-parallel, as torch's DistributedDataParallel: every process (rank) holds the whole model,
embedding tables included, takes steps on its own share of each epoch's samples, and DDP averages
the gradients with one all-reduce per step, so every rank applies the same update and the weights
stay identical. gloo carries the all-reduce between CPU processes, NCCL between GPUs.

Who does what: every rank trains; rank 0 alone evaluates, emits events, saves the run and prints
the summary, while the others wait at a barrier. Nothing here runs unless torchrun's environment
(WORLD_SIZE > 1) says so: a plain `python -m ncf train`, the app and the tests see a world of one,
and every helper below is then a no-op.

Tables that outgrow one device are out of scope: they are replicated here, and TorchRec's sharded
embeddings are the path for them (see the README), not a sharding of our own.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import re
import signal
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ncf.errors import ConfigError, NCFError

# How long a rank waits for the others at a collective before giving up. A lost peer is noticed at
# once (its socket closes); this bounds only a peer that hangs. Rank 0's evaluation of a large
# catalogue runs while the others wait, so this is generous.
TIMEOUT = datetime.timedelta(minutes=30)
# Steps between agreements on the stop flag (one small all-reduce): a stop lands within this many steps.
STOP_SYNC_STEPS = 16


# What a collective's error says when the peer at the other end is gone (gloo raises a plain RuntimeError).
PEER_LOST = ("gloo/transport", "Connection reset by peer", "Connection closed by peer", "NCCL", "ProcessGroup")


class PeerFailed(NCFError):
    """Another process of the job stopped (crashed or was killed); this one stops too, saving nothing."""


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def __str__(self) -> str:
        return f"rank {self.rank} of {self.world_size}"


def from_env(environ=None) -> Context:
    """The job's shape as torchrun describes it (RANK, WORLD_SIZE, LOCAL_RANK); a world of one without them."""
    env = os.environ if environ is None else environ
    try:
        return Context(rank=int(env.get("RANK", 0)), world_size=int(env.get("WORLD_SIZE", 1)),
                       local_rank=int(env.get("LOCAL_RANK", 0)))
    except ValueError:
        raise ConfigError("RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers (torchrun sets them); got "
                          f"{env.get('RANK')!r}, {env.get('WORLD_SIZE')!r}, {env.get('LOCAL_RANK')!r}.") from None


def current() -> Context:
    """The context of an initialised job, else a world of one (even under torchrun before `init`)."""
    if dist.is_available() and dist.is_initialized():
        return Context(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=from_env().local_rank)
    return Context()


def init(device: str = "auto") -> Context:
    """Joins the job torchrun started, if any: gloo for CPU processes, NCCL for GPUs (each rank on the
    GPU of its LOCAL_RANK). Returns the context; a world of one joins nothing."""
    ctx = from_env()
    if not ctx.active:
        return ctx
    if not dist.is_available():
        raise ConfigError("This torch build has no torch.distributed; run a single process (python -m ncf train).")
    name = (device or "auto").lower()
    cuda = torch.cuda.is_available() and (name == "auto" or name.startswith("cuda"))
    if name == "mps":
        raise ConfigError("A job on many processes runs on CPUs (gloo) or CUDA GPUs (NCCL), not Apple's MPS; "
                          "use --device cpu.")
    if cuda:
        if ctx.local_rank >= torch.cuda.device_count():
            raise ConfigError(f"LOCAL_RANK {ctx.local_rank} has no GPU: this machine has "
                              f"{torch.cuda.device_count()}; start at most that many processes per node.")
        torch.cuda.set_device(ctx.local_rank)  # "cuda" below then means this rank's GPU
    backend = "nccl" if cuda else "gloo"
    dist.init_process_group(backend=backend, timeout=TIMEOUT)
    # torchrun ends the surviving ranks with SIGTERM when one fails; as an exception it unwinds
    # through `save_run`'s clean-up, so no half-written run folder is left behind.
    signal.signal(signal.SIGTERM, _terminated)
    return ctx


def _terminated(signum, frame):
    raise PeerFailed("torchrun ended this process (SIGTERM), usually because another rank failed; nothing was saved.")


def current_backend() -> str:
    """The backend carrying the collectives ("gloo", "nccl"), or "none" in a world of one."""
    return str(dist.get_backend()) if current().active else "none"


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def guard(ctx: Context):
    """Turns a collective that failed because a peer vanished into `PeerFailed`, one clear line."""
    try:
        yield
    except RuntimeError as exc:  # dist.DistError is one; gloo's lost connection is a plain RuntimeError
        if not isinstance(exc, dist.DistError) and not any(m in str(exc) for m in PEER_LOST):
            raise  # anything else is a bug and keeps its traceback
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        first = re.sub(r"^\[[^\]]*\]\s*", "", first)  # gloo's "[.../pair.cc:537] " source location
        first = first.split(". ")[0]  # "Read error [127.0.0.1]:8112: Connection reset by peer"
        raise PeerFailed(f"{ctx}: another process of this job stopped, so this one stops too and saves "
                         f"nothing ({first[:200]}).") from exc


def barrier() -> None:
    if current().active:
        dist.barrier()


@contextlib.contextmanager
def main_first():
    """Rank 0 runs the block first (a download, a cache write), the others after it, reading what it wrote."""
    ctx = current()
    if ctx.active and not ctx.is_main:
        dist.barrier()
    yield
    if ctx.active and ctx.is_main:
        dist.barrier()


def any_set(flag: bool, device: torch.device) -> bool:
    """True on every rank when `flag` is true on any: the ranks agree on stopping at the same step."""
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def total(value: float, device: torch.device, op: str = "sum") -> float:
    """`value` summed (or its max) over the ranks; the value itself in a world of one."""
    if not current().active:
        return value
    t = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return float(t.item())


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The module a training step calls: DDP around `model` in a job of many, `model` itself otherwise.
    DDP broadcasts rank 0's weights (and buffers) at construction, so every rank starts the same."""
    if not current().active:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def broadcast_weights(model: torch.nn.Module) -> None:
    """Rank 0's weights and buffers to every rank (after rank 0 alone restored its best epoch)."""
    if not current().active:
        return
    with torch.no_grad():
        for tensor in model.state_dict().values():
            dist.broadcast(tensor, src=0)


def shard(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """This rank's indices into `n` samples for one epoch: a permutation shared by all ranks (the same
    `generator` state everywhere) cut into equal shares, as torch's DistributedSampler. Every rank
    must take the same number of steps (else one waits forever at an all-reduce), so the permutation
    is padded by wrapping around to a multiple of the world size: up to world_size - 1 samples appear
    twice in an epoch, and they are different ones each epoch."""
    ctx = current()
    perm = torch.randperm(n, generator=generator, device=device)
    per_rank = -(-n // ctx.world_size)
    pad = per_rank * ctx.world_size - n
    if pad:
        perm = torch.cat([perm, perm[:pad]])
    return perm[ctx.rank * per_rank:(ctx.rank + 1) * per_rank]


def local_count(n: int) -> int:
    """Samples a rank takes of `n` in an epoch (see `shard`)."""
    return -(-n // current().world_size)


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 of every weight and buffer's bytes, in state-dict order: equal digests, identical weights."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]
