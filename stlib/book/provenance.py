"""Where a chapter's numbers come from: the code's commit, when it ran, on which data, with
which weights and which environment.

Every chapter ends with :func:`show`, which the executed notebook keeps as a small block:

.. code-block:: python

    from stlib.book import provenance
    provenance.show(results_dir, "08_table")

Everything is read from the run itself (``config.json`` of the run, the data set's manifest,
the weights file the backbone loaded, the lock file, ``git``), never typed. The block changes
with every execution, so its cell is tagged ``nbval-ignore-output``; its links download the
chapter as the executed ``.ipynb`` and as its jupytext ``.py`` source.
"""

from __future__ import annotations

import datetime as _dt
import html
import os
import platform
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from stlib import _kernels
from stlib.im import weights_file
from stlib.io.registry import load_dataset
from stlib._utils import project_root, sha256_file
from stlib.book.store import read_config, resolve

#: The folders whose state decides what a chapter computes; a change there since the commit
#: is reported as local changes.
CODE_PATHS = ("stlib", "notebooks", "data", "requirements.lock")


@dataclass(frozen=True)
class Provenance:
    """What produced a chapter's outputs."""

    commit: str
    """Full hex id of ``HEAD``, or ``"unknown"`` outside a git checkout."""
    local_changes: bool | None
    """Whether :data:`CODE_PATHS` differ from the commit (``None``: unknown)."""
    executed: str
    """UTC time of execution, ISO 8601 to the second."""
    dataset: str
    manifest: str
    """The data set's manifest, relative to the project."""
    manifest_sha256: str
    backbone: str | None
    """``None`` before the run has embedded any image (chapter 1)."""
    weights: str
    """``"imagenet"``, ``"none"`` (random initialisation) or a file name."""
    weights_file: str | None
    weights_sha256: str | None
    """``None`` for random initialisation; ``"missing"`` if the file is not where Keras looks."""
    lock_sha256: str
    python: str
    stlib_version: str
    machine: dict[str, Any] | None = None
    """The CPU and the numerical kernels in force (:func:`stlib._kernels.in_force`): CPU model,
    cores, OpenBLAS kernel and threads, numpy's instruction set, oneDNN's cap, TensorFlow's
    threads, and whether the book's pins held."""

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON)."""
        return asdict(self)


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


def collect(results_dir: str | os.PathLike[str], *, now: _dt.datetime | None = None,
            dataset: str | None = None) -> Provenance:
    """The provenance of a run's outputs, read from the run and the files it used.

    Parameters
    ----------
    results_dir
        The run's results folder (its ``config.json`` names the data set, backbone and weights).
    now
        Execution time (default: the current UTC time).
    dataset
        The data set the chapter read, when not the run's (default: the run's, from ``config.json``).
    """
    import stlib

    root = project_root()
    cfg = read_config(resolve(results_dir))
    ds = load_dataset(dataset or cfg["dataset"])
    backbone = cfg.get("backbone")  # absent before chapter 2 has embedded the images
    weights = cfg.get("weights", "imagenet")
    wfile = weights_file(str(backbone), weights) if backbone else None
    if wfile is None:
        w_name, w_sha = None, None
    else:
        w_name, w_sha = wfile.name, (sha256_file(wfile) if wfile.is_file() else "missing")
    commit = _git(root, "rev-parse", "HEAD")
    status = _git(root, "status", "--porcelain", "--", *CODE_PATHS) if commit else None
    lock = root / "requirements.lock"
    when = (now or _dt.datetime.now(_dt.timezone.utc)).astimezone(_dt.timezone.utc)
    return Provenance(
        commit=commit or "unknown",
        local_changes=None if status is None else bool(status),
        executed=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        dataset=ds.name,
        manifest=_relative(ds.manifest_path, root),
        manifest_sha256=sha256_file(ds.manifest_path),
        backbone=str(backbone) if backbone else None,
        weights="none" if wfile is None else str(weights if weights == "imagenet" else wfile.name),
        weights_file=w_name,
        weights_sha256=w_sha,
        lock_sha256=sha256_file(lock) if lock.is_file() else "missing",
        python=platform.python_version(),
        stlib_version=stlib.__version__,
        machine={**_kernels.in_force(), "mismatches": _kernels.mismatches()},
    )


def _short(sha: str | None, n: int = 12) -> str:
    """A hash cut to ``n`` characters in a ``<code>`` whose title holds the full value."""
    if sha is None:
        return "&ndash;"
    if len(sha) < 40:  # "unknown", "missing"
        return html.escape(sha)
    return f'<code title="{html.escape(sha)}">{html.escape(sha[:n])}</code>'


def to_html(prov: Provenance, chapter: str | None = None) -> str:
    """A small admonition (Sphinx's ``admonition`` classes, so the book theme styles it)."""
    if prov.local_changes:
        code = f"{_short(prov.commit)} with local changes to {', '.join(CODE_PATHS)}"
    else:
        code = _short(prov.commit)
    if prov.backbone is None:
        backbone = "none yet: chapter 2 embeds the images"
    elif prov.weights_sha256 is None:
        backbone = f"<code>{html.escape(prov.backbone)}</code>, random initialisation (no weights file)"
    else:
        backbone = (f"<code>{html.escape(prov.backbone)}</code>, {html.escape(prov.weights)}, "
                    f"<code>{html.escape(str(prov.weights_file))}</code> sha256 {_short(prov.weights_sha256)}")
    rows = [
        ("Code", f"commit {code}, <code>stlib</code> {html.escape(prov.stlib_version)}, Python {html.escape(prov.python)}"),
        ("Executed", html.escape(prov.executed.replace("T", " ").replace("Z", " UTC"))),
        ("Data", f"<code>{html.escape(prov.dataset)}</code>, manifest <code>{html.escape(prov.manifest)}</code> sha256 {_short(prov.manifest_sha256)}"),
        ("Backbone", backbone),
        ("Environment", f"<code>requirements.lock</code> sha256 {_short(prov.lock_sha256)}"),
    ]
    if prov.machine:
        rows.append(("Machine", machine_text(prov.machine)))
    if chapter:
        rows.append(("Download", (
            f'<a href="../../_sources/book/notebooks/{html.escape(chapter)}.ipynb" download>{html.escape(chapter)}.ipynb</a> (executed) &middot; '
            f'<a href="{html.escape(chapter)}.py" download>{html.escape(chapter)}.py</a> (jupytext source)'
        )))
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return (
        '<div class="admonition note stlib-provenance">'
        '<p class="admonition-title">Provenance of this page</p>'
        f'<table class="stlib-provenance-table" style="font-size: 0.85em">{body}</table></div>'
    )


def machine_text(m: dict[str, Any]) -> str:
    """One line (HTML-escaped) of the CPU and the kernels in force, and whether the book's pins held."""
    blas = "; ".join(f"OpenBLAS {b['kernel']} kernel, {b['threads']} thread{'s' * (b['threads'] != 1)}"
                     for b in {(b["kernel"], b["threads"]): b for b in m.get("blas", [])}.values())
    tf = m.get("tf_threads")
    tf_text = "" if tf is None else (
        ", TensorFlow " + ("one thread per core" if tf["intra_op"] == 0 else f"{tf['intra_op']} intra-op threads"))
    onednn = m.get("onednn", {})
    parts = [
        f"{m.get('cpu', '?')} ({m.get('machine', '?')}, {m.get('cores', '?')} cores)",
        blas or "no OpenBLAS loaded",
        f"numpy up to {m.get('numpy_simd', '?')}",
        (f"oneDNN {'on' if onednn.get('on') else 'off'}, instruction sets up to {onednn.get('max_isa', '?')}" + tf_text),
    ]
    if not m.get("pinned"):
        parts.append("the machine's own kernels (STLIB_KERNELS=native): the stored outputs may not reproduce")
    elif m.get("mismatches"):
        parts.append("kernels differ from the book's pins: " + "; ".join(m["mismatches"]))
    else:
        parts.append("the book's pinned kernels (stlib/_kernels.py)")
    return html.escape(" &middot; ".join(parts)).replace("&amp;middot;", "&middot;")


def to_text(prov: Provenance) -> str:
    """Plain-text form (the notebook's ``text/plain`` output)."""
    return "\n".join(f"{k}: {v}" for k, v in prov.as_dict().items())


class _Block:
    """An object that Jupyter shows as HTML (and as text where HTML is not shown)."""

    def __init__(self, prov: Provenance, chapter: str | None) -> None:
        self.prov, self.chapter = prov, chapter

    def _repr_html_(self) -> str:
        return to_html(self.prov, self.chapter)

    def __repr__(self) -> str:
        return to_text(self.prov)


def show(results_dir: str | os.PathLike[str], chapter: str | None = None, *, dataset: str | None = None) -> _Block:
    """The provenance block of a chapter; the last expression of a cell, so Jupyter displays it.

    ``chapter`` is the notebook's file stem (``"08_table"``); it names the downloads. ``dataset``:
    the data set the chapter read itself, when it is not the run's (chapter 12's three patients).
    """
    return _Block(collect(results_dir, dataset=dataset), chapter)
