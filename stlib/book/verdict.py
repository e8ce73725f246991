"""The report's claims about its models, checked with paired bootstrap intervals (chapter 13).

Each claim of the report (``data/paper_claims.yaml``) is read as a set of comparisons
"``better`` scores above ``worse`` on a split", one or more of them marked **central**
(what the claim is about; the others are the same claim read on other feature sets or
splits). A comparison is judged on the paired bootstrap replicates of
:func:`stlib.book.scoring.interval_table` (the same resampled spots for both models,
:meth:`stlib.tl.uncertainty.Bootstrap.difference`):

- ``replicated``: the 95% interval of the difference excludes zero in the claimed direction;
- ``reversed``: it excludes zero the other way;
- ``not replicated``: it contains zero.

This is a replication on a substitute data set, not a test of the report's own numbers: a claim
is **replicated** when every comparison is, **reversed** only when a central comparison is
reversed, and **not replicated** otherwise. For ``mse`` and ``mae`` lower is better; for
``pcc``, ``srcc`` and ``r2`` higher.

Reads ``data/paper_claims.yaml``; writes nothing (the chapter writes ``tables/verdict.csv``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from stlib.tl import uncertainty
from stlib.errors import DataError
from stlib._utils import project_data_dir

__all__ = ["Claim", "Comparison", "CLAIM_OUTCOMES", "against_report", "claim_models", "judge", "judge_by_seed",
           "load_claims", "verdicts", "verdict_sentence"]

#: Statistics for which a lower value is better.
LOWER_IS_BETTER = frozenset({"mse", "mae"})
#: Outcomes of a claim (and of a comparison), in the order the book lists them.
CLAIM_OUTCOMES = ("replicated", "not replicated", "reversed")


@dataclass(frozen=True)
class Comparison:
    """``better`` scores above ``worse`` (below, for an error) on ``split`` by ``stat``."""

    better: str
    worse: str
    split: str
    stat: str = "pcc"
    central: bool = False

    def __str__(self) -> str:
        rel = "<" if self.stat in LOWER_IS_BETTER else ">"
        return f"{self.better} {rel} {self.worse} ({self.stat.upper()}, {self.split})"


@dataclass(frozen=True)
class Claim:
    """One claim of the report: its words, where it stands, and the comparisons that would make it true."""

    id: str
    label: str
    where: str
    quote: str
    reading: str
    chapter: str
    comparisons: tuple[Comparison, ...]


def load_claims(path: str | Path | None = None) -> list[Claim]:
    """The claims of ``data/paper_claims.yaml`` (or ``path``); a malformed file is a :class:`DataError`."""
    path = Path(path) if path is not None else project_data_dir() / "paper_claims.yaml"
    if not path.is_file():
        raise DataError(path, "missing file (the report's claims)")
    try:
        doc = yaml.safe_load(path.read_text())
        claims = []
        for c in doc["claims"]:
            comps = tuple(Comparison(**comp) for comp in c["comparisons"])
            if not comps:
                raise ValueError(f"claim {c['id']!r} has no comparisons")
            if len(comps) == 1 and not comps[0].central:
                comps = (Comparison(**{**c["comparisons"][0], "central": True}),)
            if not any(x.central for x in comps):
                raise ValueError(f"claim {c['id']!r}: mark the comparison(s) the claim is about with central: true")
            bad = [str(x) for x in comps if x.stat not in uncertainty.STATS or x.better == x.worse]
            if bad:
                raise ValueError(f"claim {c['id']!r}: unusable comparisons {bad}")
            claims.append(Claim(id=c["id"], label=c["label"], where=str(c["where"]), quote=c["quote"], reading=c["reading"],
                                chapter=c["chapter"], comparisons=comps))
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise DataError(path, f"not a valid claims file: {exc}") from exc
    ids = [c.id for c in claims]
    if len(set(ids)) != len(ids):
        raise DataError(path, "claim ids must be unique")
    return claims


def claim_models(claims: Sequence[Claim]) -> list[str]:
    """Every model the claims compare, sorted."""
    return sorted({m for c in claims for x in c.comparisons for m in (x.better, x.worse)})


def judge(claims: Sequence[Claim], boots: Mapping[tuple[str, str], uncertainty.Bootstrap]) -> pd.DataFrame:
    """One row per comparison: both scores, the claimed difference with its interval, and the outcome.

    ``boots`` are the bootstraps of :func:`stlib.book.scoring.interval_table`, keyed by
    ``(split, space)``; both models of a comparison must be scored in the same space (a
    count-space score cannot be compared with a target-space one).
    """
    rows = []
    for c in claims:
        for x in c.comparisons:
            bs = _bootstrap_with(boots, x)
            d = bs.difference(x.better, x.worse, stat=x.stat)
            sign = -1.0 if x.stat in LOWER_IS_BETTER else 1.0
            diff, lo, hi = (sign * d["difference"], *sorted((sign * d["lo"], sign * d["hi"])))
            outcome = "replicated" if lo > 0 else "reversed" if hi < 0 else "not replicated"
            rows.append({"claim": c.id, "comparison": str(x), "central": x.central, "split": x.split, "stat": x.stat,
                         "better": x.better, "worse": x.worse,
                         "score (better)": float(bs.point.loc[x.better, x.stat]),
                         "score (worse)": float(bs.point.loc[x.worse, x.stat]),
                         "claimed difference": diff, "lo": lo, "hi": hi, "outcome": outcome})
    return pd.DataFrame(rows)


def _bootstrap_with(boots: Mapping[tuple[str, str], uncertainty.Bootstrap], x: Comparison) -> uncertainty.Bootstrap:
    found = [bs for (split, _), bs in boots.items()
             if split == x.split and {x.better, x.worse} <= set(bs.point.index)]
    if not found:
        spaces = {m: [sp for (s, sp), bs in boots.items() if s == x.split and m in bs.point.index]
                  for m in (x.better, x.worse)}
        raise KeyError(f"{x}: no bootstrap of the {x.split} split holds both models (scored in: {spaces})")
    if x.stat not in found[0].replicates:
        raise KeyError(f"{x}: the bootstrap has no replicates of {x.stat!r}")
    return found[0]


def _claim_outcome(sub: pd.DataFrame) -> str:
    if (sub["outcome"] == "replicated").all():
        return "replicated"
    if ((sub["outcome"] == "reversed") & sub["central"].astype(bool)).any():
        return "reversed"
    return "not replicated"


def verdicts(judged: pd.DataFrame) -> pd.Series:
    """Per claim (in the order of ``judged``): ``replicated``, ``not replicated`` or ``reversed``.

    Parameters
    ----------
    judged
        :func:`judge`'s table (``claim``, ``outcome``, ``central``).

    Returns
    -------
    pandas.Series
        Indexed by claim id. Replicated: every comparison replicated; reversed: a central
        comparison reversed; not replicated: otherwise.
    """
    return judged.groupby("claim", sort=False)[["outcome", "central"]].apply(_claim_outcome).rename("outcome")


def judge_by_seed(claims: Sequence[Claim], targets, scored: Mapping[str, tuple], *, n_boot: int, seed: int = 0,
                  seed_names: Sequence[str] | None = None, splits: tuple[str, ...] = ("valid", "test")) -> pd.DataFrame:
    """Each claim's outcome when every model with seeds is scored as its fit with **one** seed
    (the k-th of each), the other models as they are: does a claim's outcome hang on the seed?

    Parameters
    ----------
    claims
        :func:`load_claims`.
    targets, scored
        As for :func:`stlib.book.scoring.interval_table`; models with seeds have
        ``(n_seeds, n_spots, n_genes)`` arrays (:func:`stlib.book.scoring.scored_from_files`),
        all with the same number of seeds.
    n_boot, seed
        Replicates and seed of the intervals (the same resampled spots for every seed).
    seed_names
        Column labels of the seeds (default ``seed 1, seed 2, ...``).

    Returns
    -------
    pandas.DataFrame
        Indexed by claim id, one column per seed (:func:`verdicts`); empty columns when no
        model has more than one seed.

    Raises
    ------
    ValueError
        Models with different numbers of seeds.
    """
    from stlib.book import scoring

    counts = {m: k for m, k in scoring.n_seeds(scored).items() if k > 1}
    if not counts:
        return pd.DataFrame(index=pd.Index([c.id for c in claims], name="claim"))
    if len(set(counts.values())) > 1:
        raise ValueError(f"models with different numbers of seeds: {counts}")
    n = next(iter(counts.values()))
    names = list(seed_names) if seed_names is not None else [f"seed {k + 1}" for k in range(n)]
    if len(names) != n:
        raise ValueError(f"{len(names)} seed names for {n} seeds")
    thinned = scoring.thinned_by_space(targets, tuple(sorted({space for _, space in scored.values()})), seed=seed)
    out = {}
    for k, label in enumerate(names):
        one = {m: (({s: a[k] for s, a in p.items()} if m in counts else p), space) for m, (p, space) in scored.items()}
        _, boots = scoring.interval_table(targets, one, splits=splits, n_boot=n_boot, seed=seed, thinned=thinned)
        out[label] = verdicts(judge(claims, boots))
    return pd.DataFrame(out).rename_axis("claim")


def seed_agreement(by_seed: pd.DataFrame, reference: str = "mean over seeds") -> pd.DataFrame:
    """Per claim: its outcome in the ``reference`` column and which of the other columns (one
    per seed, :func:`judge_by_seed`) agree with it, in a table narrow enough for the page.

    Parameters
    ----------
    by_seed
        Claims x columns of outcomes, one of them ``reference``.
    reference
        The column the others are compared with.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``by_seed``: ``reference`` (the outcome), ``seeds agreeing`` ("k of n") and
        ``other outcomes`` (each differing column with its outcome, or "none").
    """
    if reference not in by_seed.columns:
        raise KeyError(f"no column {reference!r} among {list(by_seed.columns)}")
    others = [c for c in by_seed.columns if c != reference]
    rows = {}
    for claim, row in by_seed.iterrows():
        differ = [f"{c}: {row[c]}" for c in others if row[c] != row[reference]]
        rows[claim] = {reference: row[reference], "seeds agreeing": f"{len(others) - len(differ)} of {len(others)}",
                       "other outcomes": "; ".join(differ) or "none"}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(by_seed.index.name)


def verdict_sentence(judged: pd.DataFrame, claim: str) -> str:
    """The verdict of one claim in words, with how many of its comparisons replicate or reverse.

    Parameters
    ----------
    judged
        :func:`judge`'s table.
    claim
        The claim's id.

    Returns
    -------
    str
        E.g. ``"not replicated (3 of 8 comparisons replicated, 2 reversed (none central))"``.
    """
    sub = judged[judged["claim"] == claim]
    v = _claim_outcome(sub)
    rev = sub["outcome"] == "reversed"
    n, n_rep, n_rev = len(sub), int((sub["outcome"] == "replicated").sum()), int(rev.sum())
    n_rev_central = int((rev & sub["central"].astype(bool)).sum())
    parts = [f"{n_rep} of {n} comparisons replicated"]
    if n_rev:
        if not n_rev_central:
            which = "not central" if n_rev == 1 else "none central"
        elif n_rev == n_rev_central:
            which = "central" if n_rev == 1 else "all central"
        else:
            which = f"{n_rev_central} of them central"
        parts.append(f"{n_rev} reversed ({which})")
    return f"{v} ({', '.join(parts)})"


def against_report(claims: Sequence[Claim], paper: pd.DataFrame, table_models: Mapping[str, str]) -> pd.Series:
    """Per claim: do the report's own printed Table I values order the models as the claim says?

    ``paper`` is :func:`stlib.book.tables.paper_table`; ``table_models`` maps its row names to this
    book's model names (:data:`stlib.book.protocol.TABLE_MODELS`). Point values only (the report
    gives no intervals): ``"consistent"``, ``"inconsistent"`` (any comparison the other way),
    or ``"partly in Table I"`` / ``"not in Table I"`` when some or all of the models compared
    are not among its rows (then only the rows it has are read).
    """
    row_of = {m: r for r, m in table_models.items()}
    col = {"pcc": "PCC", "srcc": "SRCC", "mse": "MSE", "mae": "MAE", "r2": "R2"}
    out = {}
    for c in claims:
        seen, wrong = 0, 0
        for x in c.comparisons:
            if x.better not in row_of or x.worse not in row_of:
                continue
            a = paper.loc[(row_of[x.better], x.split.capitalize()), col[x.stat]]
            b = paper.loc[(row_of[x.worse], x.split.capitalize()), col[x.stat]]
            seen += 1
            wrong += bool(a > b) if x.stat in LOWER_IS_BETTER else bool(a < b)
        if not seen:
            out[c.id] = "not in Table I"
        elif wrong:
            out[c.id] = "inconsistent"
        else:
            out[c.id] = "consistent" if seen == len(c.comparisons) else "partly in Table I"
    return pd.Series(out, name="the report's Table I")


def readable_comparisons(table: pd.DataFrame, claims: Sequence[Claim]) -> pd.DataFrame:
    """A table indexed by ``(claim, comparison)`` (claim ids, comparison strings with model ids)
    relabelled for reading: each claim by its label, each model id in a comparison by its name
    (:data:`stlib.pl.MODEL_LABELS`). The stored verdict keeps the ids.

    Parameters
    ----------
    table
        Indexed by ``(claim, comparison)``.
    claims
        :func:`load_claims`.

    Returns
    -------
    pandas.DataFrame
        A relabelled copy.
    """
    labels = {c.id: c.label for c in claims}
    out = table.copy()
    out.index = pd.MultiIndex.from_tuples([(labels.get(c, c), readable_comparison(k)) for c, k in out.index],
                                          names=out.index.names)
    return out


def readable_comparison(text: str) -> str:
    """A comparison string (``"knn_ridge > ols (PCC, valid)"``) with each model id replaced by its
    readable name (:data:`stlib.pl.MODEL_LABELS`).

    Parameters
    ----------
    text
        A comparison as the verdict stores it.

    Returns
    -------
    str
        The same comparison for reading.
    """
    from stlib.pl._labels import MODEL_LABELS

    return _model_ids().sub(lambda m: MODEL_LABELS[m.group(1)], str(text))


@functools.lru_cache(maxsize=1)
def _model_ids() -> re.Pattern[str]:
    """One pattern matching any model id of :data:`stlib.pl.MODEL_LABELS` as a whole word (longest first)."""
    from stlib.pl._labels import MODEL_LABELS

    return re.compile(r"(?<![\w.])(" + "|".join(sorted(map(re.escape, MODEL_LABELS), key=len, reverse=True)) + r")(?![\w.])")

