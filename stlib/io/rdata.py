"""A small reader of R's serialisation format (``saveRDS``, XDR, versions 2 and 3), enough for the
HER2ST web app's ``app/data/dims.list`` and ``imdims.list`` (lists of tibbles of integers and
strings), without an R-data package.

Read are: NULL, symbols, pairlists (attributes), character, logical, integer, double and string
vectors, generic lists, and back-references to symbols. Anything else (environments, closures,
ALTREP, byte code) is a :class:`~stlib.errors.DataError` naming the file and the type.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stlib.errors import DataError
from stlib.io._common import PathLikeStr

__all__ = ["RObject", "app_image_dims", "read_rds"]

_NIL, _REF, _SYM, _LIST, _ATTRLIST, _CHAR, _LGL, _INT, _REAL, _STR, _VEC, _EXPR = (
    254, 255, 1, 2, 239, 9, 10, 13, 14, 16, 19, 20)
_NA_INT = -(2**31)


@dataclass
class RObject:
    """An R vector: its type code, its values and its attributes (``names``, ``class``, ...)."""

    rtype: int
    values: list[Any]
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str] | None:
        n = self.attrs.get("names")
        return list(n.values) if isinstance(n, RObject) else None

    def __getitem__(self, key: str | int) -> Any:
        if isinstance(key, str):
            names = self.names or []
            if key not in names:
                raise KeyError(key)
            key = names.index(key)
        return self.values[key]


class _Reader:
    def __init__(self, raw: bytes, where: Path) -> None:
        self.b, self.i, self.where, self.refs = raw, 0, where, []

    def fail(self, problem: str) -> DataError:
        return DataError(self.where, f"R data: {problem} (at byte {self.i})")

    def take(self, n: int) -> bytes:
        if self.i + n > len(self.b):
            raise self.fail("unexpected end of data (truncated file?)")
        out = self.b[self.i:self.i + n]
        self.i += n
        return out

    def int(self) -> int:
        return struct.unpack(">i", self.take(4))[0]

    def length(self) -> int:
        n = self.int()
        if n == -1:
            hi, lo = self.int(), self.int()
            n = (hi << 32) + lo
        if n < 0:
            raise self.fail(f"negative length {n}")
        return n

    def item(self) -> Any:
        flags = self.int()
        t = flags & 0xFF
        has_attr, has_tag = bool(flags & (1 << 9)), bool(flags & (1 << 10))
        if t == _NIL:
            return None
        if t == _REF:
            idx = flags >> 8 or self.int()
            if not 0 < idx <= len(self.refs):
                raise self.fail(f"bad reference {idx}")
            return self.refs[idx - 1]
        if t == _SYM:
            name = self.item()
            self.refs.append(name)
            return name
        if t in (_LIST, _ATTRLIST):
            out: dict[str, Any] = {}
            while t in (_LIST, _ATTRLIST):
                if has_attr:
                    self.item()
                tag = self.item() if has_tag else str(len(out))
                out[str(tag)] = self.item()
                flags = self.int()
                t, has_attr, has_tag = flags & 0xFF, bool(flags & (1 << 9)), bool(flags & (1 << 10))
            if t != _NIL:
                raise self.fail(f"pairlist ends with type {t}")
            return out
        if t == _CHAR:
            n = self.int()
            return None if n == -1 else self.take(n).decode("utf-8", errors="replace")
        if t in (_LGL, _INT):
            n = self.length()
            vals = [None if v == _NA_INT else (bool(v) if t == _LGL else v)
                    for v in struct.unpack(f">{n}i", self.take(4 * n))]
        elif t == _REAL:
            n = self.length()
            vals = list(struct.unpack(f">{n}d", self.take(8 * n)))
        elif t == _STR:
            vals = [self.item() for _ in range(self.length())]
        elif t in (_VEC, _EXPR):
            vals = [self.item() for _ in range(self.length())]
        else:
            raise self.fail(f"unsupported R type {t} (only vectors, lists and attributes are read)")
        attrs = self.item() if has_attr else {}
        return RObject(t, vals, dict(attrs or {}))


def read_rds(path: PathLikeStr) -> Any:
    """Read a (gzipped) XDR R serialisation (``saveRDS``) into :class:`RObject` values."""
    p = Path(path)
    if not p.is_file():
        raise DataError(p, "missing file")
    raw = p.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise DataError(p, f"truncated or corrupt gzip stream ({exc})") from None
    if raw[:2] != b"X\n":
        raise DataError(p, "not an XDR R serialisation (saveRDS) file: no 'X\\n' header")
    r = _Reader(raw, p)
    r.i = 2
    version = r.int()
    r.int(), r.int()  # writer's and minimal R versions
    if version == 3:
        r.take(r.int())  # native encoding
    elif version != 2:
        raise r.fail(f"serialisation version {version} (2 or 3 expected)")
    return r.item()


def app_image_dims(path: PathLikeStr) -> dict[str, tuple[int, int]]:
    """``section -> (width, height)`` from the HER2ST app's ``dims.list`` / ``imdims.list``: a list
    by patient (names ``A``-``H``) of lists by section (names ``1``-``6``) of one-row
    ``magick::image_info`` tibbles (``width``, ``height``)."""
    top = read_rds(path)
    if not isinstance(top, RObject) or top.rtype != _VEC or not top.names:
        raise DataError(path, "expected a named list of patients")
    out: dict[str, tuple[int, int]] = {}
    for patient, per in zip(top.names, top.values):
        if not isinstance(per, RObject) or per.rtype != _VEC:
            raise DataError(path, f"patient {patient}: expected a list of sections")
        labels = per.names or [str(i + 1) for i in range(len(per.values))]
        for label, info in zip(labels, per.values):
            try:
                w, h = info["width"].values[0], info["height"].values[0]
            except (KeyError, TypeError, IndexError, AttributeError):
                raise DataError(path, f"section {patient}{label}: no width / height") from None
            out[f"{patient}{label}"] = (int(w), int(h))
    return out
