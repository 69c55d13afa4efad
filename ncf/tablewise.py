"""torch's AdamW over whole embedding tables, to the bit, without a dense gradient.

A dense AdamW step on the CPU first zeroes a gradient as large as each table, adds the batch's rows
into it (`index_add_` in the look-up's backward), then reads it in the fused update. At ML-1M's shape
the zeroing and adding cost more than the update itself (benchmarks/results_engine.md). Here the
look-up (`BatchLookup`) leaves its (index, gradient rows) in a `BatchGrad`; the step adds them into
a kept gradient buffer and runs one pass over every element that applies AdamW in torch's order of
operations and zeroes the buffer behind it (ncf.rowkernel). Every row still moves at every step, as
dense AdamW moves it, so the results are the fused step's; ncf.rowwise is for tables far larger than
a batch, where touching every row is the cost.
"""

from __future__ import annotations

import torch

from ncf import rowkernel


class BatchGrad:
    """Where a table's look-ups leave their gradient: (index (B,), rows (B, d)) per look-up this step."""

    __slots__ = ("pairs",)

    def __init__(self):
        self.pairs: list[tuple[torch.Tensor, torch.Tensor]] = []

    def lookup(self, weight: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return BatchLookup.apply(weight, index, self)

    def add(self, index: torch.Tensor, grad: torch.Tensor) -> None:
        self.pairs.append((index, grad))

    def clear(self) -> None:
        self.pairs.clear()


class BatchLookup(torch.autograd.Function):
    """weight[index]; its backward hands the gradient rows to `sink` and gives the weight none."""

    @staticmethod
    def forward(ctx, weight: torch.Tensor, index: torch.Tensor, sink: BatchGrad) -> torch.Tensor:
        ctx.save_for_backward(index)
        ctx.sink = sink
        return weight.index_select(0, index)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (index,) = ctx.saved_tensors
        ctx.sink.add(index, grad)
        return None, None, None


class TableAdamW(torch.optim.Optimizer):
    """Adam (L2 decay) or AdamW (decoupled) with the same numbers as `torch.optim.AdamW(fused=True)`:
    over embedding tables fed by `BatchGrad`s, and over `params` with ordinary gradients (a model's
    layers: one C call each instead of the optimizer machinery, which costs more than their update at
    batch 2048). A parameter not touched in a step is skipped, as torch skips one without a gradient.
    CPU, float32, contiguous tensors only (`usable`)."""

    def __init__(self, tables: list[tuple[torch.Tensor, BatchGrad]], lr: float, betas=(0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled: bool = True,
                 params: list[torch.Tensor] = ()):
        params = list(params)
        if not self.usable([w for w, _ in tables] + params):
            raise RuntimeError("TableAdamW needs the C kernel (ncf.rowkernel) and CPU float32 contiguous tensors.")
        super().__init__([w for w, _ in tables] + params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.decoupled = decoupled
        # (weight, sink or None, m, v, gradient buffer for a table or None, steps taken)
        self.slots = [[w, sink, torch.zeros_like(w), torch.zeros_like(w), torch.zeros_like(w), 0] for w, sink in tables]
        self.slots += [[p, None, torch.zeros_like(p), torch.zeros_like(p), None, 0] for p in params]

    @staticmethod
    def usable(tensors: list[torch.Tensor]) -> bool:
        return rowkernel.available() and all(t.device.type == "cpu" and t.dtype == torch.float32
                                             and t.is_contiguous() for t in tensors)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for w, sink, *_ in self.slots:
            if sink is not None:
                sink.clear()
            else:
                w.grad = None

    @torch.no_grad()
    def step(self, closure=None) -> None:
        group = self.param_groups[0]
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        for slot in self.slots:
            w, sink, m, v, g, _ = slot
            if sink is None:
                if w.grad is None:
                    continue
                g = w.grad if w.grad.is_contiguous() else w.grad.contiguous()
            else:
                if w.grad is not None:  # a look-up that bypassed the sink: its gradient would be lost
                    raise RuntimeError("An embedding table received a dense gradient; TableAdamW reads only the "
                                       "rows its look-ups hand over (ncf.models.base.Embedding with a BatchGrad sink).")
                if not sink.pairs:
                    continue
                for index, rows in sink.pairs:
                    rowkernel.scatter_rows(g, index, rows)
                sink.clear()
            slot[5] += 1
            rowkernel.table_adamw(w, m, v, g, lr=lr, b1=b1, b2=b2, eps=eps, wd=wd, decoupled=self.decoupled,
                                  step=slot[5])
