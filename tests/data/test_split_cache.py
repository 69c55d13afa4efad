"""Splits kept on disk: read back as drawn, one entry per data and settings, broken entries drawn again.

Every test writes real files under its own NCF_CACHE_DIR (tests/conftest.py) and keeps every split
(min_rows=0); the datasets are small, the files and the code paths are those of ML-25M.
"""

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ncf.data import make_split, synthetic
from ncf.data.split_cache import ARRAYS, cached_split, split_key, split_request, splits_dir
from tests.data.test_split_reference import arrays_dataset

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ds():
    return synthetic(n_users=120, n_items=90, seed=4)


def assert_same_split(got, want):
    assert (got.kind, got.seed, got.settings) == (want.kind, want.seed, want.settings)
    assert got.dataset.fingerprint() == want.dataset.fingerprint()
    for name in ARRAYS:
        a, b = getattr(got, name), getattr(want, name)
        assert (a is None) == (b is None), name
        if a is not None:
            assert a.dtype == b.dtype and np.array_equal(a, b), name


def entries() -> list[Path]:
    return sorted(p for p in splits_dir().iterdir() if not p.name.startswith(".")) if splits_dir().exists() else []


def the_entry() -> Path:
    (entry,) = entries()
    return entry


@pytest.mark.parametrize("settings", [dict(kind="leave_one_out", validation=True), dict(kind="ratio", seed=3),
                                      dict(kind="cold_users", n_negatives=20)])
def test_a_kept_split_reads_back_equal_to_the_drawn_one_from_memory_mapped_files(ds, settings):
    drawn = cached_split(ds, min_rows=0, **settings)
    assert_same_split(drawn, make_split(ds, **settings))
    back = cached_split(ds, min_rows=0, **settings)
    assert_same_split(back, drawn)
    assert back.dataset is ds
    assert isinstance(back.train_user.base, np.memmap)  # read from the entry, not drawn again


def test_the_entry_is_what_is_read_back(ds):
    cached_split(ds, min_rows=0, n_negatives=10)
    path = the_entry() / "test_item.npy"
    planted = np.load(path)[::-1].copy()  # a different split's test items, still valid ones
    np.save(path, planted, allow_pickle=False)
    assert np.array_equal(cached_split(ds, min_rows=0, n_negatives=10).test_item, planted)


def test_different_settings_and_data_never_share_an_entry(ds):
    variants = [dict(), dict(seed=1), dict(n_negatives=50), dict(validation=True), dict(kind="ratio"),
                dict(kind="ratio", test_fraction=0.3), dict(kind="cold_users"), dict(kind="cold_items"),
                dict(kind="cold_items", test_fraction=0.3)]
    for v in variants:
        assert_same_split(cached_split(ds, min_rows=0, **v), make_split(ds, **v))
    assert len(entries()) == len(variants)
    for v in variants:  # each read back is its own settings' split
        assert_same_split(cached_split(ds, min_rows=0, **v), make_split(ds, **v))
    # One rating changed: other data, another entry.
    rating = ds.rating.copy()
    rating[0] = 5.0 if rating[0] != 5.0 else 4.0
    other = replace(ds, rating=rating)
    assert_same_split(cached_split(other, min_rows=0), make_split(other))
    assert len(entries()) == len(variants) + 1
    request = split_request("leave_one_out", 0, 99, 0.2, False)
    assert split_key(ds.fingerprint(), request) != split_key(other.fingerprint(), request)


def test_an_entry_for_other_settings_under_the_key_is_not_read_as_this_one(ds):
    cached_split(ds, min_rows=0, seed=1)
    entry = the_entry()
    meta = json.loads((entry / "meta.json").read_text())
    meta["request"]["seed"] = 2  # as if two requests had hashed to one key
    (entry / "meta.json").write_text(json.dumps(meta))
    assert_same_split(cached_split(ds, min_rows=0, seed=1), make_split(ds, seed=1))


def break_truncated(entry):
    path = entry / "train_user.npy"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def break_missing_array(entry):
    (entry / "test_negatives.npy").unlink()


def break_meta(entry):
    (entry / "meta.json").write_text('{"format": 1, "da')


def break_lengths(entry):
    np.save(entry / "train_item.npy", np.load(entry / "train_item.npy")[:-1], allow_pickle=False)
    meta = json.loads((entry / "meta.json").read_text())
    meta["arrays"]["train_item"][1][0] -= 1  # the record agrees with the shorter file, the train lengths do not
    (entry / "meta.json").write_text(json.dumps(meta))


def break_items(entry):
    negatives = np.load(entry / "test_negatives.npy")
    negatives[0, 0] = 10**6
    np.save(entry / "test_negatives.npy", negatives, allow_pickle=False)


def break_no_meta(entry):
    (entry / "meta.json").unlink()


@pytest.mark.parametrize("damage", [break_truncated, break_missing_array, break_meta, break_lengths, break_items,
                                    break_no_meta])
def test_a_broken_entry_is_drawn_again_and_replaced(ds, damage):
    want = make_split(ds, validation=True)
    cached_split(ds, min_rows=0, validation=True)
    damage(the_entry())
    assert_same_split(cached_split(ds, min_rows=0, validation=True), want)
    back = cached_split(ds, min_rows=0, validation=True)  # the replacement reads back whole
    assert_same_split(back, want)
    assert isinstance(back.train_user.base, np.memmap)


def test_a_leftover_temporary_folder_is_not_an_entry(ds):
    splits_dir().mkdir(parents=True)
    key = split_key(ds.fingerprint(), split_request("leave_one_out", 0, 99, 0.2, False))
    (splits_dir() / f".{key}.crashed").mkdir()
    assert_same_split(cached_split(ds, min_rows=0), make_split(ds))
    assert [p.name for p in entries()] == [key]


def test_a_filtered_dataset_is_kept_with_its_split():
    # Users 3 and 4 have one interaction each: leave-one-out drops them and re-indexes.
    rng = np.random.default_rng(0)
    user = np.concatenate([np.repeat([0, 1, 2], 6), [3, 4]])
    ds = arrays_dataset(user, rng.integers(0, 30, len(user)), np.arange(len(user)))
    want = make_split(ds, n_negatives=5)
    assert want.dataset is not ds and want.n_users == 3
    cached_split(ds, min_rows=0, n_negatives=5)
    assert (the_entry() / "dataset" / "meta.json").is_file()
    back = cached_split(ds, min_rows=0, n_negatives=5)
    assert_same_split(back, want)
    assert np.array_equal(back.dataset.users.raw_ids, want.dataset.users.raw_ids)
    assert isinstance(back.train_user.base, np.memmap) and isinstance(back.dataset.user.base, np.memmap)
    (the_entry() / "dataset" / "user.npy").unlink()  # a broken dataset breaks the entry: drawn again
    assert_same_split(cached_split(ds, min_rows=0, n_negatives=5), want)
    assert (the_entry() / "dataset" / "user.npy").is_file()


def test_small_data_and_published_splits_are_not_kept(ds):
    assert_same_split(cached_split(ds), make_split(ds))  # under MIN_ROWS
    assert entries() == []


def test_a_fresh_process_reads_the_kept_split_back(ds, tmp_path):
    cached_split(ds, min_rows=0, validation=True)
    mtime = the_entry().stat().st_mtime_ns
    code = ("import sys; from ncf.data import synthetic; from ncf.data.split_cache import cached_split; "
            "import numpy as np; s = cached_split(synthetic(n_users=120, n_items=90, seed=4), min_rows=0, "
            "validation=True); print(isinstance(s.train_user.base, np.memmap), int(s.test_negatives.sum()))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ}, capture_output=True,
                         text=True, timeout=120, check=True).stdout.split()
    assert out == ["True", str(int(make_split(ds, validation=True).test_negatives.sum()))]
    assert the_entry().stat().st_mtime_ns == mtime


def test_the_least_recently_used_entries_go_when_the_kept_splits_outgrow_the_budget(ds, monkeypatch):
    def entry_of(seed):
        return split_key(ds.fingerprint(), split_request("leave_one_out", seed, 99, 0.2, False))

    cached_split(ds, min_rows=0, seed=0)
    size = sum(f.stat().st_size for f in the_entry().iterdir())
    monkeypatch.setenv("NCF_SPLIT_CACHE_GB", str(2.5 * size / 2**30))  # room for two
    time.sleep(0.02)
    cached_split(ds, min_rows=0, seed=1)
    time.sleep(0.02)
    cached_split(ds, min_rows=0, seed=0)  # read back: now the most recently used
    time.sleep(0.02)
    cached_split(ds, min_rows=0, seed=2)
    assert [p.name for p in entries()] == sorted([entry_of(0), entry_of(2)])
    monkeypatch.setenv("NCF_SPLIT_CACHE_GB", "0")  # the entry just written stays even so
    cached_split(ds, min_rows=0, seed=3)
    assert [p.name for p in entries()] == [entry_of(3)]
    assert_same_split(cached_split(ds, min_rows=0, seed=3), make_split(ds, seed=3))
