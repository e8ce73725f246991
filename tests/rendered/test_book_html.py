"""Checks of the rendered book (run by ``./run test`` after the book build, on ``_build/html``).

Every chapter page carries its provenance block, with values that agree with the project (the
data set's manifest as it is now, a commit of this repository's history), and links to its
executed notebook and its jupytext source that resolve to files of the built book.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("STLIB_BOOK_HTML", ROOT / "_build" / "html"))


def _chapters() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    return [f for f in files if f.startswith("book/notebooks/")]


@pytest.fixture(scope="module")
def pages() -> dict[str, BeautifulSoup]:
    if not (HTML / "index.html").is_file():
        pytest.fail(f"{HTML}/index.html missing: build the book first (./run book)")
    out = {}
    for doc in _chapters():
        page = HTML / f"{doc}.html"
        assert page.is_file(), f"{page}: chapter of _toc.yml not rendered"
        out[doc] = BeautifulSoup(page.read_text(), "html.parser")
    return out


def _block(soup: BeautifulSoup, doc: str):
    blocks = soup.select("div.stlib-provenance")
    assert len(blocks) == 1, f"{doc}: {len(blocks)} provenance blocks"
    return blocks[0]


def test_every_chapter_shows_its_provenance(pages: dict[str, BeautifulSoup]) -> None:
    assert len(pages) >= 11
    for doc, soup in pages.items():
        block = _block(soup, doc)
        rows = {tr.th.get_text(strip=True): tr.td for tr in block.select("tr")}
        assert set(rows) == {"Code", "Executed", "Data", "Backbone", "Environment", "Machine", "Download"}, (doc, set(rows))
        # the machine and the kernels it ran under (stlib/_kernels.py): a reader comparing numbers needs them
        assert "pinned" in rows["Machine"].get_text() or "native" in rows["Machine"].get_text(), (doc, rows["Machine"].get_text())
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", rows["Executed"].get_text()), doc
        full = {c.get("title") for td in rows.values() for c in td.select("code[title]")}
        assert all(re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", h or "") for h in full), (doc, full)
        # the input cell is hidden: the reader sees the block, not the code that made it
        assert "provenance.show" not in soup.get_text(), doc


def test_provenance_agrees_with_the_project(pages: dict[str, BeautifulSoup]) -> None:
    in_git = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True).returncode == 0
    for doc, soup in pages.items():
        rows = {tr.th.get_text(strip=True): tr.td for tr in _block(soup, doc).select("tr")}
        data = rows["Data"]
        manifest = ROOT / data.select("code")[1].get_text()
        assert manifest.is_file(), (doc, manifest)
        stated = data.select("code[title]")[0]["title"]
        assert stated == hashlib.sha256(manifest.read_bytes()).hexdigest(), (
            f"{doc}: executed on another version of {manifest.name}; re-run the pipeline")
        commit = rows["Code"].select("code[title]")[0]["title"]
        if in_git:
            ok = subprocess.run(["git", "-C", str(ROOT), "merge-base", "--is-ancestor", commit, "HEAD"],
                                capture_output=True).returncode == 0
            assert ok, f"{doc}: commit {commit} is not in this repository's history"


def test_download_links_resolve(pages: dict[str, BeautifulSoup]) -> None:
    for doc, soup in pages.items():
        links = [a["href"] for a in _block(soup, doc).select("a[download]")]
        stem = Path(doc).name
        assert links == [f"../../_sources/book/notebooks/{stem}.ipynb", f"{stem}.py"], (doc, links)
        page_dir = (HTML / doc).parent
        for href in links:
            target = (page_dir / href).resolve()
            assert target.is_file(), f"{doc}: {href} -> {target} missing"
        assert (page_dir / f"{stem}.py").read_text() == (ROOT / "notebooks" / f"{stem}.py").read_text()


def test_chapters_executed_in_order_at_one_commit(pages: dict[str, BeautifulSoup]) -> None:
    """One run of the pipeline made the book: every chapter at the same commit, none with local
    changes to the code, executed in the order of the table of contents (a chapter that ran
    before the one whose outputs it reads would show stale numbers)."""
    commits, times = {}, []
    for doc, soup in pages.items():
        rows = {tr.th.get_text(strip=True): tr.td for tr in _block(soup, doc).select("tr")}
        commits[doc] = rows["Code"].select("code[title]")[0]["title"]
        assert "local changes" not in rows["Code"].get_text(), f"{doc}: executed with local changes to the code"
        times.append((re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", rows["Executed"].get_text()).group(0), doc))
    assert len(set(commits.values())) == 1, f"chapters executed at several commits: {commits}"
    order = [doc for _, doc in times]
    assert [doc for _, doc in sorted(times)] == order, f"chapters not executed in the order of _toc.yml: {sorted(times)}"
