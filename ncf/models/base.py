"""What every model shares: the `Recommender` contract (forward on (user, item) pairs, every item's
scores for some users, embedding tables, per-example norms), the `Embedding` table the trainer drives
(a faster dense backward, or its gradient handed to the trainer's optimizer through its `row_sink`), and the side and time feature
inputs (`SideFeatures`, `TimeFeatures`) that `Recommender.feature_specs` reads. Each family of models
is a module beside this one (`ncf.models.ncf`, `.dot`, `.embnn`); `ncf.classical` builds on it too.
"""

from __future__ import annotations

import torch
from torch import nn

from ncf.config import ModelConfig
from ncf.rowwise import RowGrad
from ncf.tablewise import BatchGrad


EMBEDDING_STD = 0.01  # He et al. initialise embeddings from N(0, 0.01); fastai uses the same scale


def get_emb_sz(n: int) -> int:
    """fastai's rule of thumb for an embedding's width given the number of distinct ids."""
    return int(min(600, round(1.6 * n**0.56)))


def sigmoid_range(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Squashes x into (low, high); fastai sets high a little above the top rating so 5 is reachable."""
    return torch.sigmoid(x) * (high - low) + low


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class _Lookup(torch.autograd.Function):
    """Row look-up whose backward is one `index_add_` into a dense gradient. On the CPU this is
    several times faster than `embedding_dense_backward`, which sorts the indices first."""

    @staticmethod
    def forward(ctx, weight: torch.Tensor, index: torch.Tensor) -> torch.Tensor:  # (n, d), (B,) -> (B, d)
        ctx.save_for_backward(index)
        ctx.weight_shape = weight.shape
        return weight.index_select(0, index)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (index,) = ctx.saved_tensors
        dense = torch.zeros(ctx.weight_shape, dtype=grad.dtype, device=grad.device)
        return dense.index_add_(0, index, grad), None


class Embedding(nn.Embedding):
    """nn.Embedding (same parameters, same state dict) with the faster dense backward above; the
    trainer may hand its gradient to its own optimizer instead (`row_sink`: ncf.rowwise.RowAdamW's
    coalesced rows, or ncf.tablewise.TableAdamW's batch rows) or switch it to sparse gradients.
    On a GPU torch's own backward is as fast, but the trainer asks for this one (`index_add_backward`)
    under a CUDA graph, where it needs no host synchronisation."""

    row_sink: RowGrad | BatchGrad | None = None
    index_add_backward: bool = False

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        if self.row_sink is not None and torch.is_grad_enabled():
            return self.row_sink.lookup(self.weight, index)
        if self.sparse or not torch.is_grad_enabled() or (self.weight.device.type != "cpu"
                                                          and not self.index_add_backward):
            return super().forward(index)
        return _Lookup.apply(self.weight, index)


def new_embedding(n: int, dim: int, std: float = EMBEDDING_STD) -> nn.Embedding:
    emb = Embedding(n, dim)
    nn.init.normal_(emb.weight, 0.0, std)
    return emb


class Recommender(nn.Module):
    """What every model offers: forward on pairs, scores of all items for some users, embeddings."""

    def __init__(self, config: ModelConfig, n_users: int, n_items: int):
        super().__init__()
        self.config = config
        self.n_users = n_users
        self.n_items = n_items
        self.explicit = config.resolved_objective == "explicit"

    def output(self, logit: torch.Tensor) -> torch.Tensor:
        if self.explicit:
            return sigmoid_range(logit, *self.config.y_range)
        return logit

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:  # (B,), (B,) -> (B,)
        raise NotImplementedError

    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        """(B,) users -> (B, n_items) scores on forward's scale. Generic: every pair through forward."""
        items = torch.arange(self.n_items, device=users.device)
        pair_users = users.repeat_interleave(self.n_items)
        return self.forward(pair_users, items.repeat(len(users))).view(len(users), self.n_items)

    @property
    def feature_specs(self) -> tuple:
        """The side features' specs (ncf.data.features.FeatureSpec), users' first; () for ids only."""
        return tuple(s for m in self.modules() if isinstance(m, (SideFeatures, TimeFeatures)) for s in m.specs)

    def embedding_tables(self) -> dict[str, tuple[nn.Embedding, nn.Embedding]]:
        return {}

    def embeddings(self) -> list[nn.Embedding]:
        """Every embedding table (biases included): the trainer may switch these to sparse gradients."""
        return [m for m in self.modules() if isinstance(m, nn.Embedding)]

    def example_sq_norms(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:  # (B,), (B,) -> (B,)
        """Per example, the squared L2 norm of the id embedding rows it touches (TrainConfig.example_l2):
        every user table's row of `user` and every item table's row of `item`."""
        total = torch.zeros(len(user), device=user.device)
        for user_table, item_table in self.embedding_tables().values():
            total = total + user_table(user).square().sum(-1) + item_table(item).square().sum(-1)
        return total

    def forward_and_sq_norms(self, user: torch.Tensor, item: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(forward(user, item), example_sq_norms(user, item)); a model may share the look-ups."""
        return self.forward(user, item), self.example_sq_norms(user, item)


class SideFeatures(nn.Module):
    """One side's (users' or items') features, looked up by user or item index, so the trainer's
    (user, item) batches need nothing else. Categorical codes get an embedding each (code 0 = unknown,
    learned like any other), a bag (genres) the mean of its codes' embeddings, numbers pass as they are
    (normalised already).

    All of it is one product: each row's inputs are stored once as a (n, K) matrix, one-hot for a
    category, 1/len on each of a bag's codes, the value of a number; times the block-diagonal of the
    embedding matrices (and a 1 per number) that is exactly the concatenation of the looked-up
    embeddings. Two operations a batch instead of several per feature: on a 2-core CPU at batch 512 the
    per-feature look-ups cost 2.5x the ids-only step, this about 1.2x. The inputs are a persistent
    buffer: a saved run's weights carry them. The embedding matrices are plain parameters, not
    nn.Embedding tables, since their gradient is dense (the trainer's sparse or row-wise updates are
    for the id tables)."""

    def __init__(self, specs, tables: dict):
        super().__init__()
        self.specs = tuple(specs)
        self.weights = nn.ParameterDict()
        columns = []
        for spec in self.specs:
            table = torch.as_tensor(tables[spec.name])
            if spec.kind == "numeric":
                columns.append(table.to(torch.float32)[:, None])
                continue
            codes = table.to(torch.long)
            hot = torch.zeros(len(codes), spec.cardinality)
            if spec.kind == "categorical":
                hot[torch.arange(len(codes)), codes] = 1.0
            else:  # (n, max_len) codes padded with 0: padding and unseen genres are left out of the mean
                hot.scatter_(1, codes, 1.0)
                hot[:, 0] = 0.0
                hot /= hot.sum(1, keepdim=True).clamp_min(1.0)
            columns.append(hot)
            self.weights[spec.name] = nn.Parameter(torch.randn(spec.cardinality, spec.width) * EMBEDDING_STD)
        self.register_buffer("inputs", torch.cat(columns, dim=1))  # (n, K)
        self.register_buffer("one", torch.ones(1, 1), persistent=False)

    @property
    def width(self) -> int:
        return sum(s.width for s in self.specs)

    def forward(self, index: torch.Tensor | None = None) -> torch.Tensor:  # (B,) -> (B, width); None: every row
        x = self.inputs if index is None else self.inputs.index_select(0, index)
        blocks = [self.one if s.kind == "numeric" else self.weights[s.name] for s in self.specs]
        return x @ torch.block_diag(*blocks)  # (B, K) @ (K, width)


class TimeFeatures(nn.Module):
    """The time features of one interaction (ncf.data.features: hour, weekday, years since release), from a
    (B, 3) context [hour, weekday, time in years] beside the (user, item) pair. Hour and weekday are
    embeddings (code 0 unknown, hour h is code h + 1); years since release is the context's time minus the
    item's release year (a buffer), normalised, 0 where the year is unknown. Without a context (evaluation,
    recommendation) a user's row of `user_time` is used: their last training interaction, or the latest
    time in the training data for a user with none. Both buffers are saved with the weights."""

    def __init__(self, specs, tables: dict):
        super().__init__()
        from ncf.data.features import ITEM_YEAR, USER_TIME

        self.specs = tuple(specs)
        self.weights = nn.ParameterDict({s.name: nn.Parameter(torch.randn(s.cardinality, s.width) * EMBEDDING_STD)
                                         for s in self.specs if s.kind != "numeric"})
        self.register_buffer("user_time", torch.as_tensor(tables[USER_TIME], dtype=torch.float32))  # (n_users, 3)
        self.register_buffer("item_year", torch.as_tensor(tables[ITEM_YEAR], dtype=torch.float32))  # (n_items,)
        self.age = next((s for s in self.specs if s.name == "years_since_release"), None)

    @property
    def width(self) -> int:
        return sum(s.width for s in self.specs)

    def context(self, user: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:  # -> (B, 3)
        return self.user_time.index_select(0, user) if context is None else context

    def per_context(self, ctx: torch.Tensor) -> list[torch.Tensor]:
        """The hour and weekday embeddings of (B, 3) contexts, in spec order: [(B, w), ...]."""
        out = []
        for spec in self.specs:
            if spec.kind != "numeric":
                column = 0 if spec.name == "hour" else 1
                out.append(self.weights[spec.name].index_select(0, ctx[:, column].long() + 1))
        return out

    def ages(self, ctx: torch.Tensor, items: torch.Tensor | None) -> torch.Tensor:
        """Normalised years since release: (B,) for paired items, (B, n_items) for every item (items None)."""
        year = self.item_year if items is None else self.item_year.index_select(0, items)
        age = (ctx[:, 2:3] - year[None, :]) if items is None else ctx[:, 2] - year
        return torch.nan_to_num((age - self.age.mean) / self.age.std, nan=0.0)

    def forward(self, user, item, context=None) -> torch.Tensor:  # (B,), (B,), (B, 3) -> (B, width)
        ctx = self.context(user, context)
        parts, embedded = [], iter(self.per_context(ctx))
        for spec in self.specs:
            parts.append(self.ages(ctx, item)[:, None] if spec.kind == "numeric" else next(embedded))
        return torch.cat(parts, dim=-1)
