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
