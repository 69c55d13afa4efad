"""He et al.'s Neural Collaborative Filtering models: GMF, MLP and NeuMF (the GMF and MLP paths side by
side), with NeuMF's initialisation from a trained GMF and MLP. The MLP path takes side features too.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ncf.config import ModelConfig
from ncf.models.base import Recommender, SideFeatures, new_embedding


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


class GMF(Recommender):
    """Generalised matrix factorisation: y = h^T (p_u ⊙ q_i) + b."""

    def __init__(self, config: ModelConfig, n_users: int, n_items: int):
        super().__init__(config, n_users, n_items)
        k = config.resolved_factors
        self.user_emb = new_embedding(n_users, k)
        self.item_emb = new_embedding(n_items, k)
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
        self.user_emb = new_embedding(n_users, half)
        self.item_emb = new_embedding(n_items, half)
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
        self.gmf_user_emb = new_embedding(n_users, k)
        self.gmf_item_emb = new_embedding(n_items, k)
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
