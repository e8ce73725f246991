"""The provenance block every chapter ends with: read from the run, never typed."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import jupytext
import pytest

from stlib.book import provenance
from stlib.book.run import notebook_sources

ROOT = Path(__file__).resolve().parents[1]
NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, git: bool, weights: str = "imagenet") -> Path:
    """A minimal project: _toc.yml, the manifests, a lock and a run's config.json."""
    root = tmp_path / "proj"
    (root / "data").mkdir(parents=True)
    shutil.copytree(ROOT / "data" / "datasets", root / "data" / "datasets")
    (root / "_toc.yml").write_text("root: intro\n")
    (root / "requirements.lock").write_text("numpy==2.4.6\n")
    run = root / "results" / "r"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"dataset": "her2st-demo", "backbone": "mobilenet_v2", "weights": weights}))
    monkeypatch.setenv("STLIB_PROJECT_ROOT", str(root))
    monkeypatch.setenv("STLIB_MANIFESTS", str(root / "data"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    if git:
        env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
        for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "x"]):
            subprocess.run(["git", "-C", str(root), *args], check=True, env={**env, "PATH": "/usr/bin:/bin"})
    return root


def test_collect_reads_the_run_and_its_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _project(tmp_path, monkeypatch, git=True)
    wfile = tmp_path / "keras" / "models" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"
    wfile.parent.mkdir(parents=True)
    wfile.write_bytes(b"weights")
    p = provenance.collect("results/r", now=NOW)
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert p.commit == head and len(head) == 40
    assert p.local_changes is False
    assert p.executed == "2026-01-02T03:04:05Z"
    assert p.dataset == "her2st-demo" and p.manifest == "data/datasets/her2st-demo.yaml"
    assert p.manifest_sha256 == _sha(root / "data" / "datasets" / "her2st-demo.yaml")
    assert p.weights_sha256 == _sha(wfile) and p.weights_file == wfile.name
    assert p.lock_sha256 == _sha(root / "requirements.lock")
    # a change to the code is reported; the commit stays the same
    (root / "requirements.lock").write_text("numpy==2.4.7\n")
    p2 = provenance.collect("results/r", now=NOW)
    assert p2.local_changes is True and p2.commit == head and p2.lock_sha256 != p.lock_sha256


def test_collect_outside_git_and_without_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _project(tmp_path, monkeypatch, git=False)
    p = provenance.collect("results/r", now=NOW)
    assert p.commit == "unknown" and p.local_changes is None
    assert p.weights_sha256 == "missing"  # imagenet weights not where Keras looks: said, not hidden
    html = provenance.to_html(p)
    assert "missing" in html and "unknown" in html


def test_random_initialisation_has_no_weights_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _project(tmp_path, monkeypatch, git=False, weights="none")
    p = provenance.collect("results/r", now=NOW)
    assert p.weights == "none" and p.weights_file is None and p.weights_sha256 is None
    assert "random initialisation" in provenance.to_html(p)


def test_html_block_names_every_item(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _project(tmp_path, monkeypatch, git=True)
    p = provenance.collect("results/r", now=NOW)
    html = provenance.to_html(p, "08_table")
    for needle in (p.commit[:12], p.commit, "2026-01-02 03:04:05 UTC", "her2st-demo", p.manifest_sha256[:12],
                   "mobilenet_v2", "requirements.lock", p.lock_sha256[:12], 'class="admonition note',
                   'href="../../_sources/book/notebooks/08_table.ipynb"', 'href="08_table.py"'):
        assert needle in html, needle
    assert str(tmp_path) not in html  # no machine path on the page
    block = provenance.show("results/r", "08_table")
    assert "commit: " in repr(block) and "stlib-provenance" in block._repr_html_()


def test_every_chapter_ends_with_its_provenance_block() -> None:
    for src in notebook_sources(ROOT):
        last = [c for c in jupytext.read(src).cells if c.cell_type == "code"][-1]
        assert f'provenance.show(results_dir, "{src.stem}"' in last.source, src.name
        tags = last.metadata.get("tags", [])
        assert "nbval-ignore-output" in tags and "remove-input" in tags, (src.name, tags)


def test_a_chapter_names_the_data_set_it_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chapter 12 reads its own data set (three patients): its block names that one, not the run's."""
    root = _project(tmp_path, monkeypatch, git=False)
    (root / "results" / "r" / "config.json").write_text(json.dumps({"dataset": "her2st-demo"}))
    assert provenance.collect("results/r", now=NOW).dataset == "her2st-demo"
    assert provenance.collect("results/r", now=NOW, dataset="her2st-abc").dataset == "her2st-abc"


def test_first_chapter_has_no_backbone_yet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chapter 1 runs before any embedding: its config has no backbone (a fresh CI run)."""
    root = _project(tmp_path, monkeypatch, git=False)
    (root / "results" / "r" / "config.json").write_text(json.dumps({"dataset": "her2st-demo"}))
    p = provenance.collect("results/r", now=NOW)
    assert p.backbone is None and p.weights_sha256 is None
    assert "none yet" in provenance.to_html(p)


def test_fresh_config_forgets_an_earlier_run(tmp_path: Path) -> None:
    from stlib.book import store

    store.write_config(tmp_path, {"dataset": "a", "backbone": "resnet50"})
    store.write_config(tmp_path, {"window": 224})
    assert store.read_config(tmp_path) == {"dataset": "a", "backbone": "resnet50", "window": 224}
    store.write_config(tmp_path, {"dataset": "b"}, fresh=True)
    assert store.read_config(tmp_path) == {"dataset": "b"}
