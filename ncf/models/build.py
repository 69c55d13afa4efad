"""A model from its configuration (`build_model`, through `ncf.registry`) and its layers described for the
Model page (`describe_architecture`)."""

from __future__ import annotations

from ncf.config import ModelConfig
from ncf.models.base import Recommender, get_emb_sz


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
