"""One frozen dataclass per concern; the same objects drive the CLI, the app and a saved run.

Each round-trips through JSON (`to_dict` / `from_dict`), which is how a run folder records
what produced it and how a share link carries a configuration.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ncf import registry
from ncf.errors import ConfigError

MODELS = registry.names()  # read from the registry; kept for the app's choices
OBJECTIVES = ("implicit", "explicit")
OPTIMIZERS = ("adam", "adamw", "sgd", "adagrad")
LOSS_REDUCTIONS = ("mean", "sum")


class _JSON:
    def to_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: dict):
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(d) - set(names)
        if unknown:
            raise ConfigError(f"Unknown {cls.__name__} setting(s): {', '.join(sorted(unknown))}; "
                              f"expected some of {', '.join(names)}.")
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()}
        return cls(**kw)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class DataConfig(_JSON):
    """Where the interactions come from and how they are split for evaluation."""

    source: str = "synthetic"  # "synthetic", a MovieLens name ("ml-1m"), or a path
    split: str = "leave_one_out"  # "leave_one_out", "ratio" or "published"
    test_negatives: int = 99  # candidates per test user in leave-one-out
    test_fraction: float = 0.2  # held-out share in a ratio split
    min_per_user: int = 1
    seed: int = 0
    validation: bool = False  # leave-one-out: also hold out each user's second-latest item to pick the best epoch
    columns: dict | None = None  # column roles of a user's file, overriding detection ({"rating": None}: implicit)


@dataclass(frozen=True)
class ModelConfig(_JSON):
    """Architecture. `None` sizes mean "the default for this model" (see `resolved`)."""

    model: str = "neumf"
    objective: str | None = None  # None: the model's first objective in the registry (explicit for embnn)
    # GMF / NeuMF-GMF / dot-product / iALS / PureSVD embedding size, and the MLP tower's last layer
    # (predictive factors). None: the model's default in ncf.registry (32 for the neural models).
    factors: int | None = None
    layers: tuple[int, ...] | None = None  # MLP tower; the first is the concatenated embedding width
    emb_sizes: tuple[int, int] | None = None  # EmbeddingNN (user, item) sizes; None: fastai's rule
    dropout: float = 0.0  # after each ReLU of the tower (EmbeddingNN, MLP, NeuMF's MLP path)
    batch_norm: bool = False  # EmbeddingNN, as fastai's `use_bn`
    y_range: tuple[float, float] = (0.0, 5.5)  # explicit objective: sigmoid_range(low, high)
    pretrain: bool = False  # NeuMF: train GMF and MLP first, then initialise from them
    alpha: float = 0.5  # NeuMF pre-training: weight of the GMF half of the output layer
    # Classical models' settings. None: the model's default, defined once in ncf.registry.
    reg: float | None = None  # EASE's λ (None: chosen on held-out interactions); iALS's regularisation
    confidence: float | None = None  # iALS: weight α of an observed pair (unobserved ones weigh 1)
    iterations: int | None = None  # iALS: alternating least-squares sweeps
    neighbours: int | None = None  # item-kNN: neighbourhood size K
    similarity: str | None = None  # item-kNN: "cosine" or "bm25"
    # Side features beside the ids (ncf.data.features: "age", "genres", ...), for models that take them
    # (EmbeddingNN); ("all",) until the data is read, then the names the dataset has. (): ids only.
    features: tuple[str, ...] = ()
    # EmbeddingNN with features: the chance that a training pair's user (and item) id embedding is zeroed,
    # so the model also learns to rank from the side features alone, as it must for a user or item it
    # has never seen (DropoutNet's input dropout, Volkovs et al. 2017). 0: off.
    id_dropout: float = 0.0
    # Dot product: the standard deviation of the embeddings' normal initialisation (None: He et al.'s
    # 0.01, ncf.models.EMBEDDING_STD; Rendle et al. 2020 use 0.1), and a global bias b beside b_u and
    # b_i (Rendle et al.'s y = b + b_u + b_i + p_u·q_i; off by default, as fastbook's DotProductBias).
    init_std: float | None = None
    global_bias: bool = False

    @property
    def resolved_objective(self) -> str:
        if self.objective is not None:
            return self.objective
        return registry.get(self.model).default_objective

    @property
    def resolved_factors(self) -> int:
        from ncf import registry

        return self.factors if self.factors is not None else int(registry.setting(self, "factors") or 32)

    @property
    def resolved_layers(self) -> tuple[int, ...]:
        if self.layers is not None:
            return tuple(self.layers)
        spec = registry.REGISTRY.get(self.model)
        if spec is not None and "layers" in spec.defaults:
            return tuple(spec.defaults["layers"])
        # He et al.'s towers: three layers halving down to the predictive factors (32 factors:
        # 128 -> 64 -> 32, the embeddings 64 wide each), so the MLP half is as wide as the GMF half.
        k = self.resolved_factors
        return (4 * k, 2 * k, k)

    def validate(self) -> ModelConfig:
        spec = registry.get(self.model)  # ConfigError for an unknown model
        if self.objective is not None and self.objective not in OBJECTIVES:
            raise ConfigError(f"Unknown objective {self.objective!r}; expected implicit or explicit.")
        if self.resolved_objective not in spec.objectives:
            raise ConfigError(f"{spec.label} fits the {' or '.join(spec.objectives)} objective only, not "
                              f"{self.resolved_objective}.")
        for name in registry.EXTRA_SETTINGS:
            if getattr(self, name) is not None and name not in spec.settings:
                users = [n for n, s in registry.REGISTRY.items() if name in s.settings]
                raise ConfigError(f"The setting {name!r} does not apply to {spec.label}; it applies to "
                                  f"{', '.join(users)}.")
        if self.resolved_factors < 1:
            raise ConfigError(f"The number of factors must be at least 1, got {self.factors}.")
        layers = self.resolved_layers
        if not layers or any(n < 1 for n in layers):
            raise ConfigError(f"Tower layers must be positive sizes such as 64,32,16,8; got {list(layers)}.")
        if self.emb_sizes is not None and (len(self.emb_sizes) != 2 or min(self.emb_sizes) < 1):
            raise ConfigError(f"Embedding sizes are two positive numbers (user, item); got {self.emb_sizes}.")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"Dropout is a probability below 1, got {self.dropout}.")
        lo, hi = self.y_range
        if not lo < hi:
            raise ConfigError(f"The rating range needs low < high, got {lo} to {hi}.")
        if not 0 <= self.alpha <= 1:
            raise ConfigError(f"alpha weighs the GMF half of NeuMF and lies in [0, 1], got {self.alpha}.")
        if self.pretrain and "pretrain" not in spec.settings:
            raise ConfigError("Pre-training initialises NeuMF from GMF and MLP; choose the neumf model.")
        if not 0 <= self.id_dropout < 1:
            raise ConfigError(f"id dropout is a probability below 1, got {self.id_dropout}.")
        if self.id_dropout and (not self.features or self.model != "embnn"):
            raise ConfigError("id dropout teaches EmbeddingNN to rank from side features alone; it needs the "
                              "embnn model and some --features.")
        if self.features:
            from ncf.data.features import check_names

            check_names(self.features)
            if not spec.features:
                takers = [s.label for s in registry.REGISTRY.values() if s.features]
                raise ConfigError(f"{spec.label} takes user and item ids only, not side features; "
                                  f"{', '.join(takers)} take(s) features.")
            if self.pretrain:
                raise ConfigError("Pre-training starts NeuMF from a GMF and an MLP fitted on ids only; with "
                                  "side features train NeuMF without --pretrain.")
        if self.global_bias and "global_bias" not in spec.settings:
            users = [n for n, s in registry.REGISTRY.items() if "global_bias" in s.settings]
            raise ConfigError(f"A global bias does not apply to {spec.label}; it applies to {', '.join(users)}.")
        if spec.check is not None:
            spec.check(self)
        return self


# Defaults by objective. Implicit: the NCF recipe with a larger batch and a one-cycle schedule
# peaking at 0.01 instead of the paper's batch 256-1024 at a constant 0.001: on ML-1M (users 1-2999)
# it reaches the paper-settings loop's quality in fewer, much faster epochs (benchmarks/quality.py).
# 8 epochs rather than 6: with 32 factors, 6 one-cycle epochs ended at HR@10 0.687, 8 passed 0.69.
# AdamW with decoupled weight decay 0.1 (fastai's default wd) rather than plain Adam: without it the
# NCF models peak around epoch 6 and then overfit; with it NeuMF's final HR@10 over seeds 0-3 is
# 0.697-0.703 (mean 0.699) against 0.680-0.697 (mean 0.689), and it is still rising at epoch 8.
# (wd 0.01 and 0.03 changed little, 0.3 held it back: 0.682; benchmarks/results_engine.md.)
# Explicit: fastbook's recipe (5 epochs of one-cycle at 5e-3, decoupled weight decay 0.1) at batch 512
# (on ML-100k: dot MSE 0.817 at 512 against 0.831 at 256 and 0.843 at 128, three seeds each).
TRAIN_DEFAULTS = {
    "implicit": {"epochs": 8, "batch_size": 4096, "lr": 0.01, "optimizer": "adamw", "weight_decay": 0.1,
                 "one_cycle": True},
    "explicit": {"epochs": 5, "batch_size": 512, "lr": 0.005, "optimizer": "adamw", "weight_decay": 0.1,
                 "one_cycle": True},
}


# A default batch size is halved until an epoch has at least this many steps (default_batch_size).
MIN_STEPS_PER_EPOCH = 64


def default_batch_size(objective: str, n_train: int, n_negatives: int) -> int:
    """The recipe's batch size, halved (not below 256) until an epoch of `n_train` observed pairs
    (each with `n_negatives` sampled negatives when implicit) has at least MIN_STEPS_PER_EPOCH steps.
    The synthetic data at 4096 gets 33 steps an epoch, and GMF learns next to nothing in 8 such
    epochs (HR@10 0.51 against 0.71 at the 2048 this gives)."""
    batch = TRAIN_DEFAULTS[objective]["batch_size"]
    samples = n_train * (1 if objective == "explicit" else 1 + n_negatives)
    while batch > 256 and samples < MIN_STEPS_PER_EPOCH * batch:
        batch //= 2
    return batch


@dataclass(frozen=True)
class TrainConfig(_JSON):
    """How to fit. `None` means "the default for this model and objective", resolved by
    `ncf.train.resolve_train_config` (the implicit NCF recipe or fastbook's explicit one); the
    trainer's "start" event and `TrainResult.train_config` carry the resolved values."""

    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str | None = None  # "adam", "adamw", "sgd", "adagrad"
    weight_decay: float | None = None  # adam/sgd/adagrad: L2 penalty; adamw: decoupled (fastai's "true" wd)
    betas: tuple[float, float] | None = None  # Adam/AdamW (beta1, beta2); None: torch's (0.9, 0.999)
    n_negatives: int = 4  # sampled negatives per observed pair (implicit objective)
    exclude_seen: bool = True  # draw negatives only among items the user never interacted with (as the NCF code)
    one_cycle: bool | None = None  # fastai's fit_one_cycle schedule
    seed: int = 0
    device: str = "auto"  # "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", "mps"
    # bf16 autocast on CUDA. Off by default: these models are a few small matrix products a step, so
    # the casts cost more than bf16 saves (H200, ML-1M-sized data: 0.76-0.92x the fp32 step rate).
    mixed_precision: bool = False
    # CUDA: record the whole step as a graph and replay it. None: wherever it applies (a constant rate:
    # one-cycle moves beta1 every step). H200: 6.3x the eager step at batch 4096, 1.06x at 2^20.
    cuda_graph: bool | None = None
    k: int = 10  # cut-off of the ranking metrics
    eval_every: int = 1  # epochs between evaluations
    # How a batch's per-example losses combine: "mean" (torch's default) or "sum", with which plain SGD
    # moves each example's rows as far as per-example SGD would (Rendle et al. 2020's loop, batched).
    loss_reduction: str = "mean"
    # L2 on the parameters each example touches, once per example: every example adds
    # example_l2 / 2 * (||p_u||² + ||q_i||² + b_u² + b_i² [+ b²]), so its gradient is example_l2 times
    # the row, as Rendle et al.'s `--regularization` in their per-example SGD update. A row seen by many
    # examples is shrunk more, unlike weight_decay, which shrinks every row every step. 0: off.
    example_l2: float = 0.0

    def validate(self) -> TrainConfig:
        if self.epochs is not None and self.epochs < 1:
            raise ConfigError(f"Train for at least 1 epoch, got {self.epochs}.")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"The batch size must be at least 1, got {self.batch_size}.")
        if self.lr is not None and not self.lr > 0:
            raise ConfigError(f"The learning rate must be positive, got {self.lr}.")
        if self.optimizer is not None and self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"Unknown optimizer {self.optimizer!r}; expected one of {', '.join(OPTIMIZERS)}.")
        if self.weight_decay is not None and self.weight_decay < 0:
            raise ConfigError(f"Weight decay cannot be negative, got {self.weight_decay}.")
        if self.betas is not None and (len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas)):
            raise ConfigError(f"Adam's betas are two numbers in [0, 1), such as 0.9,0.999; got {self.betas}.")
        if self.n_negatives < 0:
            raise ConfigError(f"The number of negatives cannot be negative, got {self.n_negatives}.")
        if self.k < 1:
            raise ConfigError(f"The metric cut-off k must be at least 1, got {self.k}.")
        if self.eval_every < 1:
            raise ConfigError(f"Evaluate at least every epoch count >= 1, got eval_every={self.eval_every}.")
        if self.loss_reduction not in LOSS_REDUCTIONS:
            raise ConfigError(f"Unknown loss reduction {self.loss_reduction!r}; expected mean or sum.")
        if self.example_l2 < 0:
            raise ConfigError(f"The per-example L2 cannot be negative, got {self.example_l2}.")
        return self


@dataclass(frozen=True)
class RunConfig(_JSON):
    """Everything that produced a run; stored as the run folder's config.json."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    name: str = ""

    def to_dict(self) -> dict:
        return {"data": self.data.to_dict(), "model": self.model.to_dict(),
                "train": self.train.to_dict(), "name": self.name}

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        return cls(data=DataConfig.from_dict(d.get("data", {})), model=ModelConfig.from_dict(d.get("model", {})),
                   train=TrainConfig.from_dict(d.get("train", {})), name=d.get("name", ""))


@dataclass(frozen=True)
class Preset:
    """A named set of settings that differs from the defaults on purpose (a class's quick run, a
    published recipe). Applied under the user's own choices: what a user sets explicitly wins."""

    name: str
    label: str
    description: str
    source: str  # where the settings were read
    model: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)

    def apply(self, cfg: RunConfig) -> RunConfig:
        """`cfg` with this preset's settings; use `apply_preset` to keep a user's explicit choices."""
        return RunConfig(data=cfg.data.replace(**self.data), model=cfg.model.replace(**self.model),
                         train=cfg.train.replace(**self.train), name=cfg.name)


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("quick", "Quick (a class)", "NeuMF small enough to train in seconds on a shared 2-core server: "
           "8 predictive factors and the tower 64,32,16,8, with the default recipe.",
           "this project (the app's default for a class)",
           model={"model": "neumf", "factors": 8, "layers": (64, 32, 16, 8)}),
    Preset("paper", "He et al. 2017", "The NCF paper's settings: Adam at a constant 0.001, batch 256, 4 negatives, "
           "20 epochs, no weight decay; NeuMF with 8 predictive factors and a 3-layer tower.",
           "He et al., Neural Collaborative Filtering, WWW 2017, section 4.1",
           model={"model": "neumf", "factors": 8, "layers": (64, 32, 16, 8)},
           train={"optimizer": "adam", "lr": 0.001, "batch_size": 256, "epochs": 20, "weight_decay": 0.0,
                  "one_cycle": False, "n_negatives": 4}),
    Preset("large-batch", "NVIDIA large batch", "NVIDIA's NCF recipe for GPUs: batches of 2^20 samples, Adam at "
           "0.0045 with betas 0.25 and 0.5, dropout 0.5, 64 factors and the tower 256,256,128,64, 30 epochs. "
           "Meant for large data on a GPU: on ML-1M an epoch is only a handful of steps.",
           "NVIDIA DeepLearningExamples, PyTorch/Recommendation/NCF (ncf.py defaults)",
           model={"model": "neumf", "factors": 64, "layers": (256, 256, 128, 64), "dropout": 0.5},
           train={"optimizer": "adam", "lr": 0.0045, "betas": (0.25, 0.5), "batch_size": 1 << 20, "epochs": 30,
                  "weight_decay": 0.0, "one_cycle": False, "n_negatives": 4}),
    # Batches of 1024 with a summed loss rather than their one example at a time: the project's loop is
    # vectorised (a per-example Python loop would take hours an epoch here); see the description.
    Preset("rendle-mf", "Rendle et al. 2020 MF", "Rendle et al.'s matrix factorisation for ML-1M: a dot "
           "product with user, item and global biases (their embedding_dim 16: 15 factors and the bias), "
           "embeddings drawn from N(0, 0.1), the logistic loss on 8 uniform negatives per positive (seen items "
           "not excluded), plain SGD at 0.002 with L2 0.005 on each example's rows and biases, 256 epochs. "
           "Unlike their code, examples go in mini-batches of 1024 with the losses summed, so each example "
           "moves its rows as far as their one-example step but the batch's examples see the same weights; "
           "and the user and item biases start at N(0, 0.01) rather than 0.",
           "Rendle, Krichene, Zhang, Anderson, Neural Collaborative Filtering vs. Matrix Factorization "
           "Revisited, RecSys 2020; google-research/google-research dot_vs_learned_similarity (README's "
           "ML-1M command, mf_simple.py)",
           model={"model": "dot", "factors": 15, "init_std": 0.1, "global_bias": True},
           train={"optimizer": "sgd", "lr": 0.002, "batch_size": 1024, "epochs": 256, "weight_decay": 0.0,
                  "one_cycle": False, "n_negatives": 8, "exclude_seen": False, "loss_reduction": "sum",
                  "example_l2": 0.005}),
)}


def apply_preset(cfg: RunConfig, name: str | None, explicit: dict | None = None) -> RunConfig:
    """`cfg` with preset `name` applied, then the settings in `explicit` ({"model": {...}, "train":
    {...}, "data": {...}}: what the user chose on purpose) on top of it."""
    if name:
        if name not in PRESETS:
            raise ConfigError(f"Unknown preset {name!r}; expected one of {', '.join(PRESETS)}.")
        cfg = PRESETS[name].apply(cfg)
    explicit = explicit or {}
    return RunConfig(data=cfg.data.replace(**explicit.get("data", {})),
                     model=cfg.model.replace(**explicit.get("model", {})),
                     train=cfg.train.replace(**explicit.get("train", {})), name=cfg.name)
