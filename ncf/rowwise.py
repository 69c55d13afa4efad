"""Row-wise AdamW for embedding tables: a step costs what the batch touches, not what the table holds.

A dense optimizer step reads and writes every row of every table (and its two moments), so its cost
per sample grows with the catalogue: 19 ms a step at ML-1M's shape, 306 ms at ML-25M's. Here the
look-up (`RowLookup`) hands the backward pass's gradient over as (unique rows, coalesced gradient),
and `RowAdamW` updates only those rows:

- decoupled weight decay is applied lazily: a row carries the step it was last brought up to date
  at, and when next touched it is multiplied by the product of (1 - lr_s * wd) over the steps since,
  kept as a running sum of logs, so a one-cycle schedule's changing rate is honoured exactly;
- the moments of a touched row first catch up on the steps it missed as dense Adam would have had
  them (m decays by beta1^k, v by beta2^k, and the row moves by the missed momentum steps, a geometric
  sum at the current rate), then take the new gradient; without the catch-up ("lazy" Adam) the
  momentum of rarely seen rows is simply lost;
- `flush()` brings every row up to date before anyone reads the weights.

Adam's L2 weight decay (not AdamW's) is added to the touched rows' gradients only.
"""

from __future__ import annotations

import math

import torch

from ncf import rowkernel


class RowGrad:
    """Where a table's look-ups leave their gradient: the unique rows (U,) and, per look-up, (inverse (B,),
    gradient (B, d)), added onto the rows only when the step gathers them (`add_into`): straight into
    the group's [w | m | v]-wide gradient, without a coalesced copy per table and a concatenation."""

    __slots__ = ("rows", "parts")

    def __init__(self):
        self.rows: torch.Tensor | None = None
        self.parts: list[tuple[torch.Tensor, torch.Tensor]] = []

    def lookup(self, weight: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return RowLookup.apply(weight, index, self)

    def add(self, rows: torch.Tensor, inverse: torch.Tensor, grad: torch.Tensor) -> None:
        if self.rows is None or rows is self.rows:
            self.rows = rows
            self.parts.append((inverse, grad))
            return
        # the same table looked up with another index tensor in one step: one set of rows for both
        merged, remap = torch.unique(torch.cat([self.rows, rows]), return_inverse=True)
        old = len(self.rows)
        self.parts = [(remap[:old][inv], g) for inv, g in self.parts] + [(remap[old:][inverse], grad)]
        self.rows = merged

    def add_into(self, out: torch.Tensor, col: int = 0, kernel: bool = False) -> None:
        """out[:, col:col + d] += this table's gradient on `rows` (out has one row per unique row)."""
        for inverse, grad in self.parts:
            if kernel:
                rowkernel.scatter_rows(out, inverse, grad, col)
            else:
                out[:, col:col + grad.shape[1]].index_add_(0, inverse, grad)

    def clear(self) -> None:
        self.rows = None
        self.parts = []


# The unique rows of the last few index tensors seen: NeuMF looks up the same user (and item) tensor
# in two tables, and one pass serves both (and gives both the same `rows` tensor, which RowAdamW's
# grouped tables rely on). Held by identity, only until the next few look-ups.
_unique_cache: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []


def _unique(index: torch.Tensor, height: int) -> tuple[torch.Tensor, torch.Tensor]:
    for seen, rows, inverse in _unique_cache:
        if seen is index:
            return rows, inverse
    if index.device.type == "cpu" and rowkernel.available():  # one pass over marks, no sort
        rows, inverse = rowkernel.unique_rows(index, height)
    else:
        rows, inverse = torch.unique(index, return_inverse=True)
        rows = rows.long()  # index_copy_ and index_fill_ take int64 rows only
    _unique_cache.insert(0, (index, rows, inverse))
    del _unique_cache[4:]
    return rows, inverse


class RowLookup(torch.autograd.Function):
    """weight[index]; its backward hands the gradient and the unique rows to `sink` and gives the
    weight no dense gradient at all."""

    @staticmethod
    def forward(ctx, weight: torch.Tensor, index: torch.Tensor, sink: RowGrad) -> torch.Tensor:  # (B,) -> (B, d)
        rows, inverse = _unique(index, weight.shape[0])
        ctx.save_for_backward(rows, inverse)
        ctx.sink = sink
        return weight.index_select(0, index)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        rows, inverse = ctx.saved_tensors
        ctx.sink.add(rows, inverse, grad)
        return None, None, None


class RowAdamW(torch.optim.Optimizer):
    """Adam/AdamW over embedding tables whose gradients arrive as `RowGrad`s (see module docstring).

    `groups` lists tables of the same height that are always looked up with the same index tensor
    (NeuMF's GMF and MLP user tables): their weights and both moments live side by side in one buffer
    per group, (rows, 3 * total width) = [weights | m | v], and each table's weight is a view of it,
    so a step gathers and writes back one block of rows per group instead of three per table; on
    large tables those random row accesses are the cost. `decoupled` chooses AdamW's decay (else
    Adam's L2); `catch_up=False` gives plain lazy Adam (moments move only when a row is touched).
    Call `flush()` and `release()` before reading or saving the weights (contiguous copies, moments
    kept) and `attach()` to resume."""

    def __init__(self, groups: list[list[tuple[torch.Tensor, RowGrad]]], lr: float, betas=(0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled: bool = True, catch_up: bool = True,
                 kernel: bool = True, threads: int = 1):
        super().__init__([w for group in groups for w, _ in group],
                         dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.decoupled, self.catch_up, self.threads = decoupled, catch_up, threads
        self.t = 0
        # log_decay[s] = sum of log(1 - lr_j * wd) over steps j <= s (float64: thousands of tiny terms)
        self.log_decay = torch.zeros(1024, dtype=torch.float64)
        self.blocks: list[dict] = []
        for group in groups:
            widths = [w.shape[1] for w, _ in group]
            w0 = group[0][0]
            if any(w.shape[0] != w0.shape[0] for w, _ in group):
                raise ValueError("RowAdamW groups tables of the same height only.")
            offsets = [sum(widths[:i]) for i in range(len(widths))]
            self.blocks.append({
                "buf": torch.zeros(w0.shape[0], 3 * sum(widths), dtype=w0.dtype, device=w0.device),
                "width": sum(widths),
                "last": torch.zeros(w0.shape[0], dtype=torch.long, device=w0.device),
                "tables": [(w, sink, o, d) for (w, sink), o, d in zip(group, offsets, widths, strict=True)],
            })
        self.attached = False
        self.attach()
        # The C loop (ncf.rowkernel) where it builds; the torch ops below compute the same otherwise.
        self.kernel = kernel and all(rowkernel.usable(b["buf"]) for b in self.blocks)

    def attach(self) -> None:
        """The weights become views of their group's buffer (their current values copied in)."""
        if self.attached:
            return
        for block in self.blocks:
            for w, _, o, d in block["tables"]:
                view = block["buf"][:, o:o + d]
                view.copy_(w.data)
                w.data = view
        self.attached = True

    def release(self) -> None:
        """The weights as ordinary contiguous tensors again (evaluation, saving); the moments are kept."""
        if not self.attached:
            return
        for block in self.blocks:
            for w, _, _, _ in block["tables"]:
                w.data = w.data.clone(memory_format=torch.contiguous_format)
        self.attached = False

    def zero_grad(self, set_to_none: bool = True) -> None:
        for block in self.blocks:
            for _, sink, _, _ in block["tables"]:
                sink.clear()

    def _adam(self, state: torch.Tensor, width: int, last: torch.Tensor, g: torch.Tensor | None, upto: int) -> None:
        """In place on state (U, 3 * width) = [w | m | v] of rows last brought up to date at steps `last`
        (U,): the decay owed through step `upto`, the missed steps with zero gradient (catch-up), then
        this step's gradient `g` (U, width) if given, as torch's AdamW computes it."""
        group = self.param_groups[0]
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        w, m, v = state[:, :width], state[:, width:2 * width], state[:, 2 * width:]
        t = max(1, self.t)
        # lr * m_hat / (sqrt(v_hat) + eps), with the bias corrections folded into two scalars.
        step_size, eps_hat = -lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t), eps * math.sqrt(1 - b2 ** t)
        if self.decoupled and wd:
            w.mul_(torch.exp(self.log_decay[upto] - self.log_decay[last.cpu()]).to(w).unsqueeze(1))
        k = (upto - (g is not None) - last).clamp_(min=0).to(w.dtype).unsqueeze(1)  # (U, 1) missed steps
        if g is not None and wd and not self.decoupled:
            g = g.add(w, alpha=wd)
        if not self.catch_up:
            if g is None:
                return
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            w.addcdiv_(m, v.sqrt().add_(eps_hat), value=step_size)
            return
        # Dense Adam moves a row by lr * m_j / sqrt(v_j) on each missed step j, with m_j = m b1^j and
        # v_j = v b2^j: a geometric sum in r = b1 / sqrt(b2). It is taken at this step's rate and
        # denominator (v moves little in a few steps with beta2 = 0.999), so one square root serves both.
        r = b1 / math.sqrt(b2)
        numerator = m * (r * (1 - r ** k) / (1 - r))  # (U, width) the missed momentum steps
        if g is None:
            m.mul_(b1 ** k)
            v.mul_(b2 ** k)
        else:
            m.mul_(b1 ** (k + 1)).add_(g, alpha=1 - b1)
            v.mul_(b2 ** (k + 1)).addcmul_(g, g, value=1 - b2)
            numerator.add_(m)
        w.addcdiv_(numerator, v.sqrt().add_(eps_hat), value=step_size)

    @torch.no_grad()
    def step(self, closure=None) -> None:
        self.t += 1
        t = self.t
        group = self.param_groups[0]
        if t >= len(self.log_decay):
            self.log_decay = torch.cat([self.log_decay, self.log_decay.new_zeros(len(self.log_decay))])
        shrink = 1.0 - group["lr"] * group["weight_decay"] if self.decoupled else 1.0
        self.log_decay[t] = self.log_decay[t - 1] + math.log(max(shrink, 1e-300))
        for block in self.blocks:
            touched = [sink for _, sink, _, _ in block["tables"] if sink.rows is not None]
            if not touched:
                continue
            rows = touched[0].rows
            if len(touched) < len(block["tables"]) or any(sink.rows is not rows for sink in touched):
                raise RuntimeError("Embedding tables grouped for RowAdamW were looked up with different indices; "
                                   "group only tables that the model always indexes with the same tensor.")
            buf, width, last = block["buf"], block["width"], block["last"]
            # (U, width): each table's gradient added into its columns. The kernel zeroes the rows it reads,
            # so one buffer serves every step without a fill.
            g = self._grad_buffer(block, len(rows)) if self.kernel else buf.new_zeros(len(rows), width)
            for _, sink, o, _ in block["tables"]:
                sink.add_into(g, o, self.kernel)
            if self.kernel:
                self._kernel(buf, width, rows, g, last, t)
            else:
                gathered = buf.index_select(0, rows)  # (U, 3 * width)
                self._adam(gathered, width, last.index_select(0, rows), g, t)
                buf.index_copy_(0, rows, gathered)
                last.index_fill_(0, rows, t)
            for sink in touched:
                sink.clear()

    @staticmethod
    def _grad_buffer(block: dict, n_rows: int) -> torch.Tensor:
        kept = block.get("grad")
        if kept is None or len(kept) < n_rows:
            kept = block["grad"] = block["buf"].new_zeros(max(n_rows, 2 * len(kept) if kept is not None else n_rows),
                                                          block["width"])
        return kept[:n_rows]

    @torch.no_grad()
    def flush(self) -> None:
        """Every row brought up to the current step (owed decay and missed momentum steps), before
        anyone reads the weights: evaluation, saving, the end of training."""
        if self.t == 0 or not self.attached:
            return
        for block in self.blocks:
            if self.kernel:
                rows = torch.arange(len(block["last"]), device=block["last"].device)
                self._kernel(block["buf"], block["width"], rows, None, block["last"], self.t)
            else:
                self._adam(block["buf"], block["width"], block["last"], None, self.t)
                block["last"].fill_(self.t)

    def _kernel(self, buf: torch.Tensor, width: int, rows: torch.Tensor, g: torch.Tensor | None, last: torch.Tensor,
                upto: int) -> None:
        group = self.param_groups[0]
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        t = max(1, self.t)
        rowkernel.row_adamw(buf, width, rows, g, last, self.log_decay, upto, b1=b1, b2=b2,
                            step_size=-lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t), eps_hat=eps * math.sqrt(1 - b2 ** t),
                            wd=wd, decoupled=self.decoupled, catch_up=self.catch_up, threads=self.threads)
