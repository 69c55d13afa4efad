"""The dot-product model: matrix factorisation with user and item biases, fitted by gradient descent."""

from __future__ import annotations

import torch
from torch import nn

from ncf.config import ModelConfig
from ncf.models.base import EMBEDDING_STD, Recommender, new_embedding


class DotProduct(Recommender):
    """Matrix factorisation with user and item biases: y = p_u · q_i + b_u + b_i (fastbook's DotProductBias),
    plus a global bias b with `config.global_bias` (Rendle et al. 2020's y = b + b_u + b_i + p_u · q_i)."""

    def __init__(self, config: ModelConfig, n_users: int, n_items: int):
        super().__init__(config, n_users, n_items)
        k = config.resolved_factors
        std = config.init_std if config.init_std is not None else EMBEDDING_STD
        self.user_emb = new_embedding(n_users, k, std)
        self.item_emb = new_embedding(n_items, k, std)
        self.user_bias = new_embedding(n_users, 1)
        self.item_bias = new_embedding(n_items, 1)
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
