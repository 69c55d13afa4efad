import numpy as np
import pytest

from ncf.data import Vocab
from ncf.errors import UnknownIdError


def test_encode_gives_contiguous_sorted_indices_and_maps_back():
    vocab, codes = Vocab.encode([30, 10, 20, 10], "user")
    assert vocab.to_list() == [10, 20, 30]
    assert codes.tolist() == [2, 0, 1, 0]
    assert vocab.raw(codes).tolist() == [30, 10, 20, 10]
    assert vocab.index([20, 30]).tolist() == [1, 2]


def test_string_ids_round_trip_and_typed_ids_are_coerced():
    vocab, codes = Vocab.encode(["bob", "alice", "bob"], "user")
    assert vocab.to_list() == ["alice", "bob"] and codes.tolist() == [1, 0, 1]
    assert Vocab.from_list(vocab.to_list()).index("bob").tolist() == [1]
    numeric, _ = Vocab.encode([5, 7], "item")
    assert numeric.index("7").tolist() == [1]  # a person types '7' for item 7


def test_unknown_id_error_names_the_id():
    vocab, _ = Vocab.encode([1, 2, 3], "item")
    with pytest.raises(UnknownIdError, match="Unknown item id 99"):
        vocab.index(99)
    with pytest.raises(KeyError):  # still a KeyError for callers that catch that
        vocab.index([1, 99])


def test_from_list_keeps_integer_ids_integer():
    vocab = Vocab.from_list([3, 1, 2])
    assert vocab.is_numeric and vocab.raw(np.array([0])).tolist() == [3]
