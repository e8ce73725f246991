"""Sphinx extension: publish each chapter's jupytext source beside its page.

The book renders the executed notebooks ``book/notebooks/NN_*.ipynb`` (Sphinx already copies them
to ``_sources/`` for the download button); their sources are the text notebooks
``notebooks/NN_*.py``. After an HTML build this copies every source whose executed notebook is a
page of the book to ``<outdir>/book/notebooks/NN_*.py``, where each page's provenance block links
to it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sphinx.util import logging

logger = logging.getLogger(__name__)


def copy_sources(app: Any, exception: Exception | None) -> None:
    """``build-finished`` handler."""
    if exception is not None or app.builder.format != "html":
        return
    src_dir = Path(app.srcdir) / "notebooks"
    out_dir = Path(app.outdir) / "book" / "notebooks"
    copied = 0
    for doc in sorted(app.env.found_docs):
        if not doc.startswith("book/notebooks/"):
            continue
        src = src_dir / (Path(doc).name + ".py")
        if not src.is_file():
            raise FileNotFoundError(f"{src}: the jupytext source of the page {doc} is missing")
        out_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, out_dir / src.name)
        copied += 1
    logger.info(f"jupytext_sources: copied {copied} chapter sources")


def setup(app: Any) -> dict[str, Any]:
    app.connect("build-finished", copy_sources)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
