"""The neural models: He et al.'s GMF, MLP and NeuMF, a dot-product MF with biases and fastai's
EmbeddingNN, on the `Recommender` contract every model shares (the classical ones are in
`ncf.classical`; `ncf.registry` lists them all).

Every model maps (user, item) index pairs to one raw output: a logit for the implicit objective, a
rating squashed by `sigmoid_range` for the explicit one. Training, sampling and evaluation live in
`ncf.train` and `ncf.evaluate`; models only hold tensors.

One module per family, each registered in `ncf.registry` by its path ("ncf.models.ncf:NeuMF"):
`base` (the contract, `Embedding`, the side and time feature inputs), `ncf` (GMF, MLP, NeuMF),
`dot` (DotProduct), `embnn` (EmbeddingNN); `build` makes a model from its configuration and
describes its layers. This package only re-exports their public names; its modules never import it.
"""

from ncf.models.base import (
    EMBEDDING_STD,
    Embedding,
    Recommender,
    SideFeatures,
    TimeFeatures,
    count_parameters,
    get_emb_sz,
    new_embedding,
    sigmoid_range,
)
from ncf.models.build import build_model, describe_architecture
from ncf.models.dot import DotProduct
from ncf.models.embnn import EmbeddingNN
from ncf.models.ncf import GMF, MLP, NeuMF, neumf_from_pretrained

__all__ = [
    "EMBEDDING_STD",
    "DotProduct",
    "Embedding",
    "EmbeddingNN",
    "GMF",
    "MLP",
    "NeuMF",
    "Recommender",
    "SideFeatures",
    "TimeFeatures",
    "build_model",
    "count_parameters",
    "describe_architecture",
    "get_emb_sz",
    "neumf_from_pretrained",
    "new_embedding",
    "sigmoid_range",
]
