"""Row-wise AdamW (ncf.rowwise) against torch's dense AdamW, and the trainer's use of it."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from ncf import rowkernel
from ncf.config import ModelConfig
from ncf.models import build_model
from ncf.rowwise import RowAdamW, RowGrad, RowLookup


def _pair(catch_up: bool = True, wd: float = 0.1):
    torch.manual_seed(0)
    start = torch.randn(30, 4) * 0.1
    dense, rowwise = start.clone().requires_grad_(), start.clone().requires_grad_()
    sink = RowGrad()
    return (start, dense, torch.optim.AdamW([dense], lr=0.01, weight_decay=wd),
            rowwise, sink, RowAdamW([[(rowwise, sink)]], lr=0.01, weight_decay=wd, catch_up=catch_up))


def _run(schedule, catch_up: bool = True, lrs=None):
    start, dense, opt_d, rowwise, sink, opt_r = _pair(catch_up)
    target = torch.randn(30, 4, generator=torch.Generator().manual_seed(1))
    for step, rows in enumerate(schedule):
        if lrs is not None:
            for opt in (opt_d, opt_r):
                opt.param_groups[0]["lr"] = lrs[step]
        for w, opt in ((dense, opt_d), (rowwise, opt_r)):
            opt.zero_grad()
            x = w[rows] if w is dense else RowLookup.apply(w, rows, sink)
            ((x - target[rows]) ** 2).sum().backward()
            opt.step()
    opt_r.flush()
    opt_r.release()
    return start, dense.detach(), rowwise.detach()


def test_rowwise_equals_dense_adamw_when_every_row_is_touched():
    lrs = [0.01 * (1 + (i % 7)) / 7 for i in range(40)]  # a changing rate, as one-cycle has it
    _, dense, rowwise = _run([torch.arange(30)] * 40, lrs=lrs)
    torch.testing.assert_close(rowwise, dense, atol=1e-6, rtol=1e-5)


def test_untouched_rows_catch_up_with_dense_decay_and_momentum():
    # Past the first steps (where bias correction still moves), a row skipped for 5 steps ends where
    # dense AdamW leaves it, to within a small fraction of how far it moved.
    start, dense, rowwise = _run([torch.arange(30)] * 2000 + [torch.arange(10)] * 5 + [torch.arange(30)])
    moved = (dense - start).abs().max()
    assert (rowwise - dense).abs().max() < 0.01 * moved
    _, _, lazy = _run([torch.arange(30)] * 2000 + [torch.arange(10)] * 5 + [torch.arange(30)], catch_up=False)
    assert (lazy - dense)[10:].abs().max() > 10 * (rowwise - dense)[10:].abs().max()


def test_decay_is_owed_until_flushed():
    start, dense, opt_d, rowwise, sink, opt_r = _pair()
    rows = torch.arange(3)
    for _ in range(10):
        opt_r.zero_grad()
        RowLookup.apply(rowwise, rows, sink).sum().backward()
        opt_r.step()
    untouched = rowwise.detach()[3:].clone()
    torch.testing.assert_close(untouched, start[3:])  # not yet decayed...
    opt_r.flush()
    torch.testing.assert_close(rowwise.detach()[3:], start[3:] * (1 - 0.01 * 0.1) ** 10)  # ...now exactly


def test_neumf_rowwise_matches_dense_on_a_small_case():
    """The whole model, every row in every batch: the trainer's row-wise path and one dense AdamW agree."""
    torch.manual_seed(0)
    dense = build_model(ModelConfig(model="neumf", factors=4, layers=(8, 4)), 30, 20)
    rowwise = copy.deepcopy(dense)
    sinks = {id(e): RowGrad() for e in rowwise.embeddings()}
    for e in rowwise.embeddings():
        e.row_sink = sinks[id(e)]
    groups = [[(e.weight, sinks[id(e)]) for e in side] for side in zip(*rowwise.embedding_tables().values(), strict=True)]
    emb_ids = {id(e.weight) for e in rowwise.embeddings()}
    opts_r = [RowAdamW(groups, lr=0.01, weight_decay=0.1),
              torch.optim.AdamW([p for p in rowwise.parameters() if id(p) not in emb_ids], lr=0.01, weight_decay=0.1)]
    opt_d = torch.optim.AdamW(dense.parameters(), lr=0.01, weight_decay=0.1)
    g = torch.Generator().manual_seed(0)
    for _ in range(30):
        u, i = torch.randint(0, 30, (64,), generator=g), torch.randint(0, 20, (64,), generator=g)
        u[:30], i[:20] = torch.arange(30), torch.arange(20)
        y = torch.randint(0, 2, (64,), generator=g).float()
        for model, opts in ((dense, [opt_d]), (rowwise, opts_r)):
            loss = F.binary_cross_entropy_with_logits(model(u, i), y)
            for opt in opts:
                opt.zero_grad()
            loss.backward()
            for opt in opts:
                opt.step()
    opts_r[0].flush()
    opts_r[0].release()
    for (name, a), b in zip(dense.named_parameters(), rowwise.parameters(), strict=True):
        torch.testing.assert_close(b, a, atol=2e-6, rtol=1e-4, msg=name)


def test_grouped_tables_looked_up_apart_fail_loudly():
    a, b = torch.zeros(5, 2, requires_grad=True), torch.zeros(5, 3, requires_grad=True)
    sa, sb = RowGrad(), RowGrad()
    opt = RowAdamW([[(a, sa), (b, sb)]], lr=0.01)
    (RowLookup.apply(a, torch.tensor([0, 1]), sa).sum() + RowLookup.apply(b, torch.tensor([2, 3]), sb).sum()).backward()
    with pytest.raises(RuntimeError, match="different indices"):
        opt.step()


@pytest.mark.skipif(not rowkernel.available(), reason="no C compiler here: the torch path is used")
@pytest.mark.parametrize("catch_up", [True, False])
@pytest.mark.parametrize("decoupled", [True, False])
def test_c_kernel_computes_what_the_torch_ops_compute(catch_up, decoupled):
    torch.manual_seed(0)
    start = torch.randn(50, 3) * 0.1
    runs = []
    for kernel in (True, False):
        w = start.clone().requires_grad_()
        sink = RowGrad()
        opt = RowAdamW([[(w, sink)]], lr=0.01, weight_decay=0.1, decoupled=decoupled, catch_up=catch_up, kernel=kernel)
        assert opt.kernel == kernel
        g = torch.Generator().manual_seed(1)
        for step in range(60):
            opt.param_groups[0]["lr"] = 0.01 * (1 + step % 5) / 5
            rows = torch.randint(0, 50 if step % 3 == 0 else 10, (20,), generator=g)
            opt.zero_grad()
            (RowLookup.apply(w, rows, sink) ** 2).sum().backward()
            opt.step()
        opt.flush()
        opt.release()
        runs.append(w.detach())
    torch.testing.assert_close(runs[0], runs[1], atol=1e-6, rtol=1e-5)


@pytest.mark.skipif(not rowkernel.available(), reason="no C compiler here: the torch path is used")
def test_kernel_threads_compute_the_same_and_leave_the_gradient_clean():
    torch.manual_seed(0)
    start = torch.rand(4000, 3 * 8) * 0.1  # [w | m | v], v >= 0
    rows = torch.randperm(4000)[:3000]
    grad = torch.randn(3000, 8)
    out = []
    for threads in (1, 2):
        buf, last, g = start.clone(), torch.zeros(4000, dtype=torch.long), grad.clone()
        log_decay = torch.log(torch.full((8,), 0.999, dtype=torch.float64)).cumsum(0)
        rowkernel.row_adamw(buf, 8, rows, g, last, log_decay, 3, b1=0.9, b2=0.999, step_size=-0.01, eps_hat=1e-8,
                            wd=0.1, decoupled=True, catch_up=True, threads=threads)
        assert not g.any()  # read and zeroed: the next step's buffer needs no fill
        assert (last[rows] == 3).all() and (last.sum() == 3 * 3000)
        out.append(buf)
    assert torch.equal(out[0], out[1])
    assert not torch.equal(out[0], start)


@pytest.mark.skipif(not rowkernel.available(), reason="no C compiler here: the torch path is used")
@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
def test_unique_rows_in_one_pass_are_torch_unique_in_first_seen_order(dtype):
    index = torch.tensor([5, 2, 5, 9, 2, 0, 9, 9], dtype=dtype)
    rows, inverse = rowkernel.unique_rows(index, height=10)
    assert rows.tolist() == [5, 2, 9, 0] and torch.equal(rows[inverse], index.long())
    big = torch.randint(0, 50_000, (4096,), dtype=dtype, generator=torch.Generator().manual_seed(0))
    rows, inverse = rowkernel.unique_rows(big, height=50_000)
    assert torch.equal(rows.sort().values, torch.unique(big).long()) and torch.equal(rows[inverse], big.long())
    again, _ = rowkernel.unique_rows(index, height=10)  # the marks were left clean
    assert again.tolist() == [5, 2, 9, 0]
