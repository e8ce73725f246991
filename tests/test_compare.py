"""Comparing two executions of the book (stlib._compare), as the machine-variant check does."""

from __future__ import annotations

import math
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from stlib._compare import compare_runs, diff_cell, run_provenance


def _nb(path: Path, texts: list[str], tags: list[list[str]] | None = None, md: str = "x") -> None:
    cells = [new_markdown_cell(md)]
    for i, t in enumerate(texts):
        c = new_code_cell("print(1)", outputs=[new_output("stream", name="stdout", text=t)])
        if tags:
            c.metadata["tags"] = tags[i]
        cells.append(c)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=cells), path)


def test_equal_runs_differ_nowhere(tmp_path: Path) -> None:
    _nb(tmp_path / "a" / "01_x.ipynb", ["PCC 0.123\n", "n = 283"])
    _nb(tmp_path / "b" / "01_x.ipynb", ["PCC 0.123\n", "n = 283"], md="other prose")
    (row,) = compare_runs(tmp_path / "a", tmp_path / "b")
    assert row["cells"] == 2 and row["cells_differ"] == 0 and row["values"] == 2 and row["largest"] == 0


def test_a_number_that_moves_is_counted_with_its_size(tmp_path: Path) -> None:
    _nb(tmp_path / "a" / "05_mlp.ipynb", ["best epoch 6 of 36, PCC 0.019\n", "same"])
    _nb(tmp_path / "b" / "05_mlp.ipynb", ["best epoch 14 of 44, PCC 0.022\n", "same"])
    (row,) = compare_runs(tmp_path / "a", tmp_path / "b")
    assert row["cells_differ"] == 1 and row["values_differ"] == 3 and row["largest"] == 8
    assert row["first"].startswith("cell 0: [stdout] best epoch 6")


def test_changed_text_is_an_infinite_difference_and_ignored_cells_are_not_compared(tmp_path: Path) -> None:
    _nb(tmp_path / "a" / "13_v.ipynb", ["contradicted", "time 12 s"], tags=[[], ["nbval-ignore-output"]])
    _nb(tmp_path / "b" / "13_v.ipynb", ["not shown", "time 99 s"], tags=[[], ["nbval-ignore-output"]])
    (row,) = compare_runs(tmp_path / "a", tmp_path / "b")
    assert row["cells"] == 1 and row["cells_differ"] == 1 and math.isinf(row["largest"])


def test_the_sanitize_file_applies(tmp_path: Path) -> None:
    cfg = tmp_path / "s.cfg"
    cfg.write_text("[addr]\nregex: at 0x[0-9a-f]+\nreplace: at 0x<address>\n")
    _nb(tmp_path / "a" / "07_q.ipynb", ["<Figure at 0x7f00>"])
    _nb(tmp_path / "b" / "07_q.ipynb", ["<Figure at 0x7fff>"])
    assert compare_runs(tmp_path / "a", tmp_path / "b")[0]["cells_differ"] == 1
    assert compare_runs(tmp_path / "a", tmp_path / "b", sanitize=cfg)[0]["cells_differ"] == 0


def test_diff_cell_reads_exponents_and_signs() -> None:
    d = diff_cell("-0.048 [-0.104, 0.010]", "0.008 [-0.053, 0.071]")
    assert d is not None and abs(d.largest - 0.061) < 1e-12 and d.values_differ == 3
    assert diff_cell("1e-06", "1e-06") is None


def test_run_provenance_reads_commit_and_machine(tmp_path: Path) -> None:
    block = ("commit: 952240063c0ee009732c2cc2c98e7a3789e9983c\nlocal_changes: False\n"
             "machine: {'cpu': 'AMD EPYC', 'cores': 2, 'mismatches': []}\n")
    _nb(tmp_path / "a" / "01_x.ipynb", [block, "PCC 0.1"])
    assert run_provenance(tmp_path / "a") == {"commit": "952240063c0e", "cpu": "AMD EPYC", "cores": 2, "pinned": True}
    _nb(tmp_path / "b" / "01_x.ipynb", ["PCC 0.1"])
    with pytest.raises(ValueError, match="no provenance block"):
        run_provenance(tmp_path / "b")
    with pytest.raises(ValueError, match="no executed notebooks"):
        run_provenance(tmp_path / "c")
