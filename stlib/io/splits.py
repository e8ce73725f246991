"""Train / valid / test splits: reading and validating split files, and drawing fresh ones.

Split files are TSV with ``section, patient, split`` or, patient-level, ``patient, split``
(optional ``subtype``): a patient-level file is expanded to the sections of the data set.
Further columns (e.g. ``n_spots``) are kept; lines starting with ``#`` (provenance) are skipped.
Every violation is a :class:`~stlib.errors.SplitError` naming the file.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from stlib._utils import SPLITS
from stlib.errors import DataError, DataWarning, SplitError
from stlib.io._common import PathLikeStr

if TYPE_CHECKING:  # pragma: no cover
    from stlib.io._manifest import Manifest

__all__ = ["read_split", "stratified_patient_split"]


def read_split(
    path: PathLikeStr, dataset: Manifest | None = None, *, allow_train_valid_overlap: bool = False,
    absent_ok: bool = False,
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

    ``absent_ok`` (a data set whose sections were discovered in the fetched files, e.g. a mirror
    holding some of He et al. 2020): when every section present is in the split, split rows of
    sections not present, of patients the manifest knows, are left out with a :class:`~stlib.errors.DataWarning` saying which sections are present
    and which are missing; the rest is checked as usual.

    Parameters
    ----------
    path
        The split file (TSV, UTF-8; a byte-order mark is ignored).
    dataset
        The manifest (e.g. a :class:`~stlib.io.Dataset`) the split is checked against and a
        patient-level file expanded with; ``None``: only the file itself is checked.
    allow_train_valid_overlap
        Let a patient sit in both train and valid (see above).
    absent_ok
        Leave out the rows of sections not present in ``dataset`` (see above).

    Returns
    -------
    DataFrame
        Every value a string. A section-level file: its rows and columns. A patient-level file:
        one row per section of ``dataset`` (``section, patient, split``, plus ``subtype`` if
        given), or the file's rows per patient while the sections are not known. Every violation
        is a :class:`~stlib.errors.SplitError`.
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
        if (unknown and absent_ok and dataset.patients and set(dataset.sections) <= set(df["section"])
                and set(df.loc[df["section"].isin(unknown), "patient"]) <= set(dataset.patients)):
            present = sorted(set(df["section"]) & set(dataset.sections))
            warnings.warn(f"{dataset.name}: {len(present)} of the split's {len(df)} sections are present ({present[:10]}"
                          f"{' ...' if len(present) > 10 else ''}), {len(unknown)} are missing, not downloaded or not "
                          f"in the mirror (e.g. {unknown[:5]}); the split is used for the sections present",
                          DataWarning, stacklevel=3)
            df = df[df["section"].isin(dataset.sections)].reset_index(drop=True)
            unknown = []
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
            if splits == ["train", "valid"]:
                way_out = ("to allow a patient in train and valid, set `split_policy: {allow_train_valid_patient_overlap: "
                           "true}` in the manifest, or move its sections to one part")
            else:
                way_out = ("a test patient must be in test only (no split_policy allows it): move its sections to "
                           "one part")
            raise SplitError(f"{path}: patient {patient} appears in more than one part: {splits}; {way_out} "
                             "(see the book's Data page, `split_policy`)")
    return df


def _patient_level_split(df: pd.DataFrame, path: Path, dataset: Manifest | None) -> pd.DataFrame:
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


def _rank(seed: int, kind: str, name: str) -> str:
    return hashlib.sha256(f"{int(seed)}:{kind}:{name}".encode()).hexdigest()


def stratified_patient_split(metadata: pd.DataFrame, seed: int = 0, n: tuple[int, int, int] = (13, 5, 5)) -> pd.DataFrame:
    """Seeded, patient-level split stratified by subtype: a fresh draw.

    For any data set with patients and subtypes (the default sizes are the paper's split of He
    et al. 2020). The committed ``data/splits/he2020.tsv`` is the authors' split, not a draw of
    this function; use this one for a different split of the same sizes (e.g. to see how much
    the results depend on which patients are held out).

    Rule (exact, independent of numpy versions):

    1. Within each subtype, patients are ordered by ``sha256(f"{seed}:patient:{patient}")``.
    2. Subtypes are ordered by ``sha256(f"{seed}:subtype:{subtype}")``.
    3. Round-robin: take the first patient of every subtype (in subtype order), then the
       second of every subtype, and so on; subtypes that run out are skipped.
    4. The first ``n[2]`` patients of that sequence are ``test``, the next ``n[1]`` ``valid``,
       the remaining ``n[0]`` ``train``.

    With the 23 patients and ``n = (13, 5, 5)`` (the paper's sizes) valid and test each hold
    exactly one patient of every one of the 5 subtypes.

    Parameters
    ----------
    metadata
        Columns ``patient`` and ``type`` (metadata.csv) or ``subtype``; optionally
        ``section`` or ``replicate`` (one row per section).
    seed
        Integer seed.
    n
        Patients in (train, valid, test); must sum to the number of patients.

    Returns
    -------
    DataFrame with columns ``section, patient, subtype, split`` (one row per section) when
    sections are known, else ``patient, subtype, split`` (one row per patient).
    """
    df = metadata.copy()
    if "subtype" not in df.columns:
        if "type" not in df.columns:
            raise DataError("<metadata>", "needs a 'type' or 'subtype' column")
        df["subtype"] = df["type"]
    if "patient" not in df.columns:
        raise DataError("<metadata>", "needs a 'patient' column")
    if "section" not in df.columns and "replicate" in df.columns:
        df["section"] = df["patient"].astype(str) + "_" + df["replicate"].astype(str)
    df["patient"] = df["patient"].astype(str)
    df["subtype"] = df["subtype"].astype(str)
    per_patient = df.groupby("patient")["subtype"].agg(lambda s: sorted(set(s)))
    mixed = [p for p, s in per_patient.items() if len(s) > 1]
    if mixed:
        raise DataError("<metadata>", f"patient(s) {mixed} have more than one subtype")
    subtype_of = {p: s[0] for p, s in per_patient.items()}
    n_train, n_valid, n_test = (int(v) for v in n)
    if min(n_train, n_valid, n_test) < 0 or n_train + n_valid + n_test != len(subtype_of):
        raise ValueError(f"split sizes {tuple(n)} do not add up to the {len(subtype_of)} patients")
    by_subtype: dict[str, list[str]] = {}
    for p, s in subtype_of.items():
        by_subtype.setdefault(s, []).append(p)
    for s in by_subtype:
        by_subtype[s].sort(key=lambda p: _rank(seed, "patient", p))
    order = sorted(by_subtype, key=lambda s: _rank(seed, "subtype", s))
    sequence: list[str] = []
    for r in range(max(len(v) for v in by_subtype.values())):
        sequence.extend(by_subtype[s][r] for s in order if r < len(by_subtype[s]))
    split_of = {p: "test" for p in sequence[:n_test]}
    split_of.update({p: "valid" for p in sequence[n_test : n_test + n_valid]})
    split_of.update({p: "train" for p in sequence[n_test + n_valid :]})
    rank = {"train": 0, "valid": 1, "test": 2}
    if "section" in df.columns:
        out = df[["section", "patient", "subtype"]].drop_duplicates("section").copy()
        out["split"] = out["patient"].map(split_of)
        out = out.sort_values(["split", "subtype", "patient", "section"], key=lambda c: c.map(rank) if c.name == "split" else c)
    else:
        out = pd.DataFrame({"patient": list(subtype_of), "subtype": [subtype_of[p] for p in subtype_of]})
        out["split"] = out["patient"].map(split_of)
        out = out.sort_values(["split", "subtype", "patient"], key=lambda c: c.map(rank) if c.name == "split" else c)
    return out.reset_index(drop=True)
