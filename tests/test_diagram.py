"""The Model page's graph: NeuMF's two branches run side by side, not one after the other."""

from __future__ import annotations

import re

import pytest

from ncf.config import ModelConfig
from ncf.diagram import architecture_dot

EDGE = re.compile(r'^\s*(\w+) -> (\w+) \[label=" (.*) "\];$', re.M)
NODE = re.compile(r'^\s*(\w+) \[label="(.*?)", shape', re.M)


def edges(dot: str) -> list[tuple[str, str, str]]:
    return EDGE.findall(dot)


def reaches(dot: str, start: str, goal: str, avoid: set[str] = frozenset()) -> list[str] | None:
    """A path start -> goal that does not pass through `avoid`, or None."""
    nxt: dict[str, list[str]] = {}
    for a, b, _ in edges(dot):
        nxt.setdefault(a, []).append(b)
    stack = [[start]]
    while stack:
        path = stack.pop()
        if path[-1] == goal:
            return path
        stack += [[*path, b] for b in nxt.get(path[-1], []) if b not in avoid and b not in path]
    return None


def test_neumf_branches_are_parallel_from_their_own_embeddings_to_the_concatenation():
    dot = architecture_dot(ModelConfig(model="neumf", factors=8, layers=(64, 32, 16, 8)), 943, 1682)
    gmf = reaches(dot, "gmf_p", "neumf_cat")
    mlp = reaches(dot, "mlp_p", "neumf_cat")
    assert gmf and mlp
    # Separate paths: neither branch passes through a node of the other before they merge.
    assert set(gmf[:-1]).isdisjoint(mlp[:-1])
    assert reaches(dot, "gmf_p", "neumf_cat", avoid={n for n in mlp[:-1]}) is not None
    assert not reaches(dot, "gmf_mul", "mlp_cat") and not reaches(dot, "mlp_l3", "gmf_mul")
    into_cat = {a: label for a, b, label in edges(dot) if b == "neumf_cat"}
    assert into_cat == {"gmf_mul": "(B, 8)", "mlp_l3": "(B, 8)"}
    assert ("neumf_cat", "out", "(B, 16)") in edges(dot)
    assert "subgraph cluster_gmf" in dot and "subgraph cluster_mlp" in dot


@pytest.mark.parametrize("model", ["gmf", "mlp", "neumf", "dot", "embnn", "pop"])
def test_every_edge_carries_a_tensor_shape_and_every_graph_ends_in_the_prediction(model):
    dot = architecture_dot(ModelConfig(model=model), 100, 200)
    found = edges(dot)
    assert found
    for a, b, label in found:
        assert re.match(r"^\(B,( \d+)?\)", label), (a, b, label)
    assert reaches(dot, "item", "pred")


def test_the_last_box_says_logit_and_sigmoid_for_ranking_and_the_range_for_ratings():
    implicit = dict(NODE.findall(architecture_dot(ModelConfig(model="dot"), 10, 10)))
    assert "σ(z)" in implicit["pred"] and "p · q + b_u + b_i" in implicit["dot"]
    explicit = dict(NODE.findall(architecture_dot(ModelConfig(model="gmf", objective="explicit"), 10, 10)))
    assert "sigmoid_range" in explicit["pred"] and "σ" not in explicit["pred"]


def test_names_cannot_break_out_of_a_dot_string():
    from ncf.diagram import _q

    assert _q('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'
