"""TableAdamW (ncf.tablewise): torch's fused dense Adam(W) to the bit, fed the batch's rows instead of a
dense gradient, and the trainer's use of it."""

from __future__ import annotations

import pytest
import torch

from ncf import rowkernel
from ncf.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from ncf.data import leave_one_out, synthetic
from ncf.models import build_model
from ncf.tablewise import BatchGrad, TableAdamW
from ncf.train import Fitter, resolve_train_config, train

pytestmark = pytest.mark.skipif(not rowkernel.available(), reason="no C compiler for ncf.rowkernel")


@pytest.mark.parametrize("decoupled", [True, False])
def test_equals_fused_adam_to_the_bit(decoupled):
    torch.manual_seed(0)
    ours = torch.nn.Parameter(torch.randn(50, 8))
    ref = ours.detach().clone().requires_grad_()
    sink = BatchGrad()
    opt = TableAdamW([(ours, sink)], lr=0.01, weight_decay=0.1, decoupled=decoupled)
    opt_ref = (torch.optim.AdamW if decoupled else torch.optim.Adam)([ref], lr=0.01, weight_decay=0.1, fused=True)
    for step in range(40):
        index = torch.randint(0, 50, (64,), dtype=torch.int32 if step % 2 else torch.int64)
        grad_rows = torch.randn(64, 8)
        for o in (opt, opt_ref):  # a one-cycle schedule moves the rate and beta1 every step
            o.param_groups[0]["lr"] = 0.01 * (1 + step % 5)
            o.param_groups[0]["betas"] = (0.85 + 0.01 * (step % 10), 0.999)
        opt.zero_grad()
        sink.lookup(ours, index).backward(grad_rows)
        opt.step()
        opt_ref.zero_grad(set_to_none=True)
        ref.grad = torch.zeros(50, 8).index_add_(0, index.long(), grad_rows)
        opt_ref.step()
        assert torch.equal(ours.detach(), ref.detach()), f"differs after step {step + 1}"
    state = opt_ref.state[ref]
    assert torch.equal(opt.slots[0][2], state["exp_avg"]) and torch.equal(opt.slots[0][3], state["exp_avg_sq"])
    assert not opt.slots[0][4].any()  # the gradient buffer is left clean for the next step


@pytest.mark.parametrize("n", [1, 9, 16, 33])  # torch's vector loop, its scalar tail, and both
@pytest.mark.parametrize("decoupled", [True, False])
def test_layers_equal_fused_adam_to_the_bit(n, decoupled):
    torch.manual_seed(0)
    ours = torch.nn.Parameter(torch.randn(n))
    ref = ours.detach().clone().requires_grad_()
    opt = TableAdamW([], lr=0.01, weight_decay=0.1, decoupled=decoupled, params=[ours])
    opt_ref = (torch.optim.AdamW if decoupled else torch.optim.Adam)([ref], lr=0.01, weight_decay=0.1, fused=True)
    for step in range(300):
        for o in (opt, opt_ref):
            o.param_groups[0]["lr"] = 0.01 * (1 + (step % 7) / 7)
            o.param_groups[0]["betas"] = (0.85 + 0.1 * ((step * 37) % 11) / 11, 0.999)
        grad = torch.randn(n)
        ours.grad, ref.grad = grad.clone(), grad.clone()
        opt.step()
        opt_ref.step()
        assert torch.equal(ours.detach(), ref.detach()), f"differs after step {step + 1}"


def test_a_dense_gradient_on_a_table_is_refused_not_lost():
    w = torch.nn.Parameter(torch.randn(10, 4))
    opt = TableAdamW([(w, BatchGrad())], lr=0.01)
    w[torch.tensor([1, 2])].sum().backward()  # a look-up past the sink
    with pytest.raises(RuntimeError, match="dense gradient"):
        opt.step()


def test_trainer_uses_it_and_trains_exactly_as_the_dense_fused_step(monkeypatch):
    split = leave_one_out(synthetic(n_users=60, n_items=40, mean_per_user=12, seed=0), seed=0)
    cfg = RunConfig(data=DataConfig(source="synthetic"), model=ModelConfig(model="neumf", factors=8, layers=(16, 8)),
                    train=TrainConfig(epochs=2, batch_size=64, seed=0))

    def run(tablewise: bool):
        monkeypatch.setattr(Fitter, "_use_tablewise", lambda self: tablewise)
        torch.manual_seed(0)
        return train(cfg, split)

    fast, dense = run(True), run(False)
    for (name, a), (_, b) in zip(fast.model.state_dict().items(), dense.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert fast.metrics == dense.metrics


def test_the_default_cpu_trainer_picks_it_for_small_tables():
    split = leave_one_out(synthetic(n_users=60, n_items=40, mean_per_user=12, seed=0), seed=0)
    cfg = RunConfig(model=ModelConfig(model="neumf", factors=8, layers=(16, 8)))
    tcfg = resolve_train_config(cfg, split)
    fitter = Fitter(build_model(cfg.model, split.n_users, split.n_items), split, tcfg, torch.device("cpu"))
    assert fitter.tablewise and not fitter.rowwise and not fitter.sparse
    assert isinstance(fitter.optimizers[0], TableAdamW)
    sgd = Fitter(build_model(cfg.model, split.n_users, split.n_items), split, tcfg, torch.device("cpu"), optimizer="sgd")
    assert not sgd.tablewise
