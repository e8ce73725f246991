"""The package's layout: a small public face over private modules, each module a readable size."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import stlib

ROOT = Path(stlib.__file__).resolve().parent
MAX_LINES = 450


def test_public_submodules_import_lazily_and_completely():
    for name in stlib.SUBMODULES:
        mod = getattr(stlib, name)
        assert mod is importlib.import_module(f"stlib.{name}")
    try:
        stlib.nope  # noqa: B018
    except AttributeError as exc:
        assert "no attribute 'nope'" in str(exc)
    else:
        raise AssertionError("an unknown attribute must raise AttributeError")


def test_no_module_over_the_size_limit():
    long = {str(p.relative_to(ROOT)): n for p in ROOT.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_notebooks_use_only_public_modules():
    """Notebooks import ``stlib`` and its public submodules, never a private ``_module``."""
    private = []
    for nb in sorted((ROOT.parent / "notebooks").glob("[0-9][0-9]_*.py")):
        for node in ast.walk(ast.parse(nb.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("stlib"):
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
                private += [f"{nb.name}: {n}" for n in names if any(part.startswith("_") for part in n.split("."))]
    assert not private, private


def test_one_home_for_shared_constants():
    """SPLITS, the project paths and file hashing are defined once (stlib._utils)."""
    defs = {}
    for p in ROOT.rglob("*.py"):
        for node in ast.parse(p.read_text()).body:
            names = []
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names = [node.target.id]
            for n in names:
                defs.setdefault(n, []).append(str(p.relative_to(ROOT)))
    for name in ("SPLITS", "project_root", "project_data_dir", "sha256_file", "dense"):
        assert defs.get(name) == ["_utils.py"], (name, defs.get(name))
    for name in ("read_image", "image_size", "check_jpeg"):
        assert defs.get(name) == ["io/images.py"], (name, defs.get(name))
