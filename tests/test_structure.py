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


def code_lines(source: str) -> int:
    """Lines of a module without its docstrings (the numpydoc sections of the API reference grow
    a module's text, not its code)."""
    doc = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                doc.update(range(first.lineno, first.end_lineno + 1))
    return len(source.splitlines()) - len(doc)


def test_no_module_over_the_size_limit():
    long = {str(p.relative_to(ROOT)): n for p in ROOT.rglob("*.py") if (n := code_lines(p.read_text())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines of code: {long}"
    assert code_lines('"""Doc.\n\nMore."""\n\ndef f():\n    """One."""\n    return 1\n') == 3


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
    """Circles of imports between the modules of ``files``, at any depth (an import inside a
    function ties two modules as much as one at the top): Tarjan's strongly connected components
    of more than one module."""
    graph: dict[str, set[str]] = {m: set() for m in files}
    for module, source in files.items():
        for node in ast.walk(ast.parse(source)):
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
               "stlib.d": "def f():\n    from stlib import e\n", "stlib.e": "def g():\n    import stlib.d\n",
               "stlib.f": "from stlib import a\n"}
    assert import_circles(planted) == [["stlib.a", "stlib.b", "stlib.c"], ["stlib.d", "stlib.e"]]


# ---------------------------------------------------------------- the API reference
def _api_modules() -> list[str]:
    """The modules whose members the API page documents (``automodule`` in book/api.md)."""
    import re

    text = (ROOT.parent / "book" / "api.md").read_text()
    return re.findall(r"^\.\. automodule:: (\S+)", text, flags=re.M)


def _documented_members(name: str) -> list[tuple[str, object]]:
    """What ``automodule :members:`` shows of a module: ``__all__`` or its own public names, and the
    public methods a class defines itself (an override of a base class's method is the base's)."""
    import inspect

    mod = importlib.import_module(name)
    names = getattr(mod, "__all__", None) or [n for n in dir(mod) if not n.startswith("_")
                                                and getattr(getattr(mod, n), "__module__", None) == name]
    out = []
    for n in names:
        obj = getattr(mod, n)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            out.append((f"{name}.{n}", obj))
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            out += [(f"{name}.{n}.{k}", v) for k, v in vars(obj).items()
                    if inspect.isfunction(v) and not k.startswith("_") and not any(hasattr(b, k) for b in obj.__mro__[1:])]
    return out


def undocumented(members: list[tuple[str, object]]) -> list[str]:
    """Members whose numpydoc docstring lacks ``Parameters`` (when they take any) or ``Returns``
    (functions that return something; generators: ``Yields``)."""
    import inspect

    bad = []
    for name, obj in members:
        doc = inspect.getdoc(obj) or ""
        try:
            sig = inspect.signature(obj)
        except (TypeError, ValueError):
            continue
        params = [p for p in sig.parameters if p not in ("self", "cls")]
        if params and "Parameters\n----------" not in doc:
            bad.append(f"{name}: no Parameters")
        returns = str(sig.return_annotation) not in ("None",)
        if inspect.isfunction(obj) and returns and not any(f"{h}\n------" in doc for h in ("Returns", "Yields")):
            bad.append(f"{name}: no Returns")
    return bad


def test_every_function_on_the_api_page_documents_parameters_and_returns():
    members = [m for name in _api_modules() for m in _documented_members(name)]
    assert len(members) > 150, len(members)
    bad = undocumented(members)
    assert not bad, f"{len(bad)} of {len(members)}: {bad}"


def test_the_docstring_check_finds_a_missing_section():
    def documented(a: int) -> int:
        """Twice.

        Parameters
        ----------
        a
            A number.

        Returns
        -------
        int
            ``2 * a``.
        """
        return 2 * a

    def bare(a: int) -> int:
        """Twice."""
        return 2 * a

    assert undocumented([("documented", documented), ("bare", bare)]) == ["bare: no Parameters", "bare: no Returns"]


def test_masks_of_splits_and_sections_are_built_only_in_get():
    """``stlib.get`` is the one place that turns ``obs["split"]`` / ``obs["section"]`` into masks."""
    import re

    pattern = re.compile(r"obs\[[^]]+\](\.astype\(str\))?( *(==|!=)|\.isin\()")
    files = [p for p in ROOT.rglob("*.py") if p.name != "get.py"]
    files += sorted((ROOT.parent / "notebooks").glob("[0-9][0-9]_*.py"))
    found = [f"{p.name}:{i}" for p in files for i, line in enumerate(p.read_text().splitlines(), 1)
             if pattern.search(line)]
    assert not found, found
    assert pattern.search('m = (adata.obs["split"] == "train").to_numpy()')


def test_models_check_their_inputs_in_one_place():
    """Every model reads its arrays through ``stlib.models._base``'s checks: no other module of
    ``stlib.models`` raises its own error about non-finite input or defines its own matrix check."""
    import re

    own = []
    for p in sorted((ROOT / "models").glob("*.py")):
        if p.name == "_base.py":
            continue
        own += [f"{p.name}:{i}" for i, line in enumerate(p.read_text().splitlines(), 1)
                if re.search(r"DataError\(.*non-finite|def check_matrix", line)]
    assert not own, own


def test_leak_labels_have_one_source():
    """Every leak's label and record is written in ``stlib._leaks`` and nowhere else."""
    from stlib import _leaks
    from stlib.book import protocol

    phrases = [*_leaks.LABELS.values(), *_leaks.RECORDS.values(), "\"LEAK:"]
    found = [f"{p.relative_to(ROOT)}: {x!r}" for p in ROOT.rglob("*.py") if p.name != "_leaks.py"
             for x in phrases if x in p.read_text()]
    assert not found, found
    assert protocol.PAPER.leaks() == list(_leaks.LABELS.values()) and protocol.SOUND.leaks() == []
    assert protocol.SOUND.leaks(refit=True) == [_leaks.LABELS["refit"]]
