"""Models of the paper: GLMs, linear models, a small Keras network and a graph network."""

from __future__ import annotations

from stlib.models._base import ModelResult

__all__ = ["ModelResult"]
