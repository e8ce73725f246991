"""stlib.book.scale: growth exponents, extrapolation and the table of the scale benchmark."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stlib.book import scale


def _rows(sizes=(6, 12, 24), unmeasured=(68,)) -> pd.DataFrame:
    """Chapter 01 linear in sections, chapter 02 quadratic, chapter 03 constant."""
    rows = []
    for n in sizes:
        rows += [{"sections": n, "chapter": "01", "seconds": 10.0 * n, "peak GiB": 1 + n / 10, "measured": True},
                 {"sections": n, "chapter": "02", "seconds": 0.5 * n**2, "peak GiB": 2.0, "measured": True},
                 {"sections": n, "chapter": "03", "seconds": 30.0, "peak GiB": 0.5, "measured": True}]
    for n in unmeasured:
        rows += [{"sections": n, "chapter": c, "seconds": 1.0, "peak GiB": np.nan, "measured": False}
                 for c in ("01", "02", "03")]
    return pd.DataFrame(rows)


def test_growth_recovers_the_power_laws_from_measured_rows_only() -> None:
    g = scale.growth(_rows())
    np.testing.assert_allclose(g.loc[["01", "02", "03"], "exponent"], [1.0, 2.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(g.loc[["01", "02", "03"], "a"], [10.0, 0.5, 30.0], rtol=1e-9)
    assert g["sizes"].tolist() == [3, 3, 3]  # the unmeasured 68 rows (seconds 1.0) are not fitted


def test_extrapolate_and_a_chapter_measured_once_has_no_fit() -> None:
    np.testing.assert_allclose(scale.extrapolate(_rows(), 68).loc[["01", "02", "03"]], [680.0, 0.5 * 68**2, 30.0])
    # a fixed cost at the small sizes: the two largest sizes give the local growth, all sizes less
    rows = _rows()
    rows.loc[(rows["chapter"] == "01") & rows["measured"], "seconds"] += 100.0
    local = scale.extrapolate(rows, 68).loc["01"]
    every = scale.extrapolate(rows, 68, last=None).loc["01"]
    b = np.log(340 / 220) / np.log(2)
    assert local == pytest.approx(340 * (68 / 24) ** b) and every < local
    assert scale.growth(rows, last=2).loc["01", "sizes"] == 2
    one = _rows(sizes=(6,), unmeasured=())
    assert scale.growth(one)["exponent"].isna().all()
    assert scale.extrapolate(one, 68).isna().all()


def test_wide_table_marks_extrapolated_sizes_and_totals() -> None:
    rows = _rows()
    w = scale.wide(rows)
    assert list(w.columns) == ["6", "12", "24", "68 (extrapolated)", "growth exponent", "exponent, largest two"]
    assert w.loc["total", "6"] == pytest.approx(round((60 + 18 + 30) / 60, 1))
    assert w.loc["02", "growth exponent"] == 2.0
    tot = [60 + 18 + 30, 120 + 72 + 30, 240 + 288 + 30]  # the total's exponent: fitted to the measured totals
    assert w.loc["total", "growth exponent"] == round(np.polyfit(np.log([6, 12, 24]), np.log(tot), 1)[0], 2)
    # sections as the index (as store.read_record gives the CSV) reads the same
    pd.testing.assert_frame_equal(scale.wide(rows.set_index("sections")), w)


def test_peaks_and_where_the_time_goes() -> None:
    rows = _rows()
    assert scale.peaks(rows).to_dict() == {6: 2.0, 12: 2.2, 24: 3.4}
    w = scale.where_time_goes(rows, 24)
    assert w.index.tolist() == ["02", "01", "03"] and w["share"].sum() == pytest.approx(1, abs=2e-3)
    assert not scale.where_time_goes(rows)["measured"].any()  # the largest size, 68, was extrapolated
    with pytest.raises(ValueError, match="no rows for 30 sections"):
        scale.where_time_goes(rows, 30)


def test_rows_without_the_benchmark_columns_are_named() -> None:
    with pytest.raises(KeyError, match="peak GiB"):
        scale.growth(_rows().drop(columns="peak GiB"))


def test_read_a_stored_record_and_name_what_is_missing(tmp_path) -> None:
    import json

    from stlib.errors import DataError

    path = tmp_path / "scale.csv"
    _rows().to_csv(path, index=False)  # as benchmarks/bench_scale.py --record writes it
    path.with_suffix(".json").write_text(json.dumps({"command": "c", "commit": "abc", "date": "2026-12-01"}))
    with pytest.raises(DataError, match="scale_cells.csv"):
        scale.read(path)
    cells = pd.DataFrame({"sections": [6], "chapter": ["01"], "cell": [3], "seconds": [2.5], "source": ["x = 1"]})
    cells.to_csv(tmp_path / "scale_cells.csv", index=False)
    rows, got, meta = scale.read(path)
    pd.testing.assert_frame_equal(rows, scale.as_rows(_rows()))
    assert got["chapter"].tolist() == ["01"] and meta["commit"] == "abc"
    _rows().drop(columns="measured").to_csv(path, index=False)
    with pytest.raises(DataError, match="not a scale benchmark table"):
        scale.read(path)


def test_slowest_cells_with_their_growth_from_the_next_smaller_size() -> None:
    cells = pd.DataFrame({"sections": [12, 12, 24, 24, 24], "chapter": ["6", "06", "06", "06", "08"],
                          "cell": [9, 12, 9, 12, 14], "seconds": [10.0, 50.0, 40.0, 100.0, 7.0],
                          "source": ["a", "b", "a", "b", "c"]})
    got = scale.slowest_cells(cells)
    assert got.index.tolist() == [("06", 9), ("06", 12), ("08", 14)]
    assert got["exponent"].tolist()[:2] == [2.0, 1.0] and np.isnan(got.loc[("08", 14), "exponent"])
    assert scale.slowest_cells(cells, 12)["exponent"].isna().all()
    with pytest.raises(ValueError, match="no cells for 68"):
        scale.slowest_cells(cells, 68)


def test_compare_two_runs_at_a_shared_size() -> None:
    full = _rows(sizes=(6, 12), unmeasured=(68,))
    light = _rows(sizes=(68,), unmeasured=())
    light.loc[light["chapter"] == "02", "seconds"] = 60.0  # one chapter made cheaper
    c = scale.compare({"full": full, "light": light})
    assert c.columns.name == "minutes at 68 sections"
    assert list(c.columns) == ["full (extrapolated)", "light", "difference"]
    assert c.loc["02", "light"] == 1.0 and c.loc["01", "light"] == pytest.approx(round(680 / 60, 1))
    assert c.loc["total", "light"] == pytest.approx(round((680 + 60 + 30) / 60, 1), abs=0.051)
    assert c.loc["total", "difference"] == pytest.approx(c.loc["total", "light"] - c.loc["total", "full (extrapolated)"],
                                                         abs=0.051)
    with pytest.raises(ValueError, match="share no size"):
        scale.compare({"a": _rows(sizes=(6,), unmeasured=()), "b": light})
    with pytest.raises(ValueError, match="not every record has 12"):
        scale.compare({"full": full, "light": light}, sections=12)
    with pytest.raises(ValueError, match="no records"):
        scale.compare({})
