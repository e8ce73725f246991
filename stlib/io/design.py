"""What a data set's split can run: the split rules of the book's chapters, checked up front.

Each chapter of the book needs some parts of the split (train / valid / test) to hold sections,
sometimes more than one section or patient. :data:`CHAPTER_NEEDS` states those needs, read off
the chapters (``notebooks/*.py``) and the functions they call; :func:`check_design` checks them
for a data set, before any chapter starts (``stlib summary`` and ``python -m stlib.book.run``
call it), and says which chapters can run, with an ``--only`` suggestion.

The rules (a chapter also needs what the chapters it reads need, :data:`PREREQUISITES`):

- 01, 02 (data, image features): at least one train section;
- 03, 05, 06, 08, 10, 13, 15 (models chosen on valid, scored on test): train, valid and test
  sections;
- 04, 09 (the probe: ridge whose penalty is chosen by cross-validation over the train sections,
  scikit-learn's ``GroupKFold``): at least 2 train sections, and valid and test;
- 07, 11 (test-set readings of chapters 1-8): a test section;
- 12 (leave-one-patient-out): at least 2 patients (a fold with one train section cross-validates
  over spatial blocks);
- 14 (the saved image model): train, valid (its penalty) and test (scored); every valid and test
  section's resolution within :data:`~stlib.io._common.MAX_RESOLUTION_RATIO` (4x) of the train sections'
  median, the limit :func:`stlib.predictor.predict_image` enforces;
- 16: nothing (a stored record).

So chapters 01, 02 and 14 are the image-only model and need one train, one valid and one test
section; a data set of two patients can run every chapter when its manifest allows a patient in
train and valid (``split_policy: {allow_train_valid_patient_overlap: true}``, see the *Data* page).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from stlib._utils import SPLITS
from stlib.io._common import MAX_RESOLUTION_RATIO

__all__ = ["CHAPTER_NEEDS", "PREREQUISITES", "Design", "check_design", "design_table", "resolution_table"]

#: Per chapter: the least number of sections per part, and other needs (``train_sections``: sections
#: in train; ``patients``: patients in the data set; ``resolution``: the 4x limit of chapter 14).
CHAPTER_NEEDS: dict[str, dict[str, Any]] = {
    "01": {"train": 1},
    "02": {"train": 1},
    "03": {"train": 1, "valid": 1, "test": 1},
    "04": {"train": 2, "valid": 1, "test": 1},
    "05": {"train": 1, "valid": 1, "test": 1},
    "06": {"train": 1, "valid": 1, "test": 1},
    "07": {"test": 1},
    "08": {"train": 1, "valid": 1, "test": 1},
    "09": {"train": 2, "valid": 1, "test": 1},
    "10": {"train": 1, "valid": 1, "test": 1},
    "11": {"test": 1},
    "12": {"patients": 2},
    "13": {"train": 1, "valid": 1, "test": 1},
    "14": {"train": 1, "valid": 1, "test": 1, "resolution": True},
    "15": {"train": 1, "valid": 1, "test": 1},
    "16": {},
}

#: The chapters whose results each chapter reads (its **Prerequisites** line).
PREREQUISITES: dict[str, tuple[str, ...]] = {
    "01": (), "02": ("01",), "03": ("02",), "04": ("02",), "05": ("02",), "06": ("02",),
    "07": ("01", "02", "03", "04", "05", "06"), "08": ("01", "02", "03", "04", "05", "06"), "09": ("01", "02"),
    "10": ("01", "02"), "11": ("01", "08"), "12": ("01", "02"), "13": ("01", "02", "03", "04", "05", "06"),
    "14": ("01", "02"), "15": ("01", "02"), "16": (),
}

_WHY = {"train": "train", "valid": "valid (model choice)", "test": "test (scoring)"}


@dataclass
class Design:
    """What a data set's split can run: per chapter ``ok`` and the reason when not.

    Attributes
    ----------
    name
        The data set.
    parts
        Part -> its sections.
    patients
        The data set's patients.
    chapters
        Chapter -> ``None`` (can run) or the reason it cannot.
    notes
        Further findings (resolution).
    """

    name: str
    parts: dict[str, list[str]]
    patients: list[str]
    chapters: dict[str, str | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def runnable(self) -> list[str]:
        """The chapters that can run."""
        return [c for c, why in self.chapters.items() if why is None]

    @property
    def blocked(self) -> dict[str, str]:
        """Chapter -> why it cannot run."""
        return {c: why for c, why in self.chapters.items() if why is not None}

    def describe(self) -> str:
        """The finding in words: the split, the chapters that can run, and why the others cannot."""
        parts = "; ".join(f"{p} {len(self.parts.get(p, []))} section(s)" for p in SPLITS)
        lines = [f"split of {self.name}: {parts}; {len(self.patients)} patient(s)"]
        if not self.blocked:
            lines.append(f"every chapter can run ({', '.join(self.chapters)})")
        else:
            lines.append(f"chapters that can run: {' '.join(self.runnable) or 'none'}")
            for c, why in self.blocked.items():
                lines.append(f"  chapter {c} cannot: {why}")
            if self.runnable:
                lines.append(f"run them with: ./run pipeline --dataset ... --only {' '.join(self.runnable)}")
        lines.extend(self.notes)
        return "\n".join(lines)


def design_table(data: Any) -> tuple[str, pd.DataFrame, dict[str, float]]:
    """``(name, table of section/patient/split, section -> um/px)`` of an AnnData (``obs`` and
    ``uns["spatial"]``), a :class:`~stlib.io.registry.Dataset` (its split file; for ``reader: spots``
    the resolutions its manifest declares or its spots files' pitch measures,
    :func:`stlib.io.spots.manifest_resolutions`; none for the other readers) or a split DataFrame."""
    import anndata as ad

    if isinstance(data, ad.AnnData):
        obs = data.obs
        cols = [c for c in ("section", "patient", "split") if c in obs.columns]
        tab = obs[cols].astype(str).drop_duplicates("section").reset_index(drop=True)
        if "split" not in tab.columns:
            tab["split"] = "nan"
        um = {str(s): float(v["metadata"]["um_per_px"]) for s, v in data.uns.get("spatial", {}).items()
              if v.get("metadata", {}).get("um_per_px") is not None}
        name = str(data.uns.get("dataset", {}).get("name", "the data"))
        return name, tab, um
    if isinstance(data, pd.DataFrame):
        return "this data set", data.astype(str), {}
    from stlib.io.spots import manifest_resolutions

    split = data.split()  # a Dataset
    if "section" not in split.columns:  # sections discovered at read time: patients only
        split = split.assign(section=split["patient"])
    return str(data.name), split.astype(str), manifest_resolutions(data)


def check_design(data: Any, chapters: Iterable[str] | None = None) -> Design:
    """Check the split rules of the chapters (:data:`CHAPTER_NEEDS`) for a data set.

    Parameters
    ----------
    data
        A read data set (AnnData with ``obs["section", "patient", "split"]``; its resolutions in
        ``uns["spatial"]`` are checked too), a :class:`~stlib.io.registry.Dataset` (its split file,
        before anything is read; for ``reader: spots`` also the resolutions its manifest declares or
        its spots files measure) or a split table (``section, patient, split``).
    chapters
        Chapter numbers (``"01"``, ``"14"``; prefixes of the notebooks' names); default all.

    Returns
    -------
    Design
        Per chapter whether it can run and why not; :meth:`Design.describe` says it in words.
    """
    name, tab, um = design_table(data)
    parts = {p: list(pd.unique(tab.loc[tab["split"] == p, "section"])) for p in SPLITS}
    patients = list(pd.unique(tab["patient"])) if "patient" in tab.columns else []
    own: dict[str, str | None] = {}
    notes: list[str] = []
    res_problem = _resolution_problem(parts, um, notes)
    for ch, needs in CHAPTER_NEEDS.items():
        why = []
        for p in SPLITS:
            n = int(needs.get(p, 0))
            if len(parts[p]) < n:
                what = "grouped cross-validation over train sections" if p == "train" and n > 1 else _WHY[p]
                why.append(f"needs {n} {p} section(s) for {what}, the split has {len(parts[p])}")
        if len(patients) < int(needs.get("patients", 0)):
            why.append(f"needs {needs['patients']} patients (leave one patient out), the data set has {len(patients)}")
        if needs.get("resolution") and res_problem:
            why.append(res_problem)
        own[ch] = "; ".join(why) or None
    wanted = _chapters(chapters)
    out: dict[str, str | None] = {}
    for ch in wanted:
        why = own[ch]
        if why is None:
            bad = [p for p in _all_prerequisites(ch) if own[p] is not None]
            if bad:
                why = f"reads the results of chapter(s) {' '.join(bad)}, which cannot run"
        out[ch] = why
    return Design(name=name, parts=parts, patients=[str(p) for p in patients], chapters=out, notes=notes)


def _chapters(chapters: Iterable[str] | None) -> list[str]:
    if chapters is None:
        return list(CHAPTER_NEEDS)
    out = []
    for c in chapters:
        hits = [k for k in CHAPTER_NEEDS if k.startswith(str(c)[:2]) or str(c).startswith(k)]
        out.extend(h for h in hits if h not in out)
    return out


def _all_prerequisites(ch: str) -> list[str]:
    seen: list[str] = []
    todo = list(PREREQUISITES.get(ch, ()))
    while todo:
        p = todo.pop(0)
        if p not in seen:
            seen.append(p)
            todo.extend(PREREQUISITES.get(p, ()))
    return sorted(seen)


def _resolution_problem(parts: dict[str, list[str]], um: dict[str, float], notes: list[str]) -> str | None:
    """The 4x limit: each valid and test section's um/px against the train sections' median."""
    train = [um[s] for s in parts["train"] if s in um]
    if not train:
        return None
    ref = float(pd.Series(train).median())
    far = {s: um[s] / ref for s in parts["test"] + parts["valid"] if s in um
           and not (1 / MAX_RESOLUTION_RATIO <= um[s] / ref <= MAX_RESOLUTION_RATIO)}
    if not far:
        spread = max(um.values()) / min(um.values())
        notes.append(f"resolution: {min(um.values()):.3g} to {max(um.values()):.3g} um/px (a factor {spread:.2g}); "
                     f"within the {MAX_RESOLUTION_RATIO:g}x limit of the saved image model (chapter 14)")
        return None
    txt = ", ".join(f"{s} {um[s]:.3g} um/px ({r:.2g}x)" for s, r in far.items())
    return (f"section(s) {txt} are beyond {MAX_RESOLUTION_RATIO:g}x the train sections' median {ref:.3g} um/px, "
            "the saved image model's limit")


def resolution_table(adata: Any, sections: Sequence[str] | None = None) -> pd.DataFrame:
    """Per section its resolution and where it came from: ``um/px``, ``um/px source`` (declared in the
    manifest, with the measured value beside it, or measured from the spot pitch) and ``pitch um``.

    Parameters
    ----------
    adata
        Data read by :mod:`stlib.io` (``uns["spatial"][section]["metadata"]``).
    sections
        Sections to list; default every section of ``uns["spatial"]``. A section without a recorded
        ``um_per_px`` is left out.

    Returns
    -------
    DataFrame
        Indexed by section, columns ``um/px`` (rounded to 3 decimals), ``um/px source`` and
        ``pitch um``; empty (no columns) when no section records a resolution.
    """
    rows = {}
    for sec, v in adata.uns.get("spatial", {}).items():
        if sections is not None and sec not in sections:
            continue
        m = v.get("metadata", {})
        if m.get("um_per_px") is None:
            continue
        src = m.get("um_per_px_source", "")
        if src == "manifest":
            meas = m.get("um_per_px_measured")
            src = "declared" + (f" (pitch measures {meas:.3g})" if meas is not None else "")
        elif src == "spot pitch":
            src = "measured from spot pitch"
        rows[sec] = {"um/px": round(float(m["um_per_px"]), 3), "um/px source": src,
                     "pitch um": m.get("spot_pitch_um")}
    return pd.DataFrame.from_dict(rows, orient="index")
