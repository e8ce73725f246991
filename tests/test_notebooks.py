"""The notebooks' parameters cells: papermill passes one value per name to every notebook that
declares it, so a name shared by several notebooks must mean the same thing everywhere."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import jupytext

from stlib.book import protocol
from stlib.book.run import declared_parameters, notebook_sources

ROOT = Path(__file__).resolve().parents[1]


def _params() -> dict[str, dict[str, object]]:
    return {src.stem: declared_parameters(jupytext.read(src)) for src in notebook_sources(ROOT)}


def test_shared_parameter_names_have_one_default() -> None:
    seen: dict[str, dict[str, object]] = defaultdict(dict)
    for nb, params in _params().items():
        for k, v in params.items():
            seen[k][nb] = v
    clashes = {k: v for k, v in seen.items() if len({repr(x) for x in v.values()}) > 1}
    assert not clashes, f"parameters with different defaults in different notebooks: {clashes}"


def test_protocol_parameter_is_a_protocol_and_defaults_to_sound() -> None:
    params = _params()
    users = [nb for nb, p in params.items() if "protocol" in p]
    assert {n[:2] for n in users} >= {"01", "02", "03", "04", "05", "06"}
    for nb in users:
        assert params[nb]["protocol"] == "sound" and protocol.as_protocol(params[nb]["protocol"]).leaks() == []
    assert params["01_preprocessing"]["target_transform"] == "paper"
    assert params["01_preprocessing"]["gene_rule"] == "paper"


def test_executed_notebooks_hold_no_machine_paths() -> None:
    """Outputs are compared exactly on other machines (nbval): no absolute path may be printed."""
    import nbformat

    bad = []
    for nb_path in sorted((ROOT / "book" / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        for i, cell in enumerate(nb.cells):
            for out in cell.get("outputs", []):
                text = out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))
                if "PosixPath(" in text or str(ROOT) in text:
                    bad.append(f"{nb_path.name} cell {i}")
    assert not bad, f"outputs with machine-specific paths: {bad}"


def test_strip_volatile_metadata(tmp_path: Path) -> None:
    """Executed notebooks diff cleanly: no timestamps, ids from positions, the injected
    parameters cell removed from the book (its outputs untouched)."""
    import nbformat

    from stlib.book.run import strip_volatile_metadata

    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"start_time": "x", "end_time": "y", "duration": 1.0, "parameters": {"a": 1}}
    inj = nbformat.v4.new_code_cell("a = 2", metadata={"tags": ["injected-parameters"],
                                                       "papermill": {"start_time": "x", "status": "completed"}})
    inj.outputs = [nbformat.v4.new_output("stream", text="hi\n")]
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), inj, nbformat.v4.new_code_cell("print(a)")]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    strip_volatile_metadata(path)
    out = nbformat.read(path, as_version=4)
    assert [c["id"] for c in out.cells] == ["cell-000", "cell-001", "cell-002"]
    assert "start_time" not in out.metadata["papermill"] and out.metadata["papermill"]["parameters"] == {"a": 1}
    assert out.cells[1].metadata["tags"] == ["injected-parameters", "remove-cell"]
    assert "start_time" not in out.cells[1].metadata["papermill"]
    assert out.cells[1].outputs[0]["text"] == "hi\n"
    strip_volatile_metadata(path)  # idempotent
    assert nbformat.read(path, as_version=4).cells[1].metadata["tags"] == ["injected-parameters", "remove-cell"]


def test_cell_timings(tmp_path: Path) -> None:
    """Per-cell wall seconds come from papermill's durations, code cells only, with their first line."""
    import nbformat

    from stlib.book.run import cell_timings

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# t", metadata={"papermill": {"duration": 9.0}}),
                nbformat.v4.new_code_cell("\n# fit the GLMs\nx = 1", metadata={"papermill": {"duration": 12.345}}),
                nbformat.v4.new_code_cell("y = 2", metadata={"papermill": {}})]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    assert cell_timings(path) == [{"cell": 1, "seconds": 12.35, "source": "# fit the GLMs"}]
