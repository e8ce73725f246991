"""Formatting numbers for reading: rounding tables for exact-output checks, values with intervals."""

from __future__ import annotations

import math

import pandas as pd


def show(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Round a metric table for printing (exact-output regression checks compare text)."""
    out = table.copy()
    for c in out.columns:
        if pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].astype(float).round(digits) + 0.0  # + 0.0: no "-0.000" for a small negative
    return out


def interval_decimals(lo: float, hi: float, *, most: int = 4) -> int:
    """Decimal places that an interval ``[lo, hi]`` supports: two significant digits of its width
    (``[0.015, 0.040]``: 3; ``[-1584, -165]``: 0), between 0 and ``most``.

    Parameters
    ----------
    lo, hi
        The interval's ends.
    most
        The most places given (for a near-zero width).

    Returns
    -------
    int
        Decimal places.
    """
    import math

    width = abs(float(hi) - float(lo))
    if not math.isfinite(width) or width == 0:
        return most
    return int(min(most, max(0, math.ceil(-math.log10(width)) + 1)))


def _fixed(x: float, d: int) -> str:
    """``x`` with ``d`` decimals, a value that rounds to zero without its sign (``"0.000"``, not ``"-0.000"``)."""
    text = f"{x:.{d}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def with_interval(point: pd.Series | float, lo: pd.Series | float, hi: pd.Series | float, digits: int | None = None):
    """``"0.123 [0.100, 0.150]"`` (elementwise for Series): a value and its interval, for reading.

    ``digits=None`` gives each value the places its interval supports (:func:`interval_decimals`),
    so no more digits are printed than the interval allows, and a bound that would print as 0 one
    more place or more (up to 6), so that the side of zero it lies on shows; values of 100,000 or more are written
    with as many significant digits as the interval's width supports (``"3.4e+13 [2.1e+13, 4.4e+13]"``).
    """
    def one(p, a, b):
        if pd.isna(p):
            return "n/a"
        if pd.isna(a) or pd.isna(b):
            return f"{p:.{3 if digits is None else digits}f} [n/a]"
        big = max(abs(p), abs(a), abs(b))
        if big >= 1e5:  # significant digits down to two of the width's
            width = abs(b - a)
            k = 3 if width == 0 else int(min(6, max(2, math.floor(math.log10(big)) - math.floor(math.log10(width)) + 2)))
            return f"{p:.{k}g} [{a:.{k}g}, {b:.{k}g}]"
        d = (3 if a == b else interval_decimals(a, b)) if digits is None else digits  # no spread: no extra places
        # a bound that would print as 0 is given the places that show its side of zero (up to 6): whether an
        # interval excludes zero is what a reader reads off it
        while digits is None and d < 6 and any(v != 0 and round(v, d) == 0 for v in (a, b)):
            d += 1
        return f"{_fixed(p, d)} [{_fixed(a, d)}, {_fixed(b, d)}]"
    if isinstance(point, pd.Series):
        return pd.Series([one(p, a, b) for p, a, b in zip(point, lo, hi)], index=point.index)
    return one(point, lo, hi)
