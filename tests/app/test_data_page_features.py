"""The Data page with side features: an upload's extra columns (kind shown and correctable) and a second
file joined by id."""

from __future__ import annotations

import numpy as np

from tests.app.conftest import shown

MODES = ("Synthetic (built in)", "MovieLens", "Upload a file")
PLANS = ("basic", "premium", "family")


def ratings_with_extras() -> bytes:
    """30 users x 8 of 40 items; plan is the user's, price the item's, device the interaction's."""
    rng = np.random.default_rng(0)
    rows = ["userId,movieId,rating,timestamp,plan,price,device"]
    for u in range(1, 31):
        for i in rng.choice(np.arange(100, 140), 8, replace=False):
            rows.append(f"{u},{i},{rng.integers(1, 6)},{1_000_000 + u * 100 + i},{PLANS[u % 3]},{i / 10 + 0.49:.2f},"
                        f"{('tv', 'phone')[int(rng.integers(2))]}")
    return ("\n".join(rows) + "\n").encode()


def feature_table(at) -> dict:
    frame = next(df.value for df in at.dataframe if "feature" in df.value.columns)
    return {row.feature: row for row in frame.itertuples()}


def test_extra_columns_are_offered_as_features_with_their_kind_and_a_second_file_joins(page):
    at = page("app_pages/data.py")
    at.button_group(key="data_mode").set_value(MODES[2]).run()
    at.file_uploader[0].upload("views.csv", ratings_with_extras(), "text/csv").run()
    assert not at.exception
    assert at.selectbox(key="kind_plan").value == "categorical"
    assert at.selectbox(key="kind_price").value == "numeric"
    at.selectbox(key="kind_device").set_value("ignore").run()
    next(b for b in at.button if b.label == "Load this file").click().run()
    assert not at.exception and not at.error, shown(at.error[0].value) if at.error else ""
    table = feature_table(at)
    assert table["extra:plan"].side == "user" and table["extra:price"].side == "item"
    assert "extra:device" not in table

    studios = "movieId,studio\n" + "".join(f"{i},{('Ghibli', 'Pixar')[i % 2]}\n" for i in range(100, 140))
    uploader = next(u for u in at.file_uploader if u.key == "features_file")
    uploader.upload("studios.csv", studios.encode(), "text/csv").run()
    assert not at.exception and not at.error, shown(at.error[0].value) if at.error else ""
    assert any("items" in m.value and "movieId" in shown(m.value) and "40 of 40" in m.value for m in at.markdown)
    next(b for b in at.button if b.label == "Join these features").click().run()
    assert not at.exception and not at.error, shown(at.error[0].value) if at.error else ""
    assert feature_table(at)["extra:studio"].side == "item"
    assert any("is the current dataset" in s.value for s in at.success)  # the join is part of the source
    assert any("is joined" in s.value for s in at.success)
