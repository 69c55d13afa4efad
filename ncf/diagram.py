"""The model as a graph (Graphviz DOT text) for the Model page: inputs at the top, each branch from its
own embeddings, tensor shapes on the edges, the prediction at the bottom.

A list of layers drew NeuMF's GMF branch below its MLP branch as if one fed the other; the graph shows
them side by side, meeting only at the concatenation. Plain text, no Streamlit and no system Graphviz:
the app hands the string to `st.graphviz_chart`, which lays it out in the browser.
"""

from __future__ import annotations

from ncf.config import ModelConfig
from ncf.models import get_emb_sz

# Dark text on white boxes with a coloured border: legible in print and on a projector.
BRANCH_COLOURS = {"gmf": "#1f5fa8", "mlp": "#b35900", "": "#4a5563"}


def _q(text: object) -> str:
    """A DOT double-quoted string: backslashes and quotes escaped, newlines as DOT's centred breaks."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class _Graph:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.edges: list[tuple[str, str, str]] = []

    def node(self, name: str, label: str, branch: str = "", shape: str = "box") -> str:
        colour = BRANCH_COLOURS[branch]
        self.lines.append(f"  {name} [label={_q(label)}, shape={shape}, color={_q(colour)}, penwidth=2];")
        return name

    def edge(self, a: str, b: str, label: str) -> None:
        self.edges.append((a, b, label))

    def cluster(self, key: str, title: str, build) -> None:
        self.lines.append(f"  subgraph cluster_{key} {{")
        self.lines.append(f"    label={_q(title)}; fontcolor={_q(BRANCH_COLOURS[key])}; "
                          f"color={_q(BRANCH_COLOURS[key])}; style=dashed;")
        build()
        self.lines.append("  }")

    def dot(self) -> str:
        head = ["digraph model {", "  rankdir=TB; nodesep=0.2; ranksep=0.35; bgcolor=\"white\";",
                '  node [fontname="Helvetica", fontsize=14, fontcolor="#111111", style="filled,rounded", '
                'fillcolor="white"];',
                '  edge [fontname="Helvetica", fontsize=13, fontcolor="#111111", color="#333333"];']
        edges = [f"  {a} -> {b} [label={_q(' ' + label + ' ')}];" for a, b, label in self.edges]
        return "\n".join([*head, *self.lines, *edges, "}"]) + "\n"


def _shape(width: int | str) -> str:
    return f"(B, {width})"


def architecture_dot(cfg: ModelConfig, n_users: int, n_items: int) -> str:
    """DOT text of `cfg`'s network for a dataset of this size. Edge labels are tensor shapes (B: the
    batch); the last box names what the model outputs (a logit and its sigmoid, or a rating)."""
    cfg.validate()
    g = _Graph()
    user = g.node("user", f"user id u\n(one of {n_users:,})", shape="ellipse")
    item = g.node("item", f"item id i\n(one of {n_items:,})", shape="ellipse")
    k, layers = cfg.resolved_factors, cfg.resolved_layers
    drop = f" + Dropout({cfg.dropout:g})" if cfg.dropout else ""

    def embeddings(prefix: str, branch: str, du: int, di: int) -> tuple[str, str]:
        mark = {"gmf": "ᴳ", "mlp": "ᴹ"}.get(branch, "") if cfg.model == "neumf" else ""
        p = g.node(f"{prefix}p", f"user emb. p{mark}\n{n_users:,} × {du}", branch)
        q = g.node(f"{prefix}q", f"item emb. q{mark}\n{n_items:,} × {di}", branch)
        g.edge(user, p, "(B,)")
        g.edge(item, q, "(B,)")
        return p, q

    def gmf_branch() -> str:
        p, q = embeddings("gmf_", "gmf", k, k)
        mul = g.node("gmf_mul", "product\np ⊙ q", "gmf")
        g.edge(p, mul, _shape(k))
        g.edge(q, mul, _shape(k))
        return mul

    def mlp_branch(sizes: tuple[int, ...], du: int, di: int, prefix: str = "mlp_", branch: str = "mlp") -> str:
        p, q = embeddings(prefix, branch, du, di)
        cat = g.node(f"{prefix}cat", "concatenate\n[p ; q]", branch)
        g.edge(p, cat, _shape(du))
        g.edge(q, cat, _shape(di))
        last, width = cat, du + di
        for i, n_out in enumerate(sizes[1:], start=1):
            extra = (" + BatchNorm" if cfg.batch_norm and cfg.model == "embnn" else "") + drop
            layer = g.node(f"{prefix}l{i}", f"Linear {width}→{n_out}\n+ ReLU{extra}", branch)
            g.edge(last, layer, _shape(width))
            last, width = layer, n_out
        return last

    explicit = cfg.resolved_objective == "explicit"
    low, high = cfg.y_range
    pred_label = (f"predicted rating\nsigmoid_range(z, {low:g}, {high:g})" if explicit
                  else "ŷ = σ(z)\nP(interaction)")

    def finish(into: str, width: int | str, what: str) -> None:
        out = g.node("out", what)
        g.edge(into, out, _shape(width))
        pred = g.node("pred", pred_label, shape="ellipse")
        g.edge(out, pred, "(B,) logit z" if not explicit else "(B,) z")

    if cfg.model == "gmf":
        finish(gmf_branch(), k, "output: Linear\nz = hᵀ(p ⊙ q) + b")
    elif cfg.model == "mlp":
        half = layers[0] // 2
        finish(mlp_branch(layers, half, half), layers[-1], "output: Linear\nz = wᵀh + b")
    elif cfg.model == "neumf":
        ends: dict[str, str] = {}
        g.cluster("gmf", "GMF branch", lambda: ends.update(gmf=gmf_branch()))
        half = layers[0] // 2
        g.cluster("mlp", "MLP branch", lambda: ends.update(mlp=mlp_branch(layers, half, half)))
        cat = g.node("neumf_cat", "concatenate\n[GMF ; MLP]")
        g.edge(ends["gmf"], cat, _shape(k))
        g.edge(ends["mlp"], cat, _shape(layers[-1]))
        finish(cat, k + layers[-1], "output: Linear\nz = hᵀ[GMF ; MLP] + b")
    elif cfg.model == "dot":
        p, q = embeddings("", "", k, k)
        bu = g.node("bu", f"user bias b_u\n{n_users:,} × 1")
        bi = g.node("bi", f"item bias b_i\n{n_items:,} × 1")
        g.edge(user, bu, "(B,)")
        g.edge(item, bi, "(B,)")
        s = g.node("dot", "dot product + biases\nz = p · q + b_u + b_i")
        for a, w in ((p, k), (q, k), (bu, 1), (bi, 1)):
            g.edge(a, s, _shape(w))
        pred = g.node("pred", pred_label, shape="ellipse")
        g.edge(s, pred, "(B,) logit z" if not explicit else "(B,) z")
    elif cfg.model == "embnn":
        du, di = cfg.emb_sizes or (get_emb_sz(n_users), get_emb_sz(n_items))
        last = mlp_branch((du + di, *layers), du, di, prefix="", branch="")
        finish(last, layers[-1], "output: Linear\nz = wᵀh + b")
    else:  # pop: nothing learned
        count = g.node("count", "count of item i in training\n(the same for every user)")
        g.edge(item, count, "(B,)")
        g.lines.append(f"  {user} [style=\"dashed,rounded,filled\"];")
        g.node("pred", "score = popularity of i", shape="ellipse")
        g.edge(count, "pred", "(B,)")
    return g.dot()
