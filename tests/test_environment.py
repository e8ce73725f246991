"""The pinned environment is consistent: requirements.in, requirements.lock and environment.yml agree."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):
            continue
        assert "==" in line, f"not an exact pin: {line!r}"
        name, ver = line.split("==")
        out[name.strip().lower().replace("_", "-")] = ver.strip()
    return out


def test_top_level_pins_are_exact_and_locked() -> None:
    top = _pins((ROOT / "requirements.in").read_text().splitlines())
    lock = _pins((ROOT / "requirements.lock").read_text().splitlines())
    assert len(top) >= 20
    for name, ver in top.items():
        assert lock.get(name) == ver, f"{name}: requirements.in pins {ver}, the lock has {lock.get(name)}"


def test_environment_yml_agrees_with_pip_pins() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert _pins(pip) == _pins((ROOT / "requirements.in").read_text().splitlines())


def test_jupyter_book_is_1x() -> None:
    lock = _pins((ROOT / "requirements.lock").read_text().splitlines())
    assert lock["jupyter-book"].startswith("1."), "jupyter-book 2.x cannot build HTML offline"


@pytest.mark.parametrize("pkg", ["scanpy", "anndata", "numpy", "pandas", "tensorflow-cpu", "keras", "statsmodels"])
def test_installed_versions_match_lock(pkg: str) -> None:
    lock = _pins((ROOT / "requirements.lock").read_text().splitlines())
    assert version(pkg) == lock[pkg], f"{pkg}: installed {version(pkg)}, locked {lock[pkg]}"
