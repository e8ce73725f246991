"""Numbers printed for reading: no more digits than the interval supports."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stlib._format import interval_decimals, with_interval


def test_places_follow_the_width_of_the_interval():
    assert interval_decimals(0.015, 0.040) == 3
    assert interval_decimals(-1584.1, -165.1) == 0
    assert interval_decimals(0.102, 0.106) == 4  # a narrow train interval keeps its digits
    assert interval_decimals(0.2, 0.9) == 2 and interval_decimals(0.21, 0.29) == 3
    assert interval_decimals(1.0, 1.0) == 4 and interval_decimals(np.nan, 1.0) == 4


def test_with_interval_prints_what_the_interval_supports():
    assert with_interval(0.024, 0.015, 0.040) == "0.024 [0.015, 0.040]"
    assert with_interval(-1150.496, -1584.1, -165.1) == "-1150 [-1584, -165]"
    assert with_interval(0.1041, 0.1023, 0.1062) == "0.1041 [0.1023, 0.1062]"
    assert with_interval(3.354996e13, 2.1e13, 4.4e13) == "3.4e+13 [2.1e+13, 4.4e+13]"
    assert with_interval(0.007, -0.0004, 0.055) == "0.0070 [-0.0004, 0.0550]"  # the bound's side of zero shows
    assert with_interval(0.0, 0.0, 0.0) == "0.000 [0.000, 0.000]"  # no spread (the same predictions): no extra places
    assert with_interval(0.000479, -0.000016, 0.001211) == "0.00048 [-0.00002, 0.00121]"
    assert with_interval(0.007, 0.0004, 0.055) == "0.0070 [0.0004, 0.0550]"
    assert with_interval(0.007, -0.00004, 0.055) == "0.00700 [-0.00004, 0.05500]"
    assert with_interval(0.007, -0.0000004, 0.055) == "0.007000 [0.000000, 0.055000]"  # at most 6 places; no "-0.000000"
    assert with_interval(-0.0004, -0.0104, 0.0096) == "0.000 [-0.010, 0.010]"
    assert with_interval(123456, 121000, 126000) == "1.235e+05 [1.21e+05, 1.26e+05]"  # the ends stay apart
    assert with_interval(0.25, 0.2, 0.3, 2) == "0.25 [0.20, 0.30]"  # explicit places win
    assert with_interval(np.nan, 0.0, 1.0) == "n/a"
    s = with_interval(pd.Series([0.5, 0.05]), pd.Series([0.4, 0.04]), pd.Series([0.6, 0.06]))
    assert list(s) == ["0.50 [0.40, 0.60]", "0.050 [0.040, 0.060]"]


def test_show_reads_model_ids_as_names_and_keeps_the_rest() -> None:
    """Tables on the page name models as the figures do (one mapping); other labels and cells stay."""
    import pandas as pd

    from stlib.book.scoring import show
    from stlib.pl import model_label

    df = pd.DataFrame({"best image model": ["knn_ridge", "x"], "pcc": [0.12345, 1.0]},
                      index=pd.Index(["gnn", "foo"], name="model"))
    out = show(df)
    assert list(out.index) == [model_label("gnn"), "foo"] and out.index.name == "model"
    assert list(out["best image model"]) == [model_label("knn_ridge"), "x"] and out.loc["foo", "pcc"] == 1.0
    assert model_label("knn_ridge") != "knn_ridge"
    wide = pd.DataFrame([[1.0, 2.0]], columns=pd.MultiIndex.from_tuples([("valid", "lasso"), ("test", "ridge")]))
    assert list(show(wide).columns) == [("valid", "Lasso"), ("test", "Ridge")]
    assert list(show(df, names=False).index) == ["gnn", "foo"] and list(df.index) == ["gnn", "foo"]


def test_show_prints_no_negative_zero():
    from stlib._format import show as round_table

    t = round_table(pd.DataFrame({"x": [-0.0004, 0.1234]}))
    assert str(t["x"].iloc[0]) == "0.0" and "-0.000" not in t.to_string()
