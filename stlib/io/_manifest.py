"""A data set's manifest as data: its files, sections, patients and split policy."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Manifest:
    """A data set's manifest (``data/datasets/<name>.yaml``), parsed: what :mod:`stlib.io.fetch` and
    :mod:`stlib.io.splits` need to know of a data set (:class:`~stlib.io.registry.Dataset` adds the doing)."""

    name: str
    reader: str
    origin: str
    sections: dict[str, dict[str, Any]]
    files: dict[str, str | None]
    split_file: Path | None
    mirror_subdir: str
    manifest_path: Path
    split_policy: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    archive: dict[str, Any] | None = None
    patients: dict[str, dict[str, Any]] = field(default_factory=dict)
    sections_from: str | None = None
    git_blobs: dict[str, str] = field(default_factory=dict)

    def files_for(self, sections: Sequence[str]) -> list[str]:
        """The manifest files needed for ``sections``.

        A file belongs to a section when a path component starts with the section id followed
        by ``_ - . /`` (``data/ST-cnts/B4.tsv.gz``, ``data/ST-imgs/B/B4/x.jpg``,
        ``B4_selection.tsv``, ``B4-cluster-annotation.tsv.gz``); files that belong to no
        section of the data set (``motivation.csv``) are always needed.
        """
        listed = self.extra.get("section_files")
        if listed:  # reader "spots": each section names its files
            wanted_files = {f for s in sections for f in listed.get(s, [])}
            anyone = {f for fs in listed.values() for f in fs}
            return [f for f in self.files if f in wanted_files or f not in anyone]

        def owners(f: str) -> set[str]:
            return {s for s in self.sections if re.search(rf"(^|/){re.escape(s)}([_\-./]|$)", f)}

        wanted = set(sections)
        return [f for f in self.files if not owners(f) or owners(f) & wanted]

    def patient_subtypes(self) -> dict[str, str | None]:
        """Patient -> subtype from ``patients`` and the sections."""
        out: dict[str, str | None] = {p: (None if v.get("subtype") is None else str(v["subtype"]))
                                      for p, v in self.patients.items()}
        for meta in self.sections.values():
            p = meta.get("patient")
            if p is not None and out.get(str(p)) is None:
                out[str(p)] = None if meta.get("subtype") is None else str(meta["subtype"])
        return out
