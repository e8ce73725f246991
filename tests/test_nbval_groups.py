"""nbval's two chains: chapters 09-16 read only what 01-08 wrote, so they may run side by side."""

from __future__ import annotations

import re
from pathlib import Path

from stlib import _pytest_pins

ROOT = Path(__file__).resolve().parents[1]


def test_every_later_chapter_is_in_one_chain_and_reads_no_sibling():
    chapters = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
    later = [c for c in chapters if c[:2] >= "09"]
    groups = {c: _pytest_pins.notebook_group(c.replace(".py", ".ipynb")) for c in later}
    assert all(groups.values()), groups
    assert all(_pytest_pins.notebook_group(c.replace(".py", ".ipynb")) is None for c in chapters if c[:2] < "09")
    # the tables a later chapter reads are written by 01-08 only (stlib.book.store.TABLES names the writer)
    from stlib.book.store import TABLES

    for c in later:
        src = (ROOT / "notebooks" / c).read_text()
        for name in re.findall(r'read_table\(\s*\w+,\s*"([a-z0-9_]+)"', src):
            assert TABLES[name][0] < "09", f"{c} reads {name}, written by chapter {TABLES[name][0]}"
        assert "write_config" not in src, f"{c} writes the run's config, which its siblings read"


def test_the_test_command_runs_the_chains_on_two_workers():
    run = (ROOT / "run").read_text()
    assert "--dist loadgroup" in run and "book/notebooks/0[1-8]_*.ipynb" in run


def test_a_chain_runs_on_one_worker_in_order(tmp_path):
    """Tiny notebooks through nbval on two workers: every cell of a chain on one worker, chapters in
    order (without tryfirst on the grouping hook, xdist scheduled each cell on its own)."""
    import json
    import os
    import subprocess
    import sys

    import nbformat

    log = tmp_path / "log.txt"
    names = ["09_a", "10_b", "14_c", "15_d"]
    for name in names:
        cells = [nbformat.v4.new_code_cell(
            f"import os\nopen({str(log)!r}, 'a').write('{name} {k} ' + os.environ.get('PYTEST_XDIST_WORKER', '-') + '\\n')")
            for k in range(3)]
        nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {
            "name": "python3", "display_name": "Python 3", "language": "python"}}), tmp_path / f"{name}.ipynb")
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "stlib._pytest_pins",
                          "--nbval-lax", "-n", "2", "--dist", "loadgroup", *[f"{n}.ipynb" for n in names]],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    rows = [line.split() for line in log.read_text().splitlines()]
    worker = {}
    for nb, _, w in rows:
        worker.setdefault(nb, set()).add(w)
    assert all(len(w) == 1 for w in worker.values()), worker  # each notebook on one worker
    assert worker["09_a"] == worker["10_b"] and worker["14_c"] == worker["15_d"]
    for chain in (["09_a", "10_b"], ["14_c", "15_d"]):
        seen = [(nb, int(k)) for nb, k, _ in rows if nb in chain]
        assert seen == sorted(seen), seen  # in order within the chain
    assert json.dumps(sorted(worker)) == json.dumps(sorted(names))
