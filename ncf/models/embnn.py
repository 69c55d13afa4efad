"""fastai's EmbeddingNN, with user and item side features and per-interaction time features as inputs
beside the ids (`SideFeatures`, `TimeFeatures` in `ncf.models.base`)."""

from __future__ import annotations

import torch
from torch import nn

from ncf.config import ModelConfig
from ncf.models.base import Recommender, SideFeatures, TimeFeatures, get_emb_sz, new_embedding


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
        self.user_emb = new_embedding(n_users, user_dim)
        self.item_emb = new_embedding(n_items, item_dim)
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
