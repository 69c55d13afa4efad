"""He et al.'s Data/ format: a fixed split kept exactly as published."""

import numpy as np
import pytest

from ncf.data import format_summary, leave_one_out, load, make_split
from ncf.errors import DataError

TRAIN = [(0, 0, 5, 978300760), (0, 1, 3, 978300761), (1, 1, 4, 978300762), (1, 2, 2, 978300763),
         (2, 0, 1, 978300764)]
TEST = [(0, 2, 4, 978300800), (1, 0, 5, 978300801), (2, 1, 3, 978300802)]
NEGATIVES = [[3, 4, 6], [3, 4, 5], [2, 6, 7]]  # item 7 appears only here


def write_published(folder, name="ml-1m"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.train.rating").write_text("".join("\t".join(map(str, r)) + "\n" for r in TRAIN))
    (folder / f"{name}.test.rating").write_text("".join("\t".join(map(str, r)) + "\n" for r in TEST))
    (folder / f"{name}.test.negative").write_text(
        "".join(f"({u},{i})\t" + "\t".join(map(str, n)) + "\n" for (u, i, *_), n in zip(TEST, NEGATIVES, strict=True)))
    return folder / name


@pytest.mark.parametrize("suffix", ["", ".train.rating"])
def test_published_split_is_kept_exactly(tmp_path, suffix):
    prefix = write_published(tmp_path / "Data")
    ds = load(str(prefix) + suffix)
    assert ds.n_users == 3 and ds.n_items == 8  # the whole id space of train, test and negatives
    assert ds.users.to_list() == [0, 1, 2] and ds.items.raw(np.array([7])).tolist() == [7]
    assert ds.user.tolist() == [r[0] for r in TRAIN] and ds.rating.tolist() == [r[2] for r in TRAIN]
    split = make_split(ds, "published")
    assert split.test_user.tolist() == [0, 1, 2] and split.test_item.tolist() == [2, 0, 1]
    assert split.test_negatives.tolist() == NEGATIVES
    assert leave_one_out(ds).kind == "published"  # the published split is not re-drawn
    summary = format_summary(ds)
    assert "Test users:     3 (published split)" in summary and "Negatives:      3 per test user" in summary


def test_missing_sibling_is_named(tmp_path):
    prefix = write_published(tmp_path)
    (tmp_path / "ml-1m.test.negative").unlink()
    with pytest.raises(DataError, match="missing ml-1m.test.negative"):
        load(str(prefix) + ".train.rating")


def test_negatives_that_do_not_match_the_test_rows_are_refused(tmp_path):
    prefix = write_published(tmp_path)
    (tmp_path / "ml-1m.test.negative").write_text("(0,2)\t3\t4\n(1,1)\t3\t4\n(2,1)\t2\t6\n")
    with pytest.raises(DataError, match="do not match ml-1m.test.rating"):
        load(str(prefix))
