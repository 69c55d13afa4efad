"""Every model, neural or classical, as one registry entry: what the CLI offers, what the Model page
explains, which settings apply and their defaults, and the class that implements it.

Nothing else in `ncf` lists models by name: the CLI's choices, `ModelConfig.validate`, `build_model`,
the app's model picker and the shared model tests all read `REGISTRY`. A new model is one `ModelSpec`
here and one class (a `ncf.models.Recommender`) elsewhere.

The classes are named by import path ("module:Class") and resolved on first use, so this module
imports nothing of torch and `ncf.config` can validate against it without an import cycle.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

from ncf.errors import ConfigError

IMPLICIT_ONLY = ("implicit",)
BOTH = ("implicit", "explicit")


@dataclass(frozen=True)
class ModelSpec:
    """One model. `settings` are the ModelConfig fields that change what it computes; `defaults` the
    values of those whose ModelConfig default is None ("the default for this model"); `objectives`
    the objectives it can fit, the first being its default. `gradient` models are fitted by the
    trainer's loop (ncf.train); the others by their own `fit(split, ...)`."""

    name: str
    label: str
    description: str
    formula: str  # LaTeX, for st.latex
    factory: str  # "module:Class"
    settings: tuple[str, ...] = ()
    defaults: dict = field(default_factory=dict)
    objectives: tuple[str, ...] = BOTH
    user_vectors: bool = True
    item_vectors: bool = True
    gradient: bool = True
    features: bool = False  # takes user and item side features beside the ids (ModelConfig.features)
    check: Callable | None = None  # extra checks of a ModelConfig; raises ConfigError

    @property
    def cls(self) -> type:
        module, name = self.factory.split(":")
        return getattr(importlib.import_module(module), name)

    @property
    def default_objective(self) -> str:
        return self.objectives[0]


def _even_first_layer(cfg) -> None:
    layers = cfg.resolved_layers
    if layers[0] % 2:
        raise ConfigError(f"The first MLP layer is the user and item embeddings concatenated, so it "
                          f"must be even; got {layers[0]}.")


def _positive(name: str, what: str, integer: bool = False):
    def check(cfg) -> None:
        value = getattr(cfg, name)
        if value is None:
            return
        if integer and (not isinstance(value, int) or isinstance(value, bool)):
            raise ConfigError(f"{what} is a whole number, got {value!r}.")
        if not value > 0:
            raise ConfigError(f"{what} must be positive, got {value}.")
    return check


def _checks(*checks: Callable) -> Callable:
    def check(cfg) -> None:
        for c in checks:
            c(cfg)
    return check


def _similarity(cfg) -> None:
    if cfg.similarity is not None and cfg.similarity not in SIMILARITIES:
        raise ConfigError(f"Unknown similarity {cfg.similarity!r}; expected one of {', '.join(SIMILARITIES)}.")


SIMILARITIES = ("cosine", "bm25")
# EASE's λ is chosen on held-out interactions from this grid unless given (Steck 2019 reports
# λ in the hundreds for ML-20M-sized data; smaller catalogues prefer the low end).
EASE_LAMBDAS = (100.0, 300.0, 1000.0, 3000.0)

# Defaults read off the validation hold-out of ML-1M users 1-2999 (each user's second-latest item, the
# test items set aside; benchmarks/results_baselines.md). iALS at the shared 32 factors: α 5 and λ 30
# rank it at HR@10 0.730, against 0.712 at implicit's own defaults (α 1, λ 0.01); (α 5, λ 10) 0.727,
# (α 20, λ 10) 0.714, λ 100 0.688. Item-kNN: BM25 beats cosine at every K tried (10-200), K = 50 best
# (0.658; cosine 0.646 there).
IALS_DEFAULTS = {"factors": 128, "reg": 30.0, "confidence": 3.0, "iterations": 15}
NEURAL_FACTORS = {"factors": 32}  # the paper's best NeuMF size on ML-1M (8 plateaued near HR@10 0.655 there)
ITEMKNN_DEFAULTS = {"neighbours": 50, "similarity": "bm25"}

_NCF = ("factors", "objective")
REGISTRY: dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec(
        "neumf", "NeuMF", "He et al.'s Neural Matrix Factorisation: a GMF path and an MLP path with separate "
        "embeddings, their last vectors concatenated into one output layer. Pre-training GMF and MLP first and "
        "starting NeuMF from them is the paper's recipe for the best accuracy.",
        r"\hat y_{ui} = \sigma\big(\mathbf h^\top [\,\mathbf p^G_u \odot \mathbf q^G_i \,;\, "
        r"\mathrm{MLP}([\mathbf p^M_u ; \mathbf q^M_i])\,] + b\big)",
        "ncf.models.ncf:NeuMF", settings=(*_NCF, "layers", "dropout", "pretrain", "alpha", "features"),
        defaults=NEURAL_FACTORS, check=_even_first_layer, features=True),
    ModelSpec(
        "gmf", "GMF", "Each user and item gets a vector of k numbers (its embedding). GMF multiplies them "
        "element by element and a learned weight vector h decides how much each factor matters.",
        r"\hat y_{ui} = \sigma\big(\mathbf h^\top (\mathbf p_u \odot \mathbf q_i) + b\big)",
        "ncf.models.ncf:GMF", settings=_NCF, defaults=NEURAL_FACTORS),
    ModelSpec(
        "mlp", "MLP", "The user and item embeddings are concatenated and passed through a tower of layers that "
        "halve in width; the network can learn interactions a dot product cannot express.",
        r"\mathbf h_0 = [\mathbf p_u ; \mathbf q_i],\quad \mathbf h_\ell = \mathrm{ReLU}(W_\ell \mathbf h_{\ell-1} "
        r"+ \mathbf b_\ell),\quad \hat y_{ui} = \sigma(\mathbf w^\top \mathbf h_L + b)",
        "ncf.models.ncf:MLP", settings=("layers", "dropout", "objective", "features"), check=_even_first_layer,
        features=True),
    ModelSpec(
        "dot", "Dot product", "Classic matrix factorisation fitted by gradient descent: a user's score for an "
        "item is the dot product of their embeddings plus a bias for each (and a global bias b, as Rendle et "
        "al. 2020, with --global-bias).",
        r"\hat y_{ui} = \sigma\big(\mathbf p_u^\top \mathbf q_i + b_u + b_i\big)",
        "ncf.models.dot:DotProduct", settings=(*_NCF, "init_std", "global_bias"), defaults=NEURAL_FACTORS,
        check=_positive("init_std", "The embeddings' initial standard deviation (--init-std)")),
    ModelSpec(
        "embnn", "EmbeddingNN", "fastai's collaborative-filtering network (fastbook ch. 8): embeddings sized by "
        "a rule of thumb, concatenated, a tower of layers, and a sigmoid squeezed into the rating range. It "
        "predicts ratings (explicit feedback) by default.",
        r"\hat r_{ui} = \mathrm{sigmoid\_range}\big(\mathrm{MLP}([\mathbf e_u ; \mathbf e_i]),\ "
        r"\mathrm{low},\ \mathrm{high}\big)",
        "ncf.models.embnn:EmbeddingNN", settings=("objective", "layers", "emb_sizes", "dropout", "batch_norm", "y_range",
                                                  "features", "id_dropout"),
        defaults={"layers": (100, 50)}, objectives=("explicit", "implicit"), features=True),
    ModelSpec(
        "pop", "Most popular", "Recommends what most people interacted with, the same list for everyone. Any "
        "model worth its training time must beat it. (Explicit: an item's mean rating shrunk toward the "
        "global mean.)",
        r"\mathrm{score}(u, i) = |\{v : (v, i) \in \text{train}\}|",
        "ncf.classical.pop:ItemPop", settings=("objective",), user_vectors=False, item_vectors=False, gradient=False),
    ModelSpec(
        "ease", "EASE", "Steck's (2019) shallow autoencoder: one item-item weight matrix B with a zero diagonal, "
        "the closed-form least-squares reconstruction of the user-item matrix X from itself. λ is chosen on "
        "held-out interactions (never the test items) unless given.",
        r"B = I - P\,\mathrm{diag}(1/\mathrm{diag}\,P),\ \ P = (X^\top X + \lambda I)^{-1},\quad "
        r"\hat y_{u\cdot} = \mathbf x_u B",
        "ncf.classical.ease:EASE", settings=("reg",), defaults={"reg": None}, objectives=IMPLICIT_ONLY,
        user_vectors=False, item_vectors=False, gradient=False, check=_positive("reg", "EASE's λ (--reg)")),
    ModelSpec(
        "ials", "iALS", "Implicit alternating least squares (Hu, Koren & Volinsky 2008) through the `implicit` "
        "library: every unobserved pair is a zero with weight 1, every observed one a one with weight α "
        "(implicit 0.7's convention); user and item factors are solved for in turn, each in closed form.",
        r"\min_{P,Q} \sum_{u,i} c_{ui} (x_{ui} - \mathbf p_u^\top \mathbf q_i)^2 + \lambda(\|P\|^2 + \|Q\|^2),"
        r"\ \ c_{ui} = \alpha \text{ if } x_{ui} = 1 \text{ else } 1",
        "ncf.classical.ials:IALS", settings=("factors", "reg", "confidence", "iterations"),
        defaults=IALS_DEFAULTS, objectives=IMPLICIT_ONLY, gradient=False,
        check=_checks(_positive("reg", "iALS regularisation (--reg)"), _positive("confidence", "The confidence "
                      "weight α (--confidence)"), _positive("iterations", "Iterations", integer=True))),
    ModelSpec(
        "itemknn", "Item-kNN", "Item-based nearest neighbours: each item keeps its K most similar items (cosine "
        "of the item columns, or BM25-weighted dot products); a user's score for an item sums its similarity "
        "to every item the user has.",
        r"s_{ij} = \frac{\mathbf x_{\cdot i}^\top \mathbf x_{\cdot j}}{\|\mathbf x_{\cdot i}\|\,\|\mathbf x_{\cdot j}\|}"
        r"\ (\text{top } K \text{ per } i),\quad \hat y_{uj} = \sum_{i \in I_u} s_{ij}",
        "ncf.classical.itemknn:ItemKNN", settings=("neighbours", "similarity"),
        defaults=ITEMKNN_DEFAULTS, objectives=IMPLICIT_ONLY, user_vectors=False,
        item_vectors=False, gradient=False,
        check=_checks(_positive("neighbours", "The neighbourhood size K (--neighbours)", integer=True), _similarity)),
    ModelSpec(
        "puresvd", "PureSVD", "Cremonesi et al.'s (2010) PureSVD: a truncated SVD of the user-item matrix with "
        "missing entries as zeros; a user's scores are their row projected onto the top-k item factors.",
        r"X \approx U_k \Sigma_k V_k^\top,\quad \hat y_{u\cdot} = \mathbf x_u V_k V_k^\top",
        "ncf.classical.puresvd:PureSVD", settings=("factors",), defaults=NEURAL_FACTORS, objectives=IMPLICIT_ONLY, gradient=False),
)}

# The ModelConfig fields some models add; one given to a model it does not apply to is refused.
EXTRA_SETTINGS = ("reg", "confidence", "iterations", "neighbours", "similarity", "init_std")


def names(gradient: bool | None = None) -> tuple[str, ...]:
    """Every model's name, or only those fitted by gradient descent (True) or not (False)."""
    return tuple(n for n, s in REGISTRY.items() if gradient is None or s.gradient == gradient)


def get(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"Unknown model {name!r}; expected one of {', '.join(REGISTRY)}.") from None


def setting(cfg, name: str):
    """A setting's value for this configuration: as given, else the model's default."""
    value = getattr(cfg, name)
    return get(cfg.model).defaults.get(name) if value is None else value


def help_text() -> str:
    """One line per model for the CLI's --model help."""
    return "; ".join(f"{n}: {s.label}" for n, s in REGISTRY.items())
