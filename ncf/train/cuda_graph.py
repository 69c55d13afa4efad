"""A whole training step (forward, loss, backward, optimizer update) recorded once as a CUDA graph and
replayed for every full batch: at small batches a GPU step is bound by kernel launches, and a replay
launches them all at once. Used only on CUDA, with a constant learning rate or one held in a tensor.

Recipe as in PyTorch's "whole network capture" example: a few eager warm-up steps on a side stream,
gradients set to None, then capture; the optimizer must be `capturable`, so its step counter and
learning rate live on the device and a replay reads them there.
"""

from __future__ import annotations

import torch

WARMUP_STEPS = 3  # eager steps on a side stream before capture, as torch's graph docs require


class CapturedStep:
    """Calls `fitter.compute_step(users, items, target)` eagerly for the first WARMUP_STEPS full
    batches, then records it into a graph and replays that graph with each new batch copied into
    static input buffers. Batches of another size (an epoch's last one) run eagerly."""

    def __init__(self, fitter, batch_size: int):
        self.fitter = fitter
        self.batch_size = batch_size
        device = fitter.device
        self.users = torch.zeros(batch_size, dtype=torch.long, device=device)
        self.items = torch.zeros(batch_size, dtype=torch.long, device=device)
        self.target = torch.zeros(batch_size, dtype=torch.float32, device=device)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.loss: torch.Tensor | None = None
        self.warm = 0
        self.side = torch.cuda.Stream(device=device)

    def __call__(self, users: torch.Tensor, items: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if len(users) != self.batch_size:
            return self.fitter.eager_step(users, items, target)
        self.users.copy_(users)
        self.items.copy_(items)
        self.target.copy_(target)
        if self.graph is None and self.warm < WARMUP_STEPS:
            self.side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self.side):
                loss = self.fitter.eager_step(self.users, self.items, self.target)
            torch.cuda.current_stream().wait_stream(self.side)
            self.warm += 1
            return loss
        if self.graph is None:
            for opt in self.fitter.optimizers:
                opt.zero_grad(set_to_none=True)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.loss = self.fitter.compute_step(self.users, self.items, self.target)
        self.graph.replay()
        return self.loss.clone()
