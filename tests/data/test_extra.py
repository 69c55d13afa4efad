"""Side features from a user's own files: extra columns of a ratings table, and a second table joined by id."""

from __future__ import annotations

import numpy as np
import pytest

from ncf.data import detect_columns, load, load_upload
from ncf.data.extra import keep_file
from ncf.data.features import available, build, describe_available, encode
from ncf.errors import DataError

# Four users, six items. plan is per user, price per item (many distinct values), kids per item (a 0/1
# flag: codes, so categorical), device changes within users and items (about the interaction).
PLANS = {1: "basic", 2: "premium", 3: "basic", 4: "family"}
PRICES = {10: 3.99, 11: 4.49, 12: 9.99, 13: 1.99, 14: 7.25, 15: 5.5}
KIDS = {10: 0, 11: 1, 12: 0, 13: 1, 14: 0, 15: 0}


def ratings_csv(tmp_path, name="views.csv"):
    lines = ["user_id,item_id,rating,timestamp,plan,price,kids,device"]
    devices = ["tv", "phone", "web"]
    n = 0
    for u in PLANS:
        for i in PRICES:
            if (u + i) % 5:
                lines.append(f"{u},{i},{1 + (u * i) % 5},{874724710 + 3600 * n},{PLANS[u]},{PRICES[i]},{KIDS[i]},"
                             f"{devices[n % 3]}")
                n += 1
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_extra_columns_are_detected_with_a_guessed_kind(tmp_path):
    path = ratings_csv(tmp_path)
    guess = detect_columns(path.name, path.read_bytes())
    assert guess.roles == {"user": "user_id", "item": "item_id", "rating": "rating", "timestamp": "timestamp"}
    assert guess.extras == {"plan": "categorical", "price": "numeric", "kids": "categorical", "device": "categorical"}


def test_each_extra_column_becomes_a_user_or_item_feature_where_it_is_constant(tmp_path):
    ds = load(str(ratings_csv(tmp_path)))
    rows = {r["feature"]: r for r in describe_available(ds)}
    assert rows["extra:plan"]["side"] == "user" and rows["extra:plan"]["categories"] == 3
    assert rows["extra:price"]["side"] == "item" and rows["extra:price"]["kind"] == "numeric"
    assert rows["extra:kids"]["side"] == "item" and rows["extra:kids"]["kind"] == "categorical"
    assert "extra:device" not in rows
    assert any("'device'" in note and "interaction" in note for note in ds.notes)
    plan = ds.user_info["extra:plan"].to_numpy()
    assert plan[ds.users.index(list(PLANS))].tolist() == list(PLANS.values())
    price = ds.item_info["extra:price"].to_numpy()
    assert np.allclose(price[ds.items.index(list(PRICES))], list(PRICES.values()))
    from ncf.data import format_summary

    assert "Note:" in format_summary(ds) and ds.summary()["notes"] == list(ds.notes)
    # The parsed copy in the cache keeps the features and the notes.
    again = load(str(tmp_path / "views.csv"))
    assert available(again) == available(ds) and again.notes == ds.notes


def test_the_kinds_can_be_corrected_or_a_column_ignored(tmp_path):
    path = ratings_csv(tmp_path)
    columns = {"features": {"price": "categorical", "kids": "ignore"}}
    assert detect_columns(path.name, path.read_bytes(), columns).extras["price"] == "categorical"
    ds = load_upload(path.name, path.read_bytes(), columns=columns)
    rows = {r["feature"]: r for r in describe_available(ds)}
    assert rows["extra:price"]["kind"] == "categorical" and rows["extra:price"]["categories"] == 6
    assert "extra:kids" not in rows
    with pytest.raises(DataError, match="one of categorical, numeric, ignore"):
        load_upload(path.name, path.read_bytes(), columns={"features": {"price": "colour"}})
    with pytest.raises(DataError, match="no column 'colour'"):
        load_upload(path.name, path.read_bytes(), columns={"features": {"colour": "numeric"}})


def test_a_category_unseen_in_training_maps_to_unknown_with_a_note(tmp_path):
    ds = load(str(ratings_csv(tmp_path)))
    family = int(ds.users.index(4)[0])
    fs = build(ds, ["extra:plan"], train_index={"user": np.array([u for u in range(ds.n_users) if u != family])})
    spec = fs.specs[0]
    assert spec.categories == ("basic", "premium")
    assert fs.tables["extra:plan"][family] == 0
    assert any("family" in n for n in fs.notes)
    codes, note = encode(spec, ["student"])
    assert codes.tolist() == [0] and "student" in note


def test_a_second_file_joins_item_features_by_id(tmp_path):
    ratings = ratings_csv(tmp_path)
    items = tmp_path / "items.csv"
    # item 15 is missing (unknown value), item 99 is not in the ratings (skipped)
    items.write_text("item_id,studio,length\n10,Ghibli,124\n11,Pixar,95\n12,Ghibli,110\n13,Aardman,80\n14,Pixar,101\n"
                     "99,Disney,90\n")
    ds = load(str(ratings), columns={"join": {"path": str(items)}})
    rows = {r["feature"]: r for r in describe_available(ds)}
    assert rows["extra:studio"]["side"] == "item" and rows["extra:studio"]["categories"] == 3
    assert rows["extra:length"]["kind"] == "numeric"  # five different whole numbers in five rows: a measure
    studio = ds.item_info["extra:studio"].to_numpy()
    assert studio[ds.items.index([10, 15])].tolist() == ["Ghibli", ""]
    assert any("1 items not in the file" in n and "1 rows name ids" in n for n in ds.notes)
    fs = build(ds, ["extra:studio"])
    assert fs.tables["extra:studio"][ds.items.index(15)].tolist() == [0]  # unknown bucket, not an index error
    with_kinds = load(str(ratings), columns={"join": {"path": str(items), "kinds": {"length": "categorical"}}})
    assert with_kinds.item_info["extra:length"].dtype.kind not in "iuf"


def test_a_second_file_joins_user_features_and_the_upload_keeps_it(tmp_path):
    ratings = ratings_csv(tmp_path)
    users = keep_file("people.tsv", b"user\tcountry\n1\tNZ\n2\tFR\n3\tNZ\n4\tJP\n")
    assert users.is_file() and users.read_bytes().startswith(b"user")
    ds = load_upload(ratings.name, ratings.read_bytes(), columns={"join": [{"path": str(users)}]})
    assert {r["feature"]: r["side"] for r in describe_available(ds)}["extra:country"] == "user"


def test_a_features_file_with_no_matching_ids_is_refused_with_a_reason(tmp_path):
    ratings = ratings_csv(tmp_path)
    other = tmp_path / "other.csv"
    other.write_text("sku,colour\nA1,red\nB2,blue\n")
    with pytest.raises(DataError, match="none of the ids"):
        load(str(ratings), columns={"join": {"path": str(other)}})
    with pytest.raises(DataError, match="no longer available"):
        load(str(ratings), columns={"join": {"path": str(tmp_path / "gone.csv")}})


def test_embeddingnn_trains_on_a_files_features_and_a_new_user_with_an_unseen_value_is_ranked(tmp_path):
    from ncf.config import ModelConfig, RunConfig, TrainConfig
    from ncf.data import make_split
    from ncf.explore import fold_in
    from ncf.runs import save_run
    from ncf.train import train

    ds = load(str(ratings_csv(tmp_path)))
    split = make_split(ds, "leave_one_out", seed=0)
    cfg = RunConfig(model=ModelConfig(model="embnn", objective="implicit", features=("extra:plan", "extra:price"),
                                      layers=(8,)), train=TrainConfig(epochs=1, batch_size=8, device="cpu"))
    result = train(cfg, split)
    assert {s.name for s in result.model.feature_specs} == {"extra:plan", "extra:price"}
    run = save_run(result, cfg, split, models_dir=tmp_path / "models")
    recs = fold_in(run, {}, k=3, user_features={"extra:plan": "student"})  # never seen: the unknown bucket
    assert len(recs) == 3
