"""Errors raised by :mod:`stlib` for bad input.

Every error names the file (or section) and the problem, so that a user sees
``DataError: data/ST-cnts/B4.tsv.gz: truncated gzip stream`` instead of a
traceback from deep inside pandas.
"""

from __future__ import annotations

from os import PathLike


class DataError(ValueError):
    """Bad input data: a missing, corrupt or inconsistent file.

    Parameters
    ----------
    where
        The file (or section id) the problem is in.
    problem
        What is wrong, in plain words.
    """

    def __init__(self, where: str | PathLike[str], problem: str) -> None:
        self.where = str(where)
        self.problem = problem
        super().__init__(f"{self.where}: {problem}")


class ChecksumError(DataError):
    """A file whose sha256 differs from the manifest.

    Parameters
    ----------
    where
        The file (or download URL) whose checksum differs.
    problem
        What differs, e.g. the expected and the computed checksum (sha256 or git blob id).
    """


class SplitError(ValueError):
    """An invalid train/valid/test split (unknown section, patient in two parts, ...)."""


class DataWarning(UserWarning):
    """Input that is used, but that a user should hear about: spots off their tissue, an image's
    transparency composited over white, sections of a data set that are not present. The
    ``stlib`` command prints each as one line, ``warning: <file or section>: <problem>``."""
