"""Formatting numbers for reading: rounding tables for exact-output checks, values with intervals."""

from __future__ import annotations

import pandas as pd


def show(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Round a metric table for printing (exact-output regression checks compare text)."""
    out = table.copy()
    for c in out.columns:
        if pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].astype(float).round(digits)
    return out


def with_interval(point: pd.Series | float, lo: pd.Series | float, hi: pd.Series | float, digits: int = 3):
    """``"0.123 [0.100, 0.150]"`` (elementwise for Series): a value and its interval, for reading."""
    def one(p, a, b):
        if pd.isna(p):
            return "n/a"
        return f"{p:.{digits}f} [{a:.{digits}f}, {b:.{digits}f}]"
    if isinstance(point, pd.Series):
        return pd.Series([one(p, a, b) for p, a, b in zip(point, lo, hi)], index=point.index)
    return one(point, lo, hi)
