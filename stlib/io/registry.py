"""Data-set registry: manifests in ``data/datasets/*.yaml``, verified downloads, splits.

A manifest names the reader, the public origin (pinned to a commit or DOI), the sections with
their patient and subtype, every file with its sha256 where known, and the split file. A file's
entry is its sha256 (or null), or a mapping ``{sha256: ..., git_blob: ...}``: the git blob id
verifies a file of a git repository whose sha256 is not known offline (:mod:`stlib.io.fetch`).

Fetching (mirror, download cache, archives) is :mod:`stlib.io.fetch`; split files are
:mod:`stlib.io.splits`; each reader module (:mod:`stlib.io.her2st`, :mod:`stlib.io.he2020`)
knows its own folder layout; :mod:`stlib.io.spots` reads your own sections, each of whose files
the manifest names, and :mod:`stlib.io.visium` Space Ranger outputs (through squidpy) (``origin: local``: the files are beside the manifest). A data set may leave ``sections`` empty and name
``sections_from`` (e.g. ``metadata.csv``): its sections are then discovered from the fetched
files at read time, and its ``patients:`` table (patient -> subtype) is checked against them.
:mod:`stlib.io.hest` reads HEST-1k samples (``st/<id>.h5ad``, ``wsis/<id>.tif``, ``metadata/<id>.json``).

A manifest may group its sections into ``subsets`` (each section's ``subset``): ``<name>:<subset>``
(e.g. ``hest:her2st``) loads the data set restricted to one of them, with the rows of its split
file that belong to it (the file is still checked whole).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import pandas as pd
import yaml

from stlib._utils import SPLITS, project_data_dir
from stlib.errors import DataError, SplitError
from stlib.io import fetch, he2020, her2st, hest, spots, visium
from stlib.io._common import PathLikeStr
from stlib.io._manifest import Manifest
from stlib.io.splits import read_split

ENV_MIRROR, ENV_DATA_DIR = fetch.ENV_MIRROR, fetch.ENV_DATA_DIR


def available_datasets() -> list[str]:
    """Names of the registered data sets.

    Returns
    -------
    list of str
        The stems of ``data/datasets/*.yaml``, sorted; each is accepted by :func:`load_dataset`.
    """
    return sorted(p.stem for p in (project_data_dir() / "datasets").glob("*.yaml"))


class Dataset(Manifest):
    """A registered data set: its manifest (:class:`~stlib.io._manifest.Manifest`), and what can be done
    with it (fetch, split, read).

    Built by :func:`load_dataset` from a manifest file.

    Parameters
    ----------
    name
        The data set's name; also the folder of its download cache.
    reader
        The reader of its folder layout: ``"her2st"``, ``"he2020"``, ``"spots"``, ``"visium"`` or ``"hest"``.
    origin
        Where the files come from: a URL (a file is ``<origin>/<path>``), or ``local``, ``.`` or a
        folder (relative to the manifest) whose files are used in place.
    sections
        Section -> its metadata (``patient``, ``subtype``, ...); empty when the sections are
        discovered at read time (``sections_from``).
    files
        Path relative to the data-set root -> its sha256, or ``None`` when unknown.
    split_file
        The split file, or ``None``.
    mirror_subdir
        The data set's folder under ``$STLIB_DATA_MIRROR``.
    manifest_path
        The manifest file (named in errors; a local origin is relative to its folder).
    split_policy
        Split rules, e.g. ``{"allow_train_valid_patient_overlap": True}``.
    extra
        The manifest's other keys (e.g. ``geometry``, ``images_note``, ``section_files``).
    archive
        ``{url, fname, sha256, marker}`` of a data set fetched as one zip archive, or ``None``.
    patients
        Patient -> its metadata (``subtype``), checked against the sections found at read time.
    sections_from
        The file the sections are discovered from at read time (e.g. ``metadata.csv``), or ``None``.
    git_blobs
        Path -> git blob id, verifying a file whose sha256 is not known.
    """

    # -- files -------------------------------------------------------------------------------
    def mirror_root(self) -> Path | None:
        """The mirror folder of this data set, if ``$STLIB_DATA_MIRROR`` is set (:mod:`stlib.io.fetch`).

        Returns
        -------
        Path or None
            ``$STLIB_DATA_MIRROR/<mirror_subdir>`` (whether or not it exists), or ``None`` when the
            variable is not set.
        """
        return fetch.mirror_root(self)

    def cache_root(self) -> Path:
        """Download cache of this data set (:mod:`stlib.io.fetch`).

        Returns
        -------
        Path
            ``$STLIB_DATA_DIR/<name>``, or ``<name>`` in pooch's user cache folder for ``stlib``
            when the variable is not set; not created here.
        """
        return fetch.cache_root(self)

    def fetch(self, *, progress: bool = True, files: Sequence[str] | None = None) -> Path:
        """Make the files available locally, verified; the data-set root (:func:`stlib.io.fetch.fetch`).

        Parameters
        ----------
        progress
            Show progress bars while verifying and downloading.
        files
            Manifest paths to fetch (e.g. ``files_for(sections)``); default every file. Ignored for
            a data set fetched as one archive.

        Returns
        -------
        Path
            The data-set root: the local origin's folder, the mirror folder (when it holds every
            file wanted) or the download cache (mirror files linked into it). A checksum mismatch
            is a :class:`~stlib.errors.ChecksumError`.
        """
        return fetch.fetch(self, progress=progress, files=files)

    def discover_sections(self, root: Path) -> dict[str, dict[str, Any]]:
        """Fill :attr:`sections` from the fetched files (``sections_from``), checked against ``patients``.

        Parameters
        ----------
        root
            The fetched data-set root (:meth:`fetch`).

        Returns
        -------
        dict
            Section -> its metadata (for ``he2020``: ``patient``, ``subtype``, ``replicate``), also
            stored as :attr:`sections`. A reader that cannot discover sections, a patient not in
            ``patients`` or a subtype that disagrees with it is a :class:`~stlib.errors.DataError`.
        """
        discover = SECTION_DISCOVERY.get(self.reader)
        if discover is None:
            raise DataError(self.manifest_path, f"reader {self.reader!r} cannot discover sections; list them")
        found = discover(root)
        if self.patients:
            for sec, meta in found.items():
                p = str(meta.get("patient"))
                if p not in self.patients:
                    raise DataError(root, f"section {sec}: patient {p} is not in the manifest's patients "
                                          f"({self.manifest_path.name}); another release of the data?")
                want = self.patients[p].get("subtype")
                if want is not None and str(meta.get("subtype")) != str(want):
                    raise DataError(root, f"section {sec}: subtype {meta.get('subtype')!r} of patient {p} "
                                          f"disagrees with the manifest ({want!r})")
        self.sections = found
        return found

    # -- reading -----------------------------------------------------------------------------
    def split(self) -> pd.DataFrame:
        """The split table, validated: ``section, patient, split`` (patient-level files are
        expanded to the sections; before sections are known they stay per patient).

        Returns
        -------
        DataFrame
            :func:`~stlib.io.read_split` of :attr:`split_file`, with the manifest's
            ``split_policy``; for a data set with ``sections_from``, rows of sections not present
            are left out with a warning. No split file is a :class:`~stlib.errors.SplitError`.
        """
        if self.split_file is None:
            raise SplitError(f"{self.manifest_path}: no split file registered")
        subset = self.extra.get("subset")
        if subset:  # one subset of a manifest: its split file is checked whole, then restricted
            whole = dataclasses.replace(self, sections=subset["all_sections"], extra={})
            df = whole.split()
            return df[df["section"].isin(list(self.sections))].reset_index(drop=True)
        return read_split(self.split_file, self, allow_train_valid_overlap=bool(
            self.split_policy.get("allow_train_valid_patient_overlap", False)), absent_ok=bool(self.sections_from))

    def read(self, sections: Sequence[str] | None = None, *, progress: bool = True) -> ad.AnnData:
        """Fetch, verify and read the data set (or some sections) into one AnnData.

        Only the files of the requested sections are fetched. ``obs["split"]`` is added from
        the split file when there is one.

        Parameters
        ----------
        sections
            Section ids to read; default every section. A data set whose sections are discovered
            at read time (``sections_from``) is fetched whole first. An unknown id is a
            :class:`~stlib.errors.SplitError`.
        progress
            Show progress bars while fetching and verifying.

        Returns
        -------
        AnnData
            What the data set's reader returns (raw counts in ``X``, ``obs``, ``obsm["spatial"]``,
            ``uns["spatial"]``, ``uns["load_report"]``), plus ``obs["split"]`` (categorical
            train / valid / test; missing for a section the split does not list) and
            ``uns["dataset"] = {"name", "origin", "manifest"}``.
        """
        root: Path | None = None
        if not self.sections and self.sections_from:
            root = self.fetch(progress=progress)
            self.discover_sections(root)
        secs = list(sections) if sections is not None else list(self.sections)
        unknown = [s for s in secs if s not in self.sections]
        if unknown:
            raise SplitError(f"{self.manifest_path}: unknown section(s) {unknown}")
        if root is None:
            root = self.fetch(progress=progress, files=self.files_for(secs))
        reader = READERS[self.reader]
        adata = reader(self, root, secs)
        if self.split_file is not None:
            split = self.split()
            if "section" not in split.columns:
                raise SplitError(f"{self.split_file}: sections of {self.name} unknown; cannot expand the split")
            split = split.set_index("section")
            adata.obs["split"] = pd.Categorical(
                adata.obs["section"].astype(str).map(split["split"]), categories=list(SPLITS)
            )
        adata.uns["dataset"] = {"name": self.name, "origin": self.origin, "manifest": self.manifest_path.name}
        return adata


def load_dataset(name_or_path: str | PathLikeStr) -> Dataset:
    """Parse a manifest, by registered name (``"her2st-demo"``) or by path.

    Parameters
    ----------
    name_or_path
        A registered name (no file suffix: ``data/datasets/<name>.yaml``) or the path of a
        manifest file (with its suffix, e.g. ``my_data.yaml``).

    Returns
    -------
    Dataset
        The parsed manifest; its split file is relative to ``data/`` for a registered manifest,
        else to the manifest's folder. A missing file, malformed YAML, a missing key (``name``,
        ``reader``, ``origin``, ``sections``, ``files``), an unknown reader, or neither sections
        nor ``sections_from`` is a :class:`~stlib.errors.DataError`.
    """
    subset = None
    m_sub = re.fullmatch(r"(.+?):([A-Za-z0-9_-]+)", str(name_or_path))
    if m_sub and not Path(str(name_or_path)).is_file():
        name_or_path, subset = m_sub.group(1), m_sub.group(2)
    p = Path(name_or_path)
    if not p.suffix:
        p = project_data_dir() / "datasets" / f"{name_or_path}.yaml"
    if not p.is_file():
        raise DataError(p, f"no such data set; registered: {available_datasets()}")
    try:
        m = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise DataError(p, f"malformed manifest: {exc}") from None
    if not isinstance(m, dict):
        raise DataError(p, "a manifest is a YAML mapping (name, reader, origin, sections, ...)")
    if m.get("reader") in ("spots", "visium", "hest"):  # the files are named per section
        m.setdefault("files", {})
    for key in ("name", "reader", "origin", "sections", "files"):
        if key not in m:
            raise DataError(p, f"manifest lacks '{key}'")
    if m["reader"] not in READERS:
        raise DataError(p, f"unknown reader {m['reader']!r}; known: {sorted(READERS)}")
    split = m.get("split")
    if not m["sections"] and not m.get("sections_from"):
        raise DataError(p, "manifest lists no sections and no 'sections_from'")
    known = {"name", "reader", "origin", "sections", "files", "split", "mirror_subdir", "split_policy",
             "archive", "patients", "sections_from"}
    if subset is not None and not isinstance(m.get("subsets"), dict):
        raise DataError(p, f"no subsets: '{m['name']}:{subset}' names a subset of a manifest without 'subsets'")
    archive = m.get("archive")
    if archive is not None and not isinstance(archive, dict):
        raise DataError(p, "'archive' must be a mapping {url, fname, sha256, marker}")
    if not isinstance(m["sections"] or {}, dict) or not isinstance(m["files"] or {}, dict):
        raise DataError(p, "'sections' and 'files' must be mappings")
    files, git_blobs = _parse_files(p, m["files"] or {})
    extra = {k: v for k, v in m.items() if k not in known}
    if m["reader"] in ("spots", "visium", "hest"):
        for v in (m["sections"] or {}).values():  # "group" is the spots layout's word for subtype
            if isinstance(v, dict) and "group" in v:
                v.setdefault("subtype", v["group"])
        layout = {"spots": spots, "visium": visium, "hest": hest}[m["reader"]]
        listed = layout.section_files(p, {str(k): dict(v or {}) for k, v in (m["sections"] or {}).items()})
        for fs in listed.values():
            for f in fs:
                files.setdefault(f, None)
        extra["section_files"] = listed
    # a registered manifest (data/datasets/) names its split relative to data/; any other
    # manifest (a user's own data set) relative to its own folder
    in_registry = p.resolve().parent == (project_data_dir() / "datasets").resolve()
    split_base = p.parent.parent if in_registry else p.parent
    ds = Dataset(
        name=m["name"],
        reader=m["reader"],
        origin=m["origin"],
        sections={str(k): dict(v or {}) for k, v in (m["sections"] or {}).items()},
        files=files,
        split_file=(split_base / split) if split else None,
        mirror_subdir=m.get("mirror_subdir", m["name"]),
        manifest_path=p,
        split_policy=dict(m.get("split_policy") or {}),
        extra=extra,
        archive=dict(archive) if archive else None,
        patients={str(k): dict(v or {}) for k, v in (m.get("patients") or {}).items()},
        sections_from=m.get("sections_from"),
        git_blobs=git_blobs,
    )
    return ds if subset is None else _restrict(ds, subset)


def _restrict(ds: Dataset, subset: str) -> Dataset:
    """``ds`` restricted to the sections of one of its ``subsets`` (named ``<name>:<subset>``; its
    download cache stays the whole data set's)."""
    known = sorted(ds.extra.get("subsets") or {})
    if subset not in known:
        raise DataError(ds.manifest_path, f"unknown subset {subset!r} of {ds.name}; known: {known}")
    keep = {s: v for s, v in ds.sections.items() if str(v.get("subset")) == subset}
    if not keep:
        raise DataError(ds.manifest_path, f"no section has subset: {subset}")
    listed = ds.extra.get("section_files") or {}
    drop = {f for s, fs in listed.items() if s not in keep for f in fs}
    extra = {**ds.extra, "subset": {"of": ds.name, "name": subset, "all_sections": ds.sections},
             "section_files": {s: fs for s, fs in listed.items() if s in keep}}
    return dataclasses.replace(ds, name=f"{ds.name}:{subset}", sections=keep, extra=extra,
                               files={f: h for f, h in ds.files.items() if f not in drop},
                               git_blobs={f: h for f, h in ds.git_blobs.items() if f not in drop})


_HEX = {"sha256": 64, "git_blob": 40}


def _parse_files(p: Path, entries: dict[Any, Any]) -> tuple[dict[str, str | None], dict[str, str]]:
    """``files:`` -> (path -> sha256 or None, path -> git blob id); an entry is a sha256, null, or
    ``{sha256, git_blob}``."""
    files: dict[str, str | None] = {}
    blobs: dict[str, str] = {}
    for k, v in entries.items():
        if isinstance(v, dict):
            unknown = set(v) - set(_HEX)
            if unknown:
                raise DataError(p, f"file {k}: unknown key(s) {sorted(unknown)}; a file entry is a sha256 or "
                                   "{sha256, git_blob}")
            for key, n in _HEX.items():
                val = v.get(key)
                if val is not None and not re.fullmatch(rf"[0-9a-fA-F]{{{n}}}", str(val)):
                    raise DataError(p, f"file {k}: {key} {val!r} is not {n} hex digits")
            files[str(k)] = str(v["sha256"]).lower() if v.get("sha256") else None
            if v.get("git_blob"):
                blobs[str(k)] = str(v["git_blob"]).lower()
        else:
            files[str(k)] = str(v) if v else None
    return files, blobs


#: Reader name (a manifest's ``reader``) -> ``read(dataset, root, sections)``; each reader
#: module owns its folder layout (``read_from_manifest``).
READERS: dict[str, Callable[[Dataset, Path, Sequence[str]], ad.AnnData]] = {
    "her2st": her2st.read_from_manifest,
    "he2020": he2020.read_from_manifest,
    "spots": spots.read_from_manifest,
    "visium": visium.read_from_manifest,
    "hest": hest.read_from_manifest,
}


#: Readers that can list their sections from the fetched files (manifest ``sections_from``).
SECTION_DISCOVERY: dict[str, Callable[[Path], dict[str, dict[str, Any]]]] = {
    "he2020": he2020.discover_sections,
}

