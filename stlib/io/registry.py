"""Data-set registry: manifests in ``data/datasets/*.yaml``, verified downloads, splits.

A manifest names the reader, the public origin (pinned to a commit or DOI), the sections with
their patient and subtype, every file with its sha256 where known, and the split file.

Where the files come from, in order of precedence:

1. a local mirror: ``$STLIB_DATA_MIRROR/<mirror_subdir>/<path>`` (CI and the developers'
   machines point this at ``../shared/data``); files are verified against the manifest;
2. the download cache ``$STLIB_DATA_DIR`` (default: pooch's OS cache for ``stlib``), filled
   from the public origin with :func:`pooch.retrieve` (progress bar, checksum verification).

A data set published as one zip (He et al. 2020 on Mendeley Data) has an ``archive:`` entry
instead of per-file checksums: ``{url, fname, sha256 (or null), marker}``. The mirror may then
hold either the extracted tree (``marker`` present) or the zip itself; otherwise the zip is
downloaded and unpacked with :class:`pooch.Unzip`. Such a data set may also leave
``sections`` empty and name ``sections_from`` (e.g. ``metadata.csv``): its sections are then
discovered from the fetched files at read time, and its ``patients:`` table (patient ->
subtype) is checked against them.

Split files are TSV with ``section, patient, split`` or, patient-level, ``patient, split``
(optional ``subtype``): a patient-level file is expanded to the sections of the data set.
Further columns (e.g. ``n_spots``) are kept; lines starting with ``#`` (provenance) are skipped.
"""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anndata as ad
import pandas as pd
import yaml

from stlib.errors import ChecksumError, DataError, SplitError
from stlib._utils import SPLITS, project_data_dir, sha256_file
from stlib.io._common import PathLikeStr

log = logging.getLogger(__name__)

ENV_MIRROR = "STLIB_DATA_MIRROR"
ENV_DATA_DIR = "STLIB_DATA_DIR"


def available_datasets() -> list[str]:
    """Names of the registered data sets."""
    return sorted(p.stem for p in (project_data_dir() / "datasets").glob("*.yaml"))


@dataclass
class Dataset:
    """A registered data set (parsed manifest)."""

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

    def files_for(self, sections: Sequence[str]) -> list[str]:
        """The manifest files needed for ``sections``.

        A file belongs to a section when a path component starts with the section id followed
        by ``_ - . /`` (``data/ST-cnts/B4.tsv.gz``, ``data/ST-imgs/B/B4/x.jpg``,
        ``B4_selection.tsv``, ``B4-cluster-annotation.tsv.gz``); files that belong to no
        section of the data set (``motivation.csv``) are always needed.
        """
        def owners(f: str) -> set[str]:
            return {s for s in self.sections if re.search(rf"(^|/){re.escape(s)}([_\-./]|$)", f)}

        wanted = set(sections)
        return [f for f in self.files if not owners(f) or owners(f) & wanted]

    # -- locations ---------------------------------------------------------------------------
    def mirror_root(self) -> Path | None:
        """The mirror folder of this data set, if ``$STLIB_DATA_MIRROR`` is set."""
        env = os.environ.get(ENV_MIRROR)
        return Path(env).expanduser() / self.mirror_subdir if env else None

    def cache_root(self) -> Path:
        """Download cache of this data set."""
        import pooch

        base = os.environ.get(ENV_DATA_DIR)
        return (Path(base).expanduser() if base else Path(pooch.os_cache("stlib"))) / self.name

    def fetch(self, *, progress: bool = True, files: Sequence[str] | None = None) -> Path:
        """Make every file available locally, verified, and return the data-set root.

        Files in the mirror are used in place; others are downloaded into the cache. A
        checksum mismatch raises :class:`~stlib.errors.ChecksumError` naming the file.
        ``files`` restricts this to some manifest files (see :meth:`files_for`). A data set with
        an ``archive`` is fetched as a whole (see :meth:`_fetch_archive`).
        """
        if self.archive is not None:
            return self._fetch_archive(progress)
        wanted = list(files) if files is not None else list(self.files)
        mirror = self.mirror_root()
        if mirror is not None and mirror.is_dir() and all((mirror / f).is_file() for f in wanted):
            for f in _progress(wanted, progress, f"verify {self.name}"):
                verify_file(mirror / f, self.files.get(f))
            return mirror
        root = self.cache_root()
        for f in _progress(wanted, progress, f"fetch {self.name}"):
            src = mirror / f if mirror is not None else None
            if src is not None and src.is_file():
                verify_file(src, self.files.get(f))
                dest = root / f
                dest.parent.mkdir(parents=True, exist_ok=True)
                if not dest.exists():
                    dest.symlink_to(src.resolve())
                continue
            self._download(f, root, progress)
        return root

    def _download(self, relpath: str, root: Path, progress: bool) -> Path:
        import pooch

        dest = root / relpath
        known = self.files.get(relpath)
        if dest.is_file():
            verify_file(dest, known)
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        url = self.origin.rstrip("/") + "/" + relpath
        try:
            pooch.retrieve(
                url,
                known_hash=f"sha256:{known}" if known else None,
                fname=dest.name,
                path=dest.parent,
                progressbar=progress,
            )
        except ValueError as exc:  # pooch's hash mismatch
            raise ChecksumError(url, f"checksum mismatch after download ({exc})") from None
        except Exception as exc:  # network errors: name the file
            raise DataError(url, f"download failed ({type(exc).__name__}: {exc}); "
                            f"set {ENV_MIRROR} to a local copy to work offline") from None
        return dest

    def _archive_marker_root(self, folder: Path) -> Path | None:
        marker = str((self.archive or {}).get("marker") or "")
        if marker and (folder / marker).is_file():
            return folder
        name = Path(marker).name if marker else None
        if name and (folder / name).is_file():
            return folder
        return None

    def _fetch_archive(self, progress: bool) -> Path:
        """Mirror (extracted tree, or the zip) first, then the cache, then download + unzip."""
        import pooch

        arc = self.archive or {}
        url = str(arc.get("url") or self.origin)
        fname = str(arc.get("fname") or url.rstrip("/").rsplit("/", 1)[-1])
        known = arc.get("sha256") or None
        mirror = self.mirror_root()
        if mirror is not None and mirror.is_dir():
            if self._archive_marker_root(mirror) is not None:
                return mirror
            if (mirror / fname).is_file():
                verify_file(mirror / fname, known)
                dest = self.cache_root() / f"{fname}.unzip"
                if self._archive_marker_root(dest) is None:
                    _unzip(mirror / fname, dest)
                return dest
        root = self.cache_root()
        dest = root / f"{fname}.unzip"
        zpath = root / fname
        if self._archive_marker_root(dest) is not None and (zpath.is_file() or not known):
            if zpath.is_file():
                verify_file(zpath, known)
            return dest
        root.mkdir(parents=True, exist_ok=True)
        try:
            pooch.retrieve(
                url,
                known_hash=f"sha256:{known}" if known else None,
                fname=fname,
                path=root,
                processor=pooch.Unzip(extract_dir=str(dest)),
                progressbar=progress,
            )
        except ValueError as exc:
            raise ChecksumError(url, f"checksum mismatch after download ({exc})") from None
        except Exception as exc:
            raise DataError(url, f"download failed ({type(exc).__name__}: {exc}); "
                            f"set {ENV_MIRROR} to a folder holding {self.mirror_subdir}/{fname} "
                            "or its extracted contents to work offline") from None
        if not known and zpath.is_file():
            log.warning("%s: downloaded %s without a known checksum; its sha256 is %s -- record it as "
                        "archive.sha256 in %s", self.name, fname, sha256_file(zpath), self.manifest_path.name)
        if self._archive_marker_root(dest) is None:
            raise DataError(zpath, f"archive does not contain {arc.get('marker')!r}")
        return dest

    def discover_sections(self, root: Path) -> dict[str, dict[str, Any]]:
        """Fill :attr:`sections` from the fetched files (``sections_from``), checked against ``patients``."""
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
        expanded to the sections; before sections are known they stay per patient)."""
        if self.split_file is None:
            raise SplitError(f"{self.manifest_path}: no split file registered")
        return read_split(self.split_file, self, allow_train_valid_overlap=bool(
            self.split_policy.get("allow_train_valid_patient_overlap", False)))

    def read(self, sections: Sequence[str] | None = None, *, progress: bool = True) -> ad.AnnData:
        """Fetch, verify and read the data set (or some sections) into one AnnData.

        Only the files of the requested sections are fetched. ``obs["split"]`` is added from
        the split file when there is one.
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

    def patient_subtypes(self) -> dict[str, str | None]:
        """Patient -> subtype from ``patients`` and the sections."""
        out: dict[str, str | None] = {p: (None if v.get("subtype") is None else str(v["subtype"]))
                                      for p, v in self.patients.items()}
        for meta in self.sections.values():
            p = meta.get("patient")
            if p is not None and out.get(str(p)) is None:
                out[str(p)] = None if meta.get("subtype") is None else str(meta["subtype"])
        return out


def _unzip(zpath: Path, dest: Path) -> None:
    import pooch

    try:
        pooch.Unzip(extract_dir=str(dest))(str(zpath), "download", None)
    except Exception as exc:  # zipfile.BadZipFile, truncated archives
        raise DataError(zpath, f"cannot unpack the archive ({type(exc).__name__}: {exc})") from None


def _progress(items: Sequence[str], show: bool, desc: str):
    from tqdm import tqdm

    return tqdm(items, desc=desc, disable=not show, leave=False)


def verify_file(path: Path, sha256: str | None) -> None:
    """Check a file exists and, when a checksum is known, that it matches."""
    if not path.is_file():
        raise DataError(path, "missing file")
    if sha256:
        got = sha256_file(path)
        if got != sha256:
            raise ChecksumError(path, f"checksum mismatch: expected sha256 {sha256}, got {got}")


def load_dataset(name_or_path: str | PathLikeStr) -> Dataset:
    """Parse a manifest, by registered name (``"her2st-demo"``) or by path."""
    p = Path(name_or_path)
    if not p.suffix:
        p = project_data_dir() / "datasets" / f"{name_or_path}.yaml"
    if not p.is_file():
        raise DataError(p, f"no such data set; registered: {available_datasets()}")
    try:
        m = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise DataError(p, f"malformed manifest: {exc}") from None
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
    archive = m.get("archive")
    if archive is not None and not isinstance(archive, dict):
        raise DataError(p, "'archive' must be a mapping {url, fname, sha256, marker}")
    return Dataset(
        name=m["name"],
        reader=m["reader"],
        origin=m["origin"],
        sections={str(k): dict(v or {}) for k, v in (m["sections"] or {}).items()},
        files={str(k): (str(v) if v else None) for k, v in (m["files"] or {}).items()},
        split_file=(p.parent.parent / split) if split else None,
        mirror_subdir=m.get("mirror_subdir", m["name"]),
        manifest_path=p,
        split_policy=dict(m.get("split_policy") or {}),
        extra={k: v for k, v in m.items() if k not in known},
        archive=dict(archive) if archive else None,
        patients={str(k): dict(v or {}) for k, v in (m.get("patients") or {}).items()},
        sections_from=m.get("sections_from"),
    )


def read_split(
    path: PathLikeStr, dataset: Dataset | None = None, *, allow_train_valid_overlap: bool = False
) -> pd.DataFrame:
    """Read and validate a split file.

    Two forms (TSV): section-level ``section, patient, split``, or patient-level
    ``patient, split`` (optional ``subtype``). A patient-level file must assign every patient
    of ``dataset`` and is expanded to one row per section (``section, patient, split``, plus
    ``subtype`` if given) once the sections are known; before that it is returned per patient.
    A section-level file of a data set whose sections are discovered at read time (empty
    ``sections``, e.g. He et al. 2020) is checked against the manifest's ``patients`` until
    the sections are known: every patient known, every patient assigned. Other columns (e.g.
    ``n_spots``) are kept as strings. Lines whose first character is ``#`` are comments
    (provenance) and are skipped; a ``#`` elsewhere in a line is data.

    Refuses: unknown split names, sections or patients not in the data set, a section (or
    patient) listed twice, a subtype that disagrees with the manifest, and a patient in two
    parts. The one exception, ``allow_train_valid_overlap``, lets a patient sit in train and
    valid (never in test together with another part) for tiny demo data sets.
    """
    path = Path(path)
    if not path.is_file():
        raise SplitError(f"{path}: missing split file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SplitError(f"{path}: unreadable split file ({exc})") from None
    body = "".join(ln for ln in text.splitlines(keepends=True) if not ln.startswith("#"))
    try:
        df = pd.read_csv(io.StringIO(body), sep="\t", dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise SplitError(f"{path}: malformed split file ({exc})") from None
    missing = {"patient", "split"} - set(df.columns)
    if missing:
        raise SplitError(f"{path}: split file lacks column(s) {sorted(missing)}")
    bad = sorted(set(df["split"].fillna("<empty>")) - set(SPLITS))
    if bad:
        raise SplitError(f"{path}: unknown split name(s) {bad}; use {SPLITS}")
    if "section" not in df.columns:
        return _patient_level_split(df, path, dataset)
    dup = df["section"][df["section"].duplicated()].tolist()
    if dup:
        raise SplitError(f"{path}: section(s) listed twice: {dup}")
    if dataset is not None and dataset.sections:
        unknown = sorted(set(df["section"]) - set(dataset.sections))
        if unknown:
            raise SplitError(f"{path}: split names unknown section(s) {unknown} (not in {dataset.name})")
        wrong = [s for s, p in zip(df["section"], df["patient"]) if str(dataset.sections[s].get("patient")) != p]
        if wrong:
            raise SplitError(f"{path}: patient of section(s) {wrong} disagrees with the manifest")
    elif dataset is not None and dataset.patients:
        # sections discovered at read time: check the patients now, the sections once known
        known = set(dataset.patients)
        unknown = sorted(set(df["patient"].fillna("<empty>")) - known)
        if unknown:
            raise SplitError(f"{path}: split names unknown patient(s) {unknown} (not in {dataset.name})")
        unassigned = sorted(known - set(df["patient"]))
        if unassigned:
            raise SplitError(f"{path}: patient(s) {unassigned} of {dataset.name} have no split")
    parts = df.groupby("patient")["split"].agg(lambda s: sorted(set(s)))
    for patient, splits in parts.items():
        if len(splits) > 1:
            if allow_train_valid_overlap and splits == ["train", "valid"]:
                continue
            raise SplitError(f"{path}: patient {patient} appears in more than one part: {splits}")
    return df


def _patient_level_split(df: pd.DataFrame, path: Path, dataset: Dataset | None) -> pd.DataFrame:
    """Validate a patient-level split and expand it to the sections of ``dataset``."""
    dup = df["patient"][df["patient"].duplicated()].tolist()
    if dup:
        raise SplitError(f"{path}: patient(s) listed twice (a patient in two parts?): {dup}")
    if dataset is None:
        return df
    known = dataset.patient_subtypes()
    unknown = sorted(set(df["patient"]) - set(known))
    if unknown:
        raise SplitError(f"{path}: split names unknown patient(s) {unknown} (not in {dataset.name})")
    unassigned = sorted(set(known) - set(df["patient"]))
    if unassigned:
        raise SplitError(f"{path}: patient(s) {unassigned} of {dataset.name} have no split")
    if "subtype" in df.columns:
        wrong = [p for p, s in zip(df["patient"], df["subtype"]) if known.get(p) is not None and known[p] != s]
        if wrong:
            raise SplitError(f"{path}: subtype of patient(s) {wrong} disagrees with the manifest")
    if not dataset.sections:
        return df
    by_patient = df.set_index("patient")
    rows = []
    for sec, meta in dataset.sections.items():
        p = str(meta.get("patient"))
        row = {"section": sec, "patient": p, "split": by_patient.at[p, "split"]}
        if "subtype" in df.columns:
            row["subtype"] = by_patient.at[p, "subtype"]
        rows.append(row)
    return pd.DataFrame(rows)


# ---- readers ---------------------------------------------------------------------------------
def _read_her2st(ds: Dataset, root: Path, sections: Sequence[str]) -> ad.AnnData:
    from stlib.io.her2st import read_her2st_section
    from stlib.io._common import concat_sections

    out = []
    for sec in sections:
        meta = ds.sections[sec]
        img = next((f for f in ds.files if f.startswith(f"data/ST-imgs/{sec[0]}/{sec}/")), None)
        folder = root / "data" / "ST-imgs" / sec[0] / sec
        note = ds.extra.get("images_note")
        if img is None and note and not any(folder.glob("*.jpg")):
            raise DataError(folder, f"no H&E image for section {sec}: {' '.join(str(note).split())}")
        out.append(
            read_her2st_section(
                root, sec, patient=str(meta.get("patient", sec[0])), subtype=str(meta.get("subtype", "HER2+")),
                image_sha256=ds.files.get(img) if img else None,
            )
        )
    return concat_sections(out)


def _read_he2020(ds: Dataset, root: Path, sections: Sequence[str]) -> ad.AnnData:
    from stlib.io.he2020 import read_he2020

    return read_he2020(root, sections)


def _discover_he2020(root: Path) -> dict[str, dict[str, Any]]:
    from stlib.io.he2020 import discover_sections

    return discover_sections(root)


READERS: dict[str, Callable[[Dataset, Path, Sequence[str]], ad.AnnData]] = {
    "her2st": _read_her2st,
    "he2020": _read_he2020,
}


#: Readers that can list their sections from the fetched files (manifest ``sections_from``).
SECTION_DISCOVERY: dict[str, Callable[[Path], dict[str, dict[str, Any]]]] = {
    "he2020": _discover_he2020,
}


def register_reader(name: str, func: Callable[[Dataset, Path, Sequence[str]], ad.AnnData]) -> None:
    """Register a reader under ``name`` (used by manifests' ``reader`` field)."""
    READERS[name] = func
