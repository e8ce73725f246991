"""Look at the built book as a reader does: every page of ``_toc.yml`` in headless Chromium.

For each page it reports

- images the browser could not load (missing file, or a file it cannot decode);
- links inside the book that resolve to no file, or to a page without the ``#fragment``;
- outputs wider than the content column: an element of the article whose right edge runs
  past the column's, unless a scrolling box (``overflow-x: auto``) inside the column holds it;
- tables wider than the column even inside such a box (the reader would scroll sideways to read
  a row): one table per question fits the column, the full table is a CSV download;
- code cells whose input is shown without the reader asking for it (every cell of the book is
  ``hide-input`` or ``remove-input``: the prose and outputs carry the page, the code is one click away);
- figures (PNG outputs of the notebooks) not stored at twice the pixels they are shown at: one
  drawn at the column's width and stored as ``retina`` (``stlib.pl._style``) shows at 2 stored
  pixels per page pixel; fewer is a blurred figure, more a figure shrunk into the column with its
  fonts under 9 pt;

and keeps a screenshot of each page under ``_build/pagecheck/`` (never committed).

Run by ``tests/rendered/test_pages_in_browser.py``; by hand::

    python tests/rendered/pagecheck.py [_build/html]

Needs the Debian package ``chromium`` (``chromium`` or ``chromium-browser`` on ``PATH``, or
``$STLIB_CHROMIUM``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[2]
WIDTH = 1280  # a desktop window: the content column is the article between the two sidebars
MAX_HEIGHT = 16000  # screenshots are of the whole page, cut at this height

# Measures the page after load and writes the result into <pre id="stlib-pagecheck">, which
# --dump-dom then prints. Runs in the page's own context, so CSS and images are as a reader sees them.
_PROBE = """
<script>
window.addEventListener("load", () => {
  const art = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
  const right = art.getBoundingClientRect().right;
  const scrolls = (el) => {
    for (let p = el.parentElement; p && p !== art; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX;
      if (o === "auto" || o === "scroll" || o === "hidden") return true;
    }
    return false;
  };
  const wide = [];
  for (const el of art.querySelectorAll("*")) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.right <= right + 2 || scrolls(el)) continue;
    if (getComputedStyle(el).position === "fixed") continue;
    const parentWide = el.parentElement && el.parentElement !== art &&
      el.parentElement.getBoundingClientRect().right > right + 2 && !scrolls(el.parentElement);
    if (parentWide) continue;  // report the outermost element only
    wide.push({tag: el.tagName.toLowerCase(), cls: String(el.className || "").slice(0, 60),
               text: (el.innerText || el.getAttribute("src") || "").slice(0, 80), over: Math.round(r.right - right)});
  }
  // code a reader sees without asking: a cell's input with a size (a hidden one sits in a closed <details>)
  const code = [...art.querySelectorAll("div.cell_input")]
    .filter((el) => !el.closest("details:not([open])") && el.getBoundingClientRect().height > 0 && (el.innerText || "").trim())
    .map((el) => (el.innerText || "").trim().split("\\n")[0].slice(0, 80));
  // figures: stored pixels per shown pixel (2 in the house style; a figure shrunk into the column has more)
  const figures = [...art.querySelectorAll("img")]
    .filter((i) => i.complete && i.naturalWidth > 0 && /\.(png|jpe?g)$/i.test(i.getAttribute("src") || "") &&
            i.getBoundingClientRect().width > 0)
    .map((i) => ({src: i.getAttribute("src"), natural: i.naturalWidth, shown: Math.round(i.getBoundingClientRect().width),
                  scale: i.naturalWidth / i.getBoundingClientRect().width}))
    .filter((f) => f.scale < 1.9 || f.scale > 2.1);
  // tables wider than the column: a scrolling box keeps the page tidy, but the reader must scroll
  // sideways to read a row; one table per question fits the column (the full table is a download)
  const colWidth = art.getBoundingClientRect().width;
  // (a table squeezed into its scroll box overflows the box, not the column: both are measured)
  const box = (t) => t.closest("div.output, div.text_html, div.cell_output") || t.parentElement;
  const tables = [...art.querySelectorAll("table")]
    .map((t) => ({t, over: Math.max(t.getBoundingClientRect().width - colWidth,
                                    box(t).scrollWidth - box(t).clientWidth)}))
    .filter(({over}) => over > 2)
    .map(({t, over}) => ({text: (t.innerText || "").trim().split("\\n")[0].slice(0, 80), over: Math.round(over)}));
  const broken = [...document.images].filter((i) => !i.complete || i.naturalWidth === 0)
    .map((i) => i.getAttribute("src"));
  const out = document.createElement("pre");
  out.id = "stlib-pagecheck";
  out.textContent = JSON.stringify({column_right: Math.round(right), wide, broken_images: broken, shown_code: code, figures, tables,
                                    n_images: document.images.length,
                                    height: document.documentElement.scrollHeight});
  document.body.appendChild(out);
});
</script>
"""


#: Figures of the stored book known to break the 2x rule, each with its reason and the largest
#: ratio allowed; anything else on the page is checked as usual, and a waiver that no longer
#: applies (the figure is gone or fixed) fails too, so the list is emptied at the next execution.
KNOWN_FIGURES: dict[str, tuple[float, str]] = {}


@dataclass
class PageReport:
    """What the browser and the link check found on one page."""

    page: str
    screenshot: Path | None = None
    n_images: int = 0
    broken_images: list[str] = field(default_factory=list)
    broken_links: list[str] = field(default_factory=list)
    wide: list[dict] = field(default_factory=list)
    shown_code: list[str] = field(default_factory=list)
    figures: list[dict] = field(default_factory=list)
    tables: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.broken_images or self.broken_links or self.wide or self.shown_code or self.figures
                    or self.tables)

    def problems(self) -> list[str]:
        out = [f"{self.page}: image not loaded: {s}" for s in self.broken_images]
        out += [f"{self.page}: broken link: {s}" for s in self.broken_links]
        out += [f"{self.page}: output {w['over']} px wider than the content column: <{w['tag']} class='{w['cls']}'> "
                f"{w['text']!r}" for w in self.wide]
        out += [f"{self.page}: table {t['over']} px wider than the content column (it scrolls sideways; show "
                f"fewer or narrower columns, the rest as a download): {t['text']!r}" for t in self.tables]
        out += [f"{self.page}: code shown without asking (tag the cell hide-input): {c!r}" for c in self.shown_code]
        out += [f"{self.page}: figure {f['src']} stored at {f['natural']} px, shown at {f['shown']} px "
                f"({f['scale']:.2f} stored px per page px, want 2: draw it at most stlib.pl.COLUMN_IN wide, "
                f"stored as retina)" for f in self.figures]
        return out


def find_browser() -> str | None:
    """The Chromium executable: ``$STLIB_CHROMIUM``, else ``chromium`` or ``chromium-browser`` on ``PATH``."""
    env = os.environ.get("STLIB_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def toc_pages(root: Path = ROOT) -> list[str]:
    """Every document of ``_toc.yml`` (root first), as paths without suffix."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    docs = [toc["root"]]
    for part in toc.get("parts", []):
        docs += [c["file"] for c in part.get("chapters", [])]
    return docs


def _chromium(browser: str, *args: str, height: int = 2000, timeout: float = 120) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
               "--disable-background-networking", "--disable-component-update", "--hide-scrollbars",
               f"--user-data-dir={profile}", f"--window-size={WIDTH},{height}", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def broken_links(html_dir: Path, page: Path) -> list[str]:
    """Links of ``page`` inside the book that point to no file, or to no such ``#fragment``."""
    soup = BeautifulSoup(page.read_text(), "html.parser")
    ids_cache: dict[Path, set[str]] = {}
    out = []
    for a in soup.find_all("a", href=True):
        href = a["href"]
        parts = urlsplit(href)
        if parts.scheme or href.startswith(("mailto:", "javascript:", "//")):
            continue  # external: the CI has no network; not checked
        target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            out.append(href)
            continue
        if parts.fragment and target.suffix == ".html":
            if target not in ids_cache:
                t = BeautifulSoup(target.read_text(), "html.parser")
                ids_cache[target] = {el["id"] for el in t.find_all(id=True)} | {
                    el["name"] for el in t.find_all("a", attrs={"name": True})}
            if unquote(parts.fragment) not in ids_cache[target]:
                out.append(href)
    return sorted(set(out))


def check_page(browser: str, html_dir: Path, doc: str, shots: Path) -> PageReport:
    """Render one page, measure it, screenshot it, and check its links."""
    page = html_dir / f"{doc}.html"
    report = PageReport(page=doc)
    if not page.is_file():
        report.broken_links.append(f"(the page itself: {page} was not built)")
        return report
    probe = page.with_name(f".pagecheck-{page.name}")
    text = page.read_text()
    probe.write_text(text.replace("</body>", _PROBE + "</body>", 1) if "</body>" in text else text + _PROBE)
    try:
        res = _chromium(browser, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri())
    finally:
        probe.unlink(missing_ok=True)
    dom = BeautifulSoup(res.stdout, "html.parser").find(id="stlib-pagecheck")
    if dom is None:
        raise RuntimeError(f"{page}: Chromium returned no measurement (exit {res.returncode}): {res.stderr[-500:]}")
    m = json.loads(dom.get_text())
    report.n_images, report.broken_images, report.wide = m["n_images"], m["broken_images"], m["wide"]
    report.shown_code = m.get("shown_code", [])
    report.figures = m.get("figures", [])
    report.tables = m.get("tables", [])
    if doc in KNOWN_FIGURES:
        most, why = KNOWN_FIGURES[doc]
        waived = [f for f in report.figures if f["scale"] <= most]
        report.figures = [f for f in report.figures if f["scale"] > most]
        if not waived:
            report.figures.append({"src": f"(waiver of {doc} no longer needed: remove it from KNOWN_FIGURES)",
                                   "natural": 0, "shown": 0, "scale": 0.0})
        for f in waived:
            print(f"{doc}: figure {f['src']} at {f['scale']:.2f} stored px per page px, allowed: {why}")
    report.broken_links = broken_links(html_dir, page)
    shot = shots / (doc.replace("/", "__") + ".png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    # the whole page (up to MAX_HEIGHT px), as a reader scrolls through it
    _chromium(browser, f"--screenshot={shot}", page.as_uri(), height=min(int(m.get("height") or 2000), MAX_HEIGHT))
    report.screenshot = shot if shot.is_file() else None
    return report


def check_book(html_dir: Path, browser: str, docs: list[str] | None = None) -> list[PageReport]:
    """Every page of the book; screenshots in ``<html_dir>/../pagecheck/``."""
    shots = html_dir.parent / "pagecheck"
    return [check_page(browser, html_dir, doc, shots) for doc in (docs or toc_pages())]


def main(argv: list[str]) -> int:
    html_dir = Path(argv[0] if argv else ROOT / "_build" / "html").resolve()
    browser = find_browser()
    if browser is None:
        print("no Chromium found (install the Debian package 'chromium' or set STLIB_CHROMIUM)", file=sys.stderr)
        return 2
    reports = check_book(html_dir, browser)
    problems = [p for r in reports for p in r.problems()]
    for r in reports:
        print(f"{'ok  ' if r.ok else 'FAIL'} {r.page}: {r.n_images} images, screenshot {r.screenshot}")
    print("\n".join(problems) or f"{len(reports)} pages: no missing image, broken link or overwide output")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
