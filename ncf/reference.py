"""Published figures on the NCF paper's ML-1M protocol, to show beside a user's own results.

Each figure names its source and the table it was read from; none is ever drawn as if measured here.
They apply only to ML-1M under leave-one-out with 99 sampled negatives and k = 10 (`applies`). Rendle
et al. 2020's figures are left out: they were not verified from the paper itself (their recipe is the
`rendle-mf` preset in `ncf.config.PRESETS`; what it measures here is in benchmarks/results_baselines.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from ncf.config import DataConfig


@dataclass(frozen=True)
class Published:
    model: str  # a registry name where one matches ("neumf", "mlp", "puresvd", ...), else a label
    label: str  # as the source names it
    hr: float  # HR@10
    ndcg: float  # NDCG@10
    source: str
    factors: int | None = None  # predictive factors, where the source sweeps them
    pretrain: bool = False


HE_2017 = "He et al. 2017 (NCF), Table 2"
HE_2017_MLP = "He et al. 2017 (NCF), Tables 3-4"
DACREMA_2019 = "Dacrema et al. 2019, FULL_RESULTS.md (RecSys2019_DeepLearning_Evaluation)"

# He et al., WWW 2017: HR@10 / NDCG@10 on ML-1M at 8, 16, 32 and 64 predictive factors.
_NEUMF_PRE = {8: (0.684, 0.403), 16: (0.707, 0.426), 32: (0.726, 0.445), 64: (0.730, 0.447)}
_NEUMF = {8: (0.688, 0.410), 16: (0.696, 0.420), 32: (0.701, 0.425), 64: (0.705, 0.426)}
_MLP3 = {8: (0.671, 0.399), 16: (0.684, 0.410), 32: (0.692, 0.425), 64: (0.702, 0.426)}

PUBLISHED: tuple[Published, ...] = (
    *(Published("neumf", "NeuMF with pre-training", hr, nd, HE_2017, f, True) for f, (hr, nd) in _NEUMF_PRE.items()),
    *(Published("neumf", "NeuMF without pre-training", hr, nd, HE_2017, f) for f, (hr, nd) in _NEUMF.items()),
    *(Published("mlp", "MLP-3", hr, nd, HE_2017_MLP, f) for f, (hr, nd) in _MLP3.items()),
    Published("pop", "TopPop", 0.4531, 0.2542, DACREMA_2019),
    Published("itemknn", "ItemKNN CF", 0.6596, 0.3900, DACREMA_2019),
    Published("userknn", "UserKNN CF", 0.6705, 0.3908, DACREMA_2019),
    Published("p3alpha", "P3alpha", 0.6464, 0.3867, DACREMA_2019),
    Published("rp3beta", "RP3beta", 0.6715, 0.3991, DACREMA_2019),
    Published("puresvd", "PureSVD", 0.6896, 0.4294, DACREMA_2019),
    Published("neumf", "NeuMF (re-run: 8 factors, 64,32,16,8, pre-training)", 0.6725, 0.4011, DACREMA_2019, 8, True),
)

PROTOCOL = "ML-1M, leave-one-out, 99 sampled negatives, HR@10 / NDCG@10"


def applies(data: DataConfig | dict, k: int = 10) -> bool:
    """Whether a run's data and protocol are the published one's: ML-1M, leave-one-out, 99 negatives, k 10.
    The shared partial ML-1M copy (users 1-2999) also loads as ml-1m; figures are then only indicative."""
    d = data.to_dict() if isinstance(data, DataConfig) else data
    return (d.get("source") == "ml-1m" and d.get("split") == "leave_one_out"
            and d.get("test_negatives", 99) == 99 and k == 10)


def published_for(data: DataConfig | dict, k: int = 10, models: set[str] | None = None) -> list[Published]:
    """The published rows to show beside results on `data`: none unless the protocol matches."""
    if not applies(data, k):
        return []
    return [p for p in PUBLISHED if models is None or p.model in models]
