"""The neural models: He et al.'s GMF, MLP and NeuMF, a dot-product MF with biases and fastai's
EmbeddingNN, on the `Recommender` contract every model shares (the classical ones are in
`ncf.classical`; `ncf.registry` lists them all).

Every model maps (user, item) index pairs to one raw output: a logit for the implicit objective, a
rating squashed by `sigmoid_range` for the explicit one. Training, sampling and evaluation live in
`ncf.train` and `ncf.evaluate`; models only hold tensors.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ncf.config import ModelConfig
from ncf.rowwise import RowGrad, RowLookup

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
    trainer may switch it to row-wise gradients (`row_sink`, for ncf.rowwise.RowAdamW) or sparse ones.
    On a GPU torch's own backward is as fast, but the trainer asks for this one (`index_add_backward`)
    under a CUDA graph, where it needs no host synchronisation."""

    row_sink: RowGrad | None = None
    index_add_backward: bool = False

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        if self.row_sink is not None and torch.is_grad_enabled():
            return RowLookup.apply(self.weight, index, self.row_sink)
        if self.sparse or not torch.is_grad_enabled() or (self.weight.device.type != "cpu"
                                                          and not self.index_add_backward):
            return super().forward(index)
        return _Lookup.apply(self.weight, index)


def _embedding(n: int, dim: int, std: float = EMBEDDING_STD) -> nn.Embedding:
    emb = Embedding(n, dim)
    nn.init.normal_(emb.weight, 0.0, std)
    return emb


def _lecun_uniform_(linear: nn.Linear) -> nn.Linear:
    """The NCF code's initialisation of the prediction layer (Keras 'lecun_uniform'), zero bias."""
    bound = math.sqrt(3.0 / linear.in_features)
    nn.init.uniform_(linear.weight, -bound, bound)
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)
    return linear


def _tower(sizes: tuple[int, ...], dropout: float = 0.0) -> nn.Sequential:
    """Linear+ReLU layers sizes[0] -> sizes[1] -> ... (Glorot-uniform weights, as the NCF code), each
    ReLU followed by dropout when asked (NVIDIA's large-batch recipe uses 0.5)."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=False):
        linear = nn.Linear(n_in, n_out)
        nn.init.xavier_uniform_(linear.weight)
        nn.init.zeros_(linear.bias)
        layers += [linear, nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


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


class GMF(Recommender):
    """Generalised matrix factorisation: y = h^T (p_u ⊙ q_i) + b."""

    def __init__(self, config: ModelConfig, n_users: int, n_items: int):
        super().__init__(config, n_users, n_items)
        k = config.resolved_factors
        self.user_emb = _embedding(n_users, k)
        self.item_emb = _embedding(n_items, k)
        self.out = _lecun_uniform_(nn.Linear(k, 1))

    def hidden(self, user, item):  # (B, k): the last GMF vector NeuMF concatenates
        return self.user_emb(user) * self.item_emb(item)

    def forward(self, user, item):
        return self.output(self.out(self.hidden(user, item)).squeeze(-1))

    def score_users(self, users):
        # h^T (p ⊙ q) = (p ⊙ h) · q: one matrix product for all items.
        weighted = self.user_emb(users) * self.out.weight  # (B, k)
        return self.output(weighted @ self.item_emb.weight.T + self.out.bias)

    def embedding_tables(self):
        return {"gmf": (self.user_emb, self.item_emb)}


def _split_products(x: torch.Tensor) -> bool:
    """A layer over a concatenation [a; b] as W_a a + W_b b (no concatenation, fewer copies) pays on
    the CPU; on a GPU the step is bound by kernel launches and the one product over the concatenation
    wins (H200: NeuMF 0.90x the plain loop with the split products)."""
    return x.device.type == "cpu"


class _MLPPath(nn.Module):
    """User and item embeddings (layers[0] / 2 each) concatenated and sent through the tower; with side
    features, [user embedding ; user features ; item embedding ; item features] (as EmbeddingNN)."""

    def __init__(self, layers: tuple[int, ...], n_users: int, n_items: int, dropout: float = 0.0, features=None):
        super().__init__()
        half = layers[0] // 2
        if features is not None and features.side("context"):
            from ncf.errors import ConfigError

            raise ConfigError("The time features are per interaction; only EmbeddingNN takes them.")
        self.user_emb = _embedding(n_users, half)
        self.item_emb = _embedding(n_items, half)
        self.user_features = self.item_features = None
        if features is not None and features.side("user"):
            self.user_features = SideFeatures(features.side("user"), features.tables)
        if features is not None and features.side("item"):
            self.item_features = SideFeatures(features.side("item"), features.tables)
        self.user_width = half + (self.user_features.width if self.user_features is not None else 0)
        extra = self.user_width - half + (self.item_features.width if self.item_features is not None else 0)
        self.width = layers[-1] if len(layers) > 1 else layers[0] + extra  # what the path outputs
        self.tower = _tower((layers[0] + extra, *layers[1:]), dropout)

    @property
    def has_features(self) -> bool:
        return self.user_features is not None or self.item_features is not None

    def user_input(self, users: torch.Tensor) -> torch.Tensor:  # (B,) -> (B, user_width)
        e = self.user_emb(users)
        return e if self.user_features is None else torch.cat([e, self.user_features(users)], dim=-1)

    def item_input(self, items: torch.Tensor | None = None) -> torch.Tensor:  # (B,) or every item
        e = self.item_emb.weight if items is None else self.item_emb(items)
        return e if self.item_features is None else torch.cat([e, self.item_features(items)], dim=-1)

    def forward(self, user, item):  # (B, width)
        if self.has_features:
            return self.tower(torch.cat([self.user_input(user), self.item_input(item)], dim=-1))
        if len(self.tower) == 0 or not _split_products(user):
            return self.tower(torch.cat([self.user_emb(user), self.item_emb(item)], dim=-1))
        # W [p; q] + b computed as W_u p + W_i q + b: the same numbers without materialising the
        # concatenation (and its backward), which costs as much as the layer itself at this size.
        first: nn.Linear = self.tower[0]
        half = self.user_emb.embedding_dim
        h = torch.addmm(first.bias, self.user_emb(user), first.weight[:, :half].T)
        h = torch.addmm(h, self.item_emb(item), first.weight[:, half:].T)
        return self.tower[2:](torch.relu(h))

    def score_users(self, users, chunk_pairs: int = 1 << 21) -> torch.Tensor:
        """(B, n_items, layers[-1]) hidden vectors for every item. The first layer of [p; q] splits into
        W_u p + W_i q, so it is computed once per user and once per item and broadcast, not per pair."""
        if len(self.tower) == 0:  # a tower with no hidden layer: the concatenation itself
            n_items = self.item_emb.num_embeddings
            p = self.user_input(users)[:, None, :].expand(-1, n_items, -1)
            q = self.item_input()[None].expand(len(users), -1, -1)
            return torch.cat([p, q], dim=-1)
        first: nn.Linear = self.tower[0]
        split = self.user_width
        user_part = self.user_input(users) @ first.weight[:, :split].T + first.bias  # (B, d1)
        item_part = self.item_input() @ first.weight[:, split:].T  # (n_items, d1)
        h = torch.relu(user_part[:, None, :] + item_part[None, :, :])  # (B, n_items, d1)
        return self.tower[2:](h)


class MLP(Recommender):
    """Concatenated user and item embeddings through a Linear+ReLU tower, then a linear output."""

    def __init__(self, config: ModelConfig, n_users: int, n_items: int, features=None):
        super().__init__(config, n_users, n_items)
        layers = config.resolved_layers
        self.mlp = _MLPPath(layers, n_users, n_items, config.dropout, features)
        self.out = _lecun_uniform_(nn.Linear(self.mlp.width, 1))

    def forward(self, user, item):
        return self.output(self.out(self.mlp(user, item)).squeeze(-1))

    def score_users(self, users):
        return self.output(self.out(self.mlp.score_users(users)).squeeze(-1))

    def embedding_tables(self):
        return {"mlp": (self.mlp.user_emb, self.mlp.item_emb)}


class NeuMF(Recommender):
    """GMF and MLP with separate embeddings; their last hidden vectors are concatenated before the output."""

    def __init__(self, config: ModelConfig, n_users: int, n_items: int, features=None):
        super().__init__(config, n_users, n_items)
        k = config.resolved_factors
        layers = config.resolved_layers
        self.gmf_user_emb = _embedding(n_users, k)
        self.gmf_item_emb = _embedding(n_items, k)
        self.mlp = _MLPPath(layers, n_users, n_items, config.dropout, features)
        self.out = _lecun_uniform_(nn.Linear(k + self.mlp.width, 1))

    def forward(self, user, item):
        k = self.config.resolved_factors
        gmf = self.gmf_user_emb(user) * self.gmf_item_emb(item)  # (B, k)
        if not _split_products(user) or self.mlp.has_features:
            return self.output(self.out(torch.cat([gmf, self.mlp(user, item)], dim=-1)).squeeze(-1))
        # out([gmf; mlp]) split into its two halves, again sparing the concatenation.
        z = torch.addmm(self.out.bias, gmf, self.out.weight[:, :k].T)
        z = torch.addmm(z, self.mlp(user, item), self.out.weight[:, k:].T)  # (B, 1)
        return self.output(z.squeeze(-1))

    def score_users(self, users):
        k = self.config.resolved_factors
        w_gmf, w_mlp = self.out.weight[0, :k], self.out.weight[0, k:]
        gmf = (self.gmf_user_emb(users) * w_gmf) @ self.gmf_item_emb.weight.T  # (B, n_items)
        mlp = self.mlp.score_users(users) @ w_mlp  # (B, n_items)
        return self.output(gmf + mlp + self.out.bias)

    def embedding_tables(self):
        return {"gmf": (self.gmf_user_emb, self.gmf_item_emb), "mlp": (self.mlp.user_emb, self.mlp.item_emb)}


class DotProduct(Recommender):
    """Matrix factorisation with user and item biases: y = p_u · q_i + b_u + b_i (fastbook's DotProductBias),
    plus a global bias b with `config.global_bias` (Rendle et al. 2020's y = b + b_u + b_i + p_u · q_i)."""

    def __init__(self, config: ModelConfig, n_users: int, n_items: int):
        super().__init__(config, n_users, n_items)
        k = config.resolved_factors
        std = config.init_std if config.init_std is not None else EMBEDDING_STD
        self.user_emb = _embedding(n_users, k, std)
        self.item_emb = _embedding(n_items, k, std)
        self.user_bias = _embedding(n_users, 1)
        self.item_bias = _embedding(n_items, 1)
        # A 0-d parameter only when asked: saved runs without it keep loading (strict state dicts).
        self.bias = nn.Parameter(torch.zeros(())) if config.global_bias else None

    def forward(self, user, item):
        dot = (self.user_emb(user) * self.item_emb(item)).sum(-1)
        y = dot + self.user_bias(user).squeeze(-1) + self.item_bias(item).squeeze(-1)
        return self.output(y if self.bias is None else y + self.bias)

    def score_users(self, users):
        scores = self.user_emb(users) @ self.item_emb.weight.T  # (B, n_items)
        scores = scores + self.user_bias(users) + self.item_bias.weight.T
        return self.output(scores if self.bias is None else scores + self.bias)

    def example_sq_norms(self, user, item):
        """||p_u||² + ||q_i||² + b_u² + b_i² (+ b²) per example: every parameter Rendle et al.'s
        per-example SGD update regularises."""
        return self.forward_and_sq_norms(user, item)[1]

    def forward_and_sq_norms(self, user, item):
        # Each row looked up once for both: a second look-up doubled the step's time (10 ms against 5.8 at
        # batch 1024 on the loaded 2-core machine), its backward being a dense table-sized index_add.
        p, q = self.user_emb(user), self.item_emb(item)  # (B, k) each
        bu, bi = self.user_bias(user).squeeze(-1), self.item_bias(item).squeeze(-1)  # (B,) each
        y = (p * q).sum(-1) + bu + bi
        norms = p.square().sum(-1) + q.square().sum(-1) + bu.square() + bi.square()
        if self.bias is not None:
            y, norms = y + self.bias, norms + self.bias.square()
        return self.output(y), norms

    def embedding_tables(self):
        return {"dot": (self.user_emb, self.item_emb)}


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


class EmbeddingNN(Recommender):
    """fastai's EmbeddingNN (a TabularModel on two categorical columns): embeddings sized by
    `get_emb_sz` unless given, concatenated, then LinBnDrop blocks (Linear, ReLU, optional
    BatchNorm, optional Dropout) and a final Linear.

    With side features (`config.features`, tables from `ncf.data.features.build`), the input is
    [user embedding ; user features ; item embedding ; item features], as TabularModel concatenates
    every categorical embedding and the continuous columns. Time features (per interaction) come last:
    [... ; item features ; hour ; weekday ; years since release], from the context `forward` takes
    (see TimeFeatures)."""

    def __init__(self, config: ModelConfig, n_users: int, n_items: int, features=None):
        super().__init__(config, n_users, n_items)
        user_dim, item_dim = config.emb_sizes or (get_emb_sz(n_users), get_emb_sz(n_items))
        self.user_emb = _embedding(n_users, user_dim)
        self.item_emb = _embedding(n_items, item_dim)
        self.user_features = self.item_features = None
        if features is not None and features.side("user"):
            self.user_features = SideFeatures(features.side("user"), features.tables)
        if features is not None and features.side("item"):
            self.item_features = SideFeatures(features.side("item"), features.tables)
        self.time_features = None
        if features is not None and features.side("context"):
            self.time_features = TimeFeatures(features.side("context"), features.tables)
        self.user_width = user_dim + (self.user_features.width if self.user_features is not None else 0)
        self.item_width = item_dim + (self.item_features.width if self.item_features is not None else 0)
        time_width = self.time_features.width if self.time_features is not None else 0
        sizes = (self.user_width + self.item_width + time_width, *config.resolved_layers)
        blocks: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=False):
            # fastai drops the Linear bias when a BatchNorm follows it (lin_first=True order).
            blocks += [nn.Linear(n_in, n_out, bias=not config.batch_norm), nn.ReLU()]
            if config.batch_norm:
                blocks.append(nn.BatchNorm1d(n_out))
            if config.dropout:
                blocks.append(nn.Dropout(config.dropout))
        self.layers = nn.Sequential(*blocks)
        self.out = nn.Linear(sizes[-1], 1)

    def user_input(self, users: torch.Tensor) -> torch.Tensor:  # (B,) -> (B, user_width)
        e = self.user_emb(users)
        return e if self.user_features is None else torch.cat([self._drop_ids(e), self.user_features(users)], dim=-1)

    def item_input(self, items: torch.Tensor | None = None) -> torch.Tensor:  # (B,) or every item -> (., item_width)
        e = self.item_emb.weight if items is None else self.item_emb(items)
        if self.item_features is None:
            return e
        return torch.cat([self._drop_ids(e), self.item_features(items)], dim=-1)

    def _drop_ids(self, e: torch.Tensor) -> torch.Tensor:
        """In training, each row's id embedding zeroed with probability `id_dropout` (not rescaled: a
        never-seen id's embedding is near zero at inference too)."""
        p = self.config.id_dropout
        if not (self.training and p):
            return e
        return e * (torch.rand(len(e), 1, device=e.device) >= p).to(e.dtype)

    def forward(self, user, item, context=None):  # context: (B, 3) for time features, else unused
        parts = [self.user_input(user), self.item_input(item)]
        if self.time_features is not None:
            parts.append(self.time_features(user, item, context))
        x = torch.cat(parts, dim=-1)
        return self.output(self.out(self.layers(x)).squeeze(-1))

    def score_users(self, users):
        first: nn.Linear = self.layers[0]
        split = self.user_width + self.item_width
        user_part = self.user_input(users) @ first.weight[:, :self.user_width].T  # (B, d1)
        if first.bias is not None:
            user_part = user_part + first.bias
        item_part = self.item_input() @ first.weight[:, self.user_width:split].T  # (n_items, d1)
        h = user_part[:, None, :] + item_part[None, :, :]  # (B, n_items, d1)
        if self.time_features is not None:  # a user's context is the same for every item; the age is not
            tf = self.time_features
            ctx = tf.context(users, None)
            start, embedded = split, iter(tf.per_context(ctx))
            for spec in tf.specs:
                w = first.weight[:, start:start + spec.width]  # (d1, width)
                if spec.kind == "numeric":  # (B, n_items, 1) * (d1,)
                    h = h + tf.ages(ctx, None)[:, :, None] * w[:, 0]
                else:
                    h = h + (next(embedded) @ w.T)[:, None, :]
                start += spec.width
        h = h.flatten(0, 1)  # (B * n_items, d1)
        h = self.layers[1:](h)
        return self.output(self.out(h).view(len(users), self.n_items))

    def embedding_tables(self):
        return {"embnn": (self.user_emb, self.item_emb)}


def build_model(cfg: ModelConfig, n_users: int, n_items: int, features=None) -> Recommender:
    """A freshly initialised model for `cfg` (validated first). A configuration with side features
    needs their tables (`ncf.data.features.build`, or `FeatureSet.empty_like` for a saved run)."""
    from ncf import registry

    cfg.validate()
    cls = registry.get(cfg.model).cls
    if not cfg.features:
        return cls(cfg, n_users, n_items)
    _check_features(cfg, features)
    return cls(cfg, n_users, n_items, features=features)


def _check_features(cfg: ModelConfig, features) -> None:
    from ncf.errors import ConfigError

    if features is None or set(cfg.features) != set(features.names):
        have = "none" if features is None else ", ".join(features.names)
        raise ConfigError(f"The configuration asks for the side features {', '.join(cfg.features)}, but the "
                          f"feature tables given hold {have}; build them with ncf.data.features.build.")


@torch.no_grad()
def neumf_from_pretrained(gmf: GMF, mlp: MLP, config: ModelConfig) -> NeuMF:
    """He et al.'s initialisation: NeuMF's embeddings and tower copied from a trained GMF and MLP, the
    output layer [alpha·h_GMF ; (1 − alpha)·h_MLP] and bias alpha·b_GMF + (1 − alpha)·b_MLP."""
    model = NeuMF(config, gmf.n_users, gmf.n_items)
    alpha = config.alpha
    model.gmf_user_emb.weight.copy_(gmf.user_emb.weight)
    model.gmf_item_emb.weight.copy_(gmf.item_emb.weight)
    model.mlp.load_state_dict(mlp.mlp.state_dict())
    model.out.weight.copy_(torch.cat([alpha * gmf.out.weight, (1 - alpha) * mlp.out.weight], dim=1))
    model.out.bias.copy_(alpha * gmf.out.bias + (1 - alpha) * mlp.out.bias)
    return model.to(gmf.out.weight.device)


def describe_architecture(cfg: ModelConfig, n_users: int, n_items: int, features=None) -> list[dict]:
    """The layers in order, for the Model page: name, output shape, parameter count, and a note.
    The parameter counts add up to `count_parameters(build_model(cfg, n_users, n_items, features))`;
    each side feature is an input row with its width."""
    cfg.validate()
    if cfg.features:
        _check_features(cfg, features)
    rows: list[dict] = []

    def row(name: str, width: int | str, params: int, note: str) -> None:
        rows.append({"name": name, "shape": f"(B, {width})", "params": int(params), "note": note})

    def embeddings(prefix: str, dim: int) -> None:
        row(f"{prefix}user embedding", dim, n_users * dim, f"{n_users:,} users × {dim} numbers each")
        row(f"{prefix}item embedding", dim, n_items * dim, f"{n_items:,} items × {dim} numbers each")

    def tower(sizes: tuple[int, ...], prefix: str = "") -> None:
        drop = f" + Dropout({cfg.dropout:g})" if cfg.dropout else ""
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=False), start=1):
            row(f"{prefix}layer {i}: Linear + ReLU{drop}", n_out, n_in * n_out + n_out, f"h{i} = ReLU(W{i} h{i - 1} + b{i}), "
                f"{n_in}→{n_out}")

    def feature_row(spec, widths: dict) -> None:
        widths.setdefault(spec.side, []).append((spec.name, spec.width))
        if spec.name == "years_since_release":
            row("time feature: years since release (number)", 1, 0,
                f"(interaction year − item's release year − {spec.mean:.4g}) / {spec.std:.4g}; unknown year → 0")
            return
        if spec.side == "context":
            row(f"time feature: {spec.name} (embedding)", spec.width, spec.cardinality * spec.width,
                f"{spec.cardinality - 1} values + unknown × {spec.width}; recommending: the user's last "
                "interaction time")
            return
        if spec.kind == "numeric":
            row(f"{spec.side} feature: {spec.name} (number)", 1, 0,
                f"(x − {spec.mean:.4g}) / {spec.std:.4g}; missing → 0")
            return
        how = "mean of its genres' embeddings" if spec.kind == "bag" else "embedding"
        row(f"{spec.side} feature: {spec.name} ({how})", spec.width, spec.cardinality * spec.width,
            f"{spec.cardinality - 1} categories + unknown × {spec.width} (fastai's rule)")

    def mlp_input(prefix: str, concat_name: str) -> int:
        """The MLP path's embeddings, side features and tower; returns the width it outputs."""
        half = layers[0] // 2
        widths = {"user": [("user id", half)], "item": [("item id", half)]}
        row(f"{prefix}user embedding", half, n_users * half, f"{n_users:,} users × {half} numbers each")
        for spec in features.side("user") if features is not None else ():
            feature_row(spec, widths)
        row(f"{prefix}item embedding", half, n_items * half, f"{n_items:,} items × {half} numbers each")
        for spec in features.side("item") if features is not None else ():
            feature_row(spec, widths)
        total = sum(w for _, w in widths["user"] + widths["item"])
        row(concat_name, total, 0, f"h0 = {' + '.join(str(w) for _, w in widths['user'] + widths['item'])} = "
            f"{total} features")
        sizes = (total, *layers[1:])
        tower(sizes, prefix)
        return sizes[-1]

    explicit = cfg.resolved_objective == "explicit"
    low, high = cfg.y_range
    final_note = (f"rating = sigmoid_range(z, {low:g}, {high:g})" if explicit
                  else "logit z; P(interaction) = sigmoid(z)")
    k, layers = cfg.resolved_factors, cfg.resolved_layers
    if cfg.model == "gmf":
        embeddings("", k)
        row("element-wise product", k, 0, f"p_u ⊙ q_i: {k} features")
        row("output: Linear", 1, k + 1, f"z = h·(p_u ⊙ q_i) + b; {final_note}")
    elif cfg.model == "mlp":
        last = mlp_input("", "concatenate")
        row("output: Linear", 1, last + 1, f"z = w·h{len(layers) - 1} + b; {final_note}")
    elif cfg.model == "neumf":
        embeddings("GMF ", k)
        row("GMF: element-wise product", k, 0, f"p_u ⊙ q_i: {k} features")
        last = mlp_input("MLP ", "MLP: concatenate")
        width = k + last
        row("NeuMF: concatenate", width, 0, f"[GMF {k} ; MLP {last}] = {width} features")
        row("output: Linear", 1, width + 1, f"z = h·[GMF ; MLP] + b; {final_note}")
    elif cfg.model == "dot":
        embeddings("", k)
        row("user bias", 1, n_users, "one number per user")
        row("item bias", 1, n_items, "one number per item")
        if cfg.global_bias:
            row("global bias", 1, 1, "one number for every pair")
        plus = " + b" if cfg.global_bias else ""
        row("dot product + biases", 1, 0, f"z = p_u·q_i + b_u + b_i{plus}; {final_note}")
    elif cfg.model == "embnn":
        du, di = cfg.emb_sizes or (get_emb_sz(n_users), get_emb_sz(n_items))
        rule = "given" if cfg.emb_sizes else "fastai's rule min(600, round(1.6·n^0.56))"
        widths = {"user": [("user id", du)], "item": [("item id", di)]}
        row("user embedding", du, n_users * du, f"{n_users:,} users × {du} ({rule})")
        for spec in features.side("user") if features is not None else ():
            feature_row(spec, widths)
        row("item embedding", di, n_items * di, f"{n_items:,} items × {di} ({rule})")
        for spec in features.side("item") if features is not None else ():
            feature_row(spec, widths)
        for spec in features.side("context") if features is not None else ():
            feature_row(spec, widths)
        parts = widths["user"] + widths["item"] + widths.get("context", [])
        total = sum(w for _, w in parts)
        row("concatenate", total, 0, f"h0 = {' + '.join(str(w) for _, w in parts)} = {total} features")
        sizes = (total, *layers)
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=False), start=1):
            extras = [" + BatchNorm" if cfg.batch_norm else "", f" + Dropout({cfg.dropout:g})" if cfg.dropout else ""]
            params = n_in * n_out + (2 * n_out if cfg.batch_norm else n_out)
            row(f"layer {i}: Linear + ReLU{''.join(extras)}", n_out, params, f"{n_in}→{n_out}")
        row("output: Linear", 1, sizes[-1] + 1, final_note)
    else:  # the classical models describe themselves
        from ncf import registry

        rows += registry.get(cfg.model).cls.describe(cfg, n_users, n_items)
    return rows
