import pytest
import torch

from ncf import registry
from ncf.classical import ItemPop
from ncf.config import ModelConfig
from ncf.errors import ConfigError
from ncf.models import (
    GMF,
    MLP,
    EmbeddingNN,
    NeuMF,
    build_model,
    count_parameters,
    describe_architecture,
    get_emb_sz,
    neumf_from_pretrained,
    sigmoid_range,
)

N_USERS, N_ITEMS = 10, 7
# The models of both objectives; the classical implicit-only ones have their own shared tests (test_contract.py).
ALL_MODELS = tuple(n for n, s in registry.REGISTRY.items() if "explicit" in s.objectives)


def test_parameter_counts_match_the_hand_computed_ones():
    def count(**kw):
        return count_parameters(build_model(ModelConfig(**kw), N_USERS, N_ITEMS))

    assert count(model="gmf", factors=8) == (N_USERS + N_ITEMS) * 8 + 8 + 1
    tower = 64 * 32 + 32 + 32 * 16 + 16 + 16 * 8 + 8
    assert count(model="mlp", layers=(64, 32, 16, 8)) == (N_USERS + N_ITEMS) * 32 + tower + 8 + 1
    assert count(model="neumf", factors=8, layers=(64, 32, 16, 8)) == (
        (N_USERS + N_ITEMS) * (8 + 32) + tower + (8 + 8) + 1)
    # The default tower follows the factors as in the paper: 32 factors -> 128, 64, 32 (64-wide embeddings).
    default_tower = 128 * 64 + 64 + 64 * 32 + 32
    assert count(model="neumf") == (N_USERS + N_ITEMS) * (32 + 64) + default_tower + (32 + 32) + 1
    assert count(model="dot", factors=5) == (N_USERS + N_ITEMS) * (5 + 1)
    du, di = get_emb_sz(N_USERS), get_emb_sz(N_ITEMS)
    assert count(model="embnn") == N_USERS * du + N_ITEMS * di + (du + di) * 100 + 100 + 100 * 50 + 50 + 51
    assert count(model="pop") == 0


def test_fastai_embedding_size_rule_gives_fastbooks_sizes_for_ml100k():
    assert get_emb_sz(944) == 74 and get_emb_sz(1665) == 102  # fastbook chapter 8
    assert get_emb_sz(10**9) == 600


@pytest.mark.parametrize("name", ALL_MODELS)
@pytest.mark.parametrize("objective", ["implicit", "explicit"])
def test_forward_shapes_and_score_users_agree_with_forward(name, objective):
    cfg = ModelConfig(model=name, objective=objective, batch_norm=name == "embnn", dropout=0.1 if name == "embnn" else 0)
    model = build_model(cfg, N_USERS, N_ITEMS).eval()
    if isinstance(model, ItemPop):
        model.fit_counts(torch.randint(0, N_ITEMS, (50,)).numpy(), torch.rand(50).numpy() * 5)
    users = torch.tensor([0, 3, 9])
    with torch.no_grad():
        out = model(users, torch.tensor([1, 2, 6]))
        scores = model.score_users(users)
        pairs = model(users.repeat_interleave(N_ITEMS), torch.arange(N_ITEMS).repeat(3)).view(3, N_ITEMS)
    assert out.shape == (3,)
    assert scores.shape == (3, N_ITEMS)
    torch.testing.assert_close(scores, pairs, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["gmf", "mlp", "neumf", "dot", "embnn"])
def test_explicit_outputs_stay_inside_the_rating_range(name):
    model = build_model(ModelConfig(model=name, objective="explicit", y_range=(1.0, 5.0)), N_USERS, N_ITEMS)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1000)  # push the logits to the extremes
        out = model(torch.arange(N_USERS) % N_USERS, torch.arange(N_USERS) % N_ITEMS)
    assert out.min() >= 1.0 and out.max() <= 5.0


def test_sigmoid_range_maps_zero_to_the_middle():
    assert sigmoid_range(torch.tensor(0.0), 0, 5.5).item() == pytest.approx(2.75)


def test_embedding_tables_name_each_path():
    assert set(build_model(ModelConfig(model="neumf"), N_USERS, N_ITEMS).embedding_tables()) == {"gmf", "mlp"}
    assert set(build_model(ModelConfig(model="dot"), N_USERS, N_ITEMS).embedding_tables()) == {"dot"}
    assert set(build_model(ModelConfig(model="embnn"), N_USERS, N_ITEMS).embedding_tables()) == {"embnn"}
    assert build_model(ModelConfig(model="pop"), N_USERS, N_ITEMS).embedding_tables() == {}
    user_emb, item_emb = build_model(ModelConfig(model="gmf", factors=4), N_USERS, N_ITEMS).embedding_tables()["gmf"]
    assert user_emb.weight.shape == (N_USERS, 4) and item_emb.weight.shape == (N_ITEMS, 4)


def test_embeddings_start_small_as_in_the_paper():
    model = build_model(ModelConfig(model="gmf", factors=64), 2000, 2000)
    assert model.user_emb.weight.std().item() == pytest.approx(0.01, rel=0.05)


def test_embnn_uses_given_sizes_and_fastai_block_order():
    model = build_model(ModelConfig(model="embnn", emb_sizes=(5, 6), layers=(20,), batch_norm=True, dropout=0.2),
                        N_USERS, N_ITEMS)
    assert isinstance(model, EmbeddingNN)
    assert model.user_emb.embedding_dim == 5 and model.item_emb.embedding_dim == 6
    kinds = [type(m).__name__ for m in model.layers]
    assert kinds == ["Linear", "ReLU", "BatchNorm1d", "Dropout"]
    assert model.layers[0].bias is None  # fastai drops the bias a BatchNorm makes redundant


def test_neumf_pretraining_copies_weights_exactly():
    torch.manual_seed(1)
    cfg = ModelConfig(model="neumf", factors=4, layers=(16, 8, 4), alpha=0.3, pretrain=True)
    gmf = build_model(cfg.replace(model="gmf", pretrain=False), N_USERS, N_ITEMS)
    mlp = build_model(cfg.replace(model="mlp", pretrain=False), N_USERS, N_ITEMS)
    assert isinstance(gmf, GMF) and isinstance(mlp, MLP)
    neumf = neumf_from_pretrained(gmf, mlp, cfg)
    assert isinstance(neumf, NeuMF)
    assert torch.equal(neumf.gmf_user_emb.weight, gmf.user_emb.weight)
    assert torch.equal(neumf.gmf_item_emb.weight, gmf.item_emb.weight)
    for (name, a), (_, b) in zip(neumf.mlp.state_dict().items(), mlp.mlp.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    expected = torch.cat([0.3 * gmf.out.weight, 0.7 * mlp.out.weight], dim=1)
    assert torch.equal(neumf.out.weight, expected)
    assert torch.equal(neumf.out.bias, 0.3 * gmf.out.bias + 0.7 * mlp.out.bias)
    # With alpha = 0.5 the pre-trained NeuMF predicts the average of the two logits.
    half = neumf_from_pretrained(gmf, mlp, cfg.replace(alpha=0.5))
    u, i = torch.arange(N_ITEMS) % N_USERS, torch.arange(N_ITEMS)
    with torch.no_grad():
        torch.testing.assert_close(half(u, i), 0.5 * (gmf(u, i) + mlp(u, i)))


@pytest.mark.parametrize("name", ALL_MODELS)
@pytest.mark.parametrize("options", [{}, {"objective": "explicit"}, {"batch_norm": True, "dropout": 0.5},
                                     {"emb_sizes": (3, 4), "layers": (10, 6)}])
def test_describe_architecture_adds_up_to_the_real_parameter_count(name, options):
    cfg = ModelConfig(model=name, **options)
    if name in ("mlp", "neumf") and "layers" in options:
        cfg = cfg.replace(layers=(12, 6))
    rows = describe_architecture(cfg, 943, 1682)
    assert sum(r["params"] for r in rows) == count_parameters(build_model(cfg, 943, 1682))
    assert all(set(r) == {"name", "shape", "params", "note"} and r["shape"].startswith("(B, ") for r in rows)


def test_describe_architecture_explains_the_concatenation():
    rows = describe_architecture(ModelConfig(model="embnn"), 944, 1665)
    assert any(r["note"] == "h0 = 74 + 102 = 176 features" for r in rows)
    neumf = describe_architecture(ModelConfig(model="neumf", factors=8), 100, 100)
    assert any("[GMF 8 ; MLP 8] = 16 features" in r["note"] for r in neumf)


def test_impossible_configurations_are_refused_with_a_message():
    with pytest.raises(ConfigError, match="even"):
        build_model(ModelConfig(model="mlp", layers=(63, 8)), N_USERS, N_ITEMS)
    with pytest.raises(ConfigError, match="Unknown model"):
        build_model(ModelConfig(model="svd"), N_USERS, N_ITEMS)


@pytest.mark.parametrize("sparse", [False, True])
def test_fast_embedding_backward_matches_torchs(sparse):
    model = build_model(ModelConfig(model="neumf", factors=4, layers=(8, 4)), N_USERS, N_ITEMS)
    users, items = torch.tensor([0, 0, 3, 9, 3]), torch.tensor([1, 1, 2, 6, 0])  # repeated rows accumulate
    model(users, items).sum().backward()
    fast = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    for emb in model.embeddings():
        emb.sparse = sparse
        emb.forward = torch.nn.Embedding.forward.__get__(emb)
    model(users, items).sum().backward()
    for name, p in model.named_parameters():
        grad = p.grad.to_dense() if p.grad.is_sparse else p.grad
        torch.testing.assert_close(fast[name], grad, msg=name)


def test_the_split_products_equal_the_layer_over_the_concatenation(monkeypatch):
    import ncf.models.ncf as ncf_models

    users, items = torch.arange(50) % 7, torch.arange(50) % 11
    for name in ("mlp", "neumf"):
        torch.manual_seed(0)
        model = build_model(ModelConfig(model=name, factors=8, layers=(16, 8, 4)), 7, 11)
        split = model(users, items)  # the CPU's way
        monkeypatch.setattr(ncf_models, "_split_products", lambda x: False)  # a GPU's way
        assert torch.allclose(model(users, items), split, atol=1e-6), name
        monkeypatch.undo()


def test_the_dot_models_global_bias_and_initial_spread_are_options_off_by_default():
    plain = build_model(ModelConfig(model="dot", factors=5), N_USERS, N_ITEMS)
    assert plain.bias is None and "bias" not in plain.state_dict()  # saved runs of before load unchanged
    rendle = build_model(ModelConfig(model="dot", factors=64, init_std=0.1, global_bias=True), 2000, 2000)
    assert count_parameters(rendle) == 2 * 2000 * (64 + 1) + 1
    assert rendle.user_emb.weight.std().item() == pytest.approx(0.1, rel=0.05)
    with torch.no_grad():
        rendle.bias.fill_(0.7)
        users, items = torch.tensor([0, 5]), torch.tensor([3, 1])
        plain_part = (rendle.user_emb(users) * rendle.item_emb(items)).sum(-1) + rendle.user_bias(users).squeeze(-1) \
            + rendle.item_bias(items).squeeze(-1)
        torch.testing.assert_close(rendle(users, items), plain_part + 0.7)
        torch.testing.assert_close(rendle.score_users(users)[[0, 1], items], rendle(users, items))
    rows = describe_architecture(rendle.config, 2000, 2000)
    assert sum(r["params"] for r in rows) == count_parameters(rendle)


def test_each_examples_squared_norms_cover_the_rows_it_touches():
    model = build_model(ModelConfig(model="dot", factors=3, global_bias=True), N_USERS, N_ITEMS)
    users, items = torch.tensor([1, 1, 4]), torch.tensor([0, 6, 6])
    with torch.no_grad():
        model.bias.fill_(0.5)
        expected = (model.user_emb.weight[users].square().sum(1) + model.item_emb.weight[items].square().sum(1)
                    + model.user_bias.weight[users, 0].square() + model.item_bias.weight[items, 0].square() + 0.25)
        out, norms = model.forward_and_sq_norms(users, items)
        torch.testing.assert_close(norms, expected)
        torch.testing.assert_close(out, model(users, items))
        torch.testing.assert_close(model.example_sq_norms(users, items), expected)
    neumf = build_model(ModelConfig(model="neumf", factors=4, layers=(8, 4)), N_USERS, N_ITEMS)  # every id table
    with torch.no_grad():
        tables = [neumf.gmf_user_emb.weight[users], neumf.gmf_item_emb.weight[items], neumf.mlp.user_emb.weight[users],
                  neumf.mlp.item_emb.weight[items]]
        torch.testing.assert_close(neumf.example_sq_norms(users, items), sum(t.square().sum(1) for t in tables))


def test_a_global_bias_or_initial_spread_on_another_model_is_refused():
    with pytest.raises(ConfigError, match="global bias does not apply to GMF"):
        ModelConfig(model="gmf", global_bias=True).validate()
    with pytest.raises(ConfigError, match="does not apply"):
        ModelConfig(model="neumf", init_std=0.1).validate()
    with pytest.raises(ConfigError, match="must be positive"):
        ModelConfig(model="dot", init_std=0.0).validate()


def test_each_neural_model_is_registered_by_its_familys_module_and_reexported_by_the_package():
    import ncf.models as models

    for name in registry.names(gradient=True):
        spec = registry.get(name)
        assert spec.factory.startswith("ncf.models.") and spec.factory.count(":") == 1, spec.factory
        assert getattr(models, spec.cls.__name__) is spec.cls
