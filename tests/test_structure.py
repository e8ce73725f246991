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


# ---------------------------------------------------------------- layers and circles
def _layer_of(module: str) -> int | None:
    """The index in ``stlib.LAYERS`` of a dotted ``stlib`` module (None: not a layer of stlib)."""
    parts = module.split(".")
    if parts[0] != "stlib" or len(parts) < 2:
        return None
    for i, layer in enumerate(stlib.LAYERS):
        if parts[1] in layer:
            return i
    raise AssertionError(f"stlib.{parts[1]} is in no layer of stlib.LAYERS")


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def stlib_imports(source: str, module: str) -> list[tuple[int, str]]:
    """``(line, imported module)`` of every ``stlib`` import in ``source``, at any depth (inside
    functions too); ``from stlib import y`` counts as ``stlib.y``, ``from stlib.x import y`` as ``stlib.x``."""
    package = module if module.count(".") == 0 else module.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "stlib"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            if base.split(".")[0] == "stlib":
                out += [(node.lineno, f"{base}.{a.name}" if base == "stlib" else base) for a in node.names]
    return out


def upward_imports(files: dict[str, str]) -> list[str]:
    """Imports that run against ``stlib.LAYERS``: module name -> source in, one line per offence out."""
    bad = []
    for module, source in sorted(files.items()):
        own = _layer_of(module)
        if own is None:
            continue
        for line, target in stlib_imports(source, module):
            theirs = _layer_of(target)
            if theirs is not None and theirs > own:
                bad.append(f"{module}:{line} imports {target} (layer {theirs} above {own})")
    return bad


def import_circles(files: dict[str, str]) -> list[list[str]]:
    """Circles of module-level imports between the modules of ``files`` (Tarjan's strongly
    connected components of more than one module, or a module importing itself)."""
    graph: dict[str, set[str]] = {m: set() for m in files}
    for module, source in files.items():
        for node in ast.parse(source).body:  # module level: what runs at import
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for _, target in stlib_imports(ast.unparse(node), module):
                    while target and target not in files:
                        target = target.rpartition(".")[0]
                    if target and target != module and not module.startswith(target + "."):
                        graph[module].add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles


def _package_sources() -> dict[str, str]:
    return {_module_name(p, ROOT): p.read_text() for p in sorted(ROOT.rglob("*.py"))}


def test_layers_are_written_once_and_cover_the_face():
    names = [n for layer in stlib.LAYERS for n in layer]
    assert len(names) == len(set(names)), "a name in two layers"
    assert set(stlib.SUBMODULES) <= set(names)
    assert len(stlib.SUBMODULES) <= 10, stlib.SUBMODULES
    top = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
           if (p.suffix == ".py" or (p / "__init__.py").is_file()) and p.name != "__init__.py"}
    assert top == set(names), f"not in a layer: {sorted(top - set(names))}; gone: {sorted(set(names) - top)}"


def test_no_module_imports_a_layer_above_its_own():
    """Each layer imports only the layers below it, inside functions too (order: stlib.LAYERS)."""
    assert upward_imports(_package_sources()) == []


def test_the_layer_check_finds_a_planted_upward_import():
    planted = {
        "stlib.io.fake": "def f():\n    from stlib.book import store\n    return store\n",
        "stlib.models.fake": "import stlib.pl\nfrom stlib import tl, book\n",
        "stlib.pl.fake": "from stlib.get import split_masks\nfrom stlib.io import images\n",
    }
    bad = upward_imports({**_package_sources(), **planted})
    assert bad == ["stlib.io.fake:2 imports stlib.book (layer 10 above 1)",
                   "stlib.models.fake:1 imports stlib.pl (layer 8 above 7)",
                   "stlib.models.fake:2 imports stlib.book (layer 10 above 7)"], bad


def test_no_import_circles():
    assert import_circles(_package_sources()) == []


def test_the_circle_check_finds_a_planted_circle():
    planted = {"stlib.a": "from stlib.b import x\n", "stlib.b": "import stlib.c\n", "stlib.c": "from stlib import a\n",
               "stlib.d": "def f():\n    from stlib import a\n"}
    assert import_circles(planted) == [["stlib.a", "stlib.b", "stlib.c"]]
