"""The command line: listing, fetching (verified) and summarising a data set."""

from __future__ import annotations

import pytest

from stlib.cli import main


def test_datasets_lists_the_registry(capsys) -> None:
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("her2st-demo", "her2st", "he2020"):
        assert name in out
    assert "23 patients" in out


def test_unknown_dataset_is_a_clear_error(capsys) -> None:
    assert main(["fetch", "no-such-set"]) == 2
    assert "no such data set" in capsys.readouterr().err


@pytest.mark.realdata
def test_summary_of_one_real_section(demo, monkeypatch, capsys) -> None:
    from tests.conftest import demo_mirror

    monkeypatch.setenv("STLIB_DATA_MIRROR", str(demo_mirror()))
    assert main(["summary", "her2st-demo", "--sections", "B4", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "B4" in out and "283" in out and "15289" in out
