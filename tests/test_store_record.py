"""stlib.book.store.read_record: a stored run of a script too long for CI, with its provenance."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from stlib.book import store
from stlib.errors import DataError


def _write(tmp_path: Path, meta: dict | str | None, rows: int = 2) -> Path:
    csv = tmp_path / "rec.csv"
    pd.DataFrame({"pcc": [0.1, 0.2][:rows]}, index=pd.Index(["a", "b"][:rows], name="model")).to_csv(csv)
    if meta is not None:
        csv.with_suffix(".json").write_text(meta if isinstance(meta, str) else json.dumps(meta))
    return csv


def test_reads_table_and_provenance(tmp_path: Path) -> None:
    csv = _write(tmp_path, {"command": "python x.py", "commit": "abc", "date": "2026-12-01", "cores": 2})
    table, meta = store.read_record(csv)
    assert list(table.index) == ["a", "b"] and table.index.name == "model" and table.loc["b", "pcc"] == 0.2
    assert meta["commit"] == "abc" and meta["cores"] == 2


@pytest.mark.parametrize("meta, rows, match", [
    (None, 2, r"rec\.json: no such stored record"),
    ("{not json", 2, r"rec\.json: not valid JSON"),
    ({"command": "x"}, 2, r"lacks \['commit', 'date'\]"),
    ({"command": "x", "commit": "a", "date": "d"}, 0, r"rec\.csv: the stored table has no rows"),
])
def test_bad_records_name_the_file(tmp_path: Path, meta, rows: int, match: str) -> None:
    with pytest.raises(DataError, match=match):
        store.read_record(_write(tmp_path, meta, rows))


def test_missing_table(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nothing\.csv: no such stored record"):
        store.read_record(tmp_path / "nothing.csv")


def test_result_tables_have_one_home(tmp_path):
    import pandas as pd
    import pytest

    from stlib.book import store
    from stlib.errors import DataError

    df = pd.DataFrame({"model": ["ridge"], "PCC": [0.1]}).set_index("model")
    assert store.write_table(df, tmp_path, "table1") is None
    assert store.table_path(tmp_path, "table1") == tmp_path / "tables" / "table1.csv"
    pd.testing.assert_frame_equal(store.read_table(tmp_path, "table1", index_col="model"), df)
    with pytest.raises(DataError, match="no table named 'tabel1'"):
        store.write_table(df, tmp_path, "tabel1")
    with pytest.raises(DataError, match="chapter 13 writes it"):
        store.read_table(tmp_path, "verdict")


def test_chapters_name_tables_not_paths():
    """Chapters write and read result tables through ``store`` by name (``store.TABLES``)."""
    import re
    from pathlib import Path

    from stlib.book import store

    root = Path(__file__).resolve().parents[1]
    paths, names = [], set()
    for nb in sorted((root / "notebooks").glob("[0-9][0-9]_*.py")):
        text = nb.read_text()
        paths += [f"{nb.name}:{i}" for i, line in enumerate(text.splitlines(), 1) if '"tables"' in line]
        names |= set(re.findall(r'_table\(.*\bout, "(\w+)"', text))
    assert not paths, paths
    assert names and names <= set(store.TABLES), names - set(store.TABLES)


def test_download_links_the_full_table(tmp_path, monkeypatch):
    import pandas as pd
    import pytest

    from stlib.book import store
    from stlib.errors import DataError

    run = tmp_path / "results" / "default"
    (run / "tables").mkdir(parents=True)
    with pytest.raises(DataError, match="no table 'table1' written yet"):
        store.download(run, "table1")
    store.write_table(pd.DataFrame({"a": [1, 2, 3], "b": [4, 5, 6]}), run, "table1", index=False)
    other = store.download(run, "table1").data  # not the book's run: named where it is
    assert str(store.table_path(run, "table1")) in other and "3 rows x 2 columns" in other
    monkeypatch.setattr(store, "BOOK_RUN", str(run))
    monkeypatch.setattr(store, "BOOK_TABLES", str(tmp_path / "book" / "tables"))
    md = store.download(run, "table1").data
    assert md.startswith("Full table: {download}`table1.csv <../tables/table1.csv>`, 3 rows x 2 columns")
    assert (tmp_path / "book" / "tables" / "table1.csv").read_text() == store.table_path(run, "table1").read_text()
