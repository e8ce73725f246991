"""Quiet imports and calls of third-party packages whose import-time chatter would land in
notebook outputs (and break exact-output regression checks)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def import_squidpy() -> Any:
    """``import squidpy``, without docrep's import-time ``SyntaxWarning``s."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        import squidpy

    return squidpy


@contextmanager
def quiet_spatialdata() -> Iterator[None]:
    """Silence squidpy/spatialdata INFO log lines (e.g. "Creating graph using ...")."""
    # spatialdata logs through its own "spatialdata._logging" logger (a rich handler, no propagation)
    loggers = [logging.getLogger(n) for n in ("spatialdata", "spatialdata._logging")]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, old):
            lg.setLevel(level)
