"""The built book in headless Chromium: no missing image, broken link, overwide output or code
shown without asking.

Run by ``./run test`` after the book build. Without a browser the checks skip with a message,
except under ``CI=true``, where a missing browser is a failure (``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import pagecheck  # noqa: E402

HTML = Path(os.environ.get("STLIB_BOOK_HTML", pagecheck.ROOT / "_build" / "html"))


@pytest.fixture(scope="module")
def browser() -> str:
    b = pagecheck.find_browser()
    if b is None:
        msg = "no Chromium on this machine (Debian package 'chromium', or set STLIB_CHROMIUM): browser checks not run"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + "; under CI=true the browser is required")
        pytest.skip(msg)
    return b


def test_checks_catch_broken_pages(browser, tmp_path):
    """The checks can fail: a page with a missing image, two broken links, a wide output and a table
    that scrolls sideways."""
    from PIL import Image

    site = tmp_path / "html"
    site.mkdir()
    for name, w in (("retina.png", 400), ("plain.png", 300), ("shrunk.png", 1800)):
        Image.new("RGB", (w, 50), "white").save(site / name)
    (site / "other.html").write_text('<html><body><h1 id="there">x</h1></body></html>')
    (site / "bad.html").write_text("""<html><body style="margin:0"><article class="bd-article" style="width:600px">
      <p>text</p><img src="missing.png" alt="x">
      <a href="nope.html">a</a> <a href="other.html#nothere">b</a> <a href="other.html#there">c</a>
      <div class="cell_output" style="width:1500px">too wide</div>
      <div style="overflow-x:auto"><table style="width:1500px"><tr><td>scrolls, still too wide</td></tr></table></div>
      <div style="overflow-x:auto"><table style="width:500px"><tr><td>fits</td></tr></table></div>
      <div class="cell_input"><pre>shown = 1</pre></div>
      <img src="retina.png" width="200"><img src="plain.png"><img src="shrunk.png" style="max-width:100%">
      <details><summary>Show code</summary><div class="cell_input"><pre>hidden = 1</pre></div></details>
      </article></body></html>""")
    r = pagecheck.check_page(browser, site, "bad", tmp_path / "shots")
    assert r.broken_images == ["missing.png"]
    assert r.broken_links == ["nope.html", "other.html#nothere"]
    assert [w["text"] for w in r.wide] == ["too wide"]
    assert [t["text"] for t in r.tables] == ["scrolls, still too wide"] and r.tables[0]["over"] == 900
    assert r.shown_code == ["shown = 1"]  # the one in the closed <details> is hidden
    assert r.screenshot is not None and r.screenshot.stat().st_size > 0
    assert [f["src"] for f in r.figures] == ["plain.png", "shrunk.png"]  # 1 and 3 stored px per shown px
    assert not r.ok and len(r.problems()) == 8


def test_every_page_of_the_book_renders_cleanly(browser):
    if not (HTML / "index.html").is_file():
        pytest.fail(f"{HTML}/index.html missing: build the book first (./run book)")
    reports = pagecheck.check_book(HTML, browser)
    assert len(reports) == len(pagecheck.toc_pages())
    problems = [p for r in reports for p in r.problems()]
    assert not problems, "\n".join(problems)
    missing = [r.page for r in reports if r.screenshot is None]
    assert not missing, f"no screenshot of {missing}"
    figures = sum(r.n_images for r in reports if "/notebooks/" in r.page)
    assert figures >= 13, f"only {figures} images on the chapter pages"
