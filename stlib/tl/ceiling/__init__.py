"""Noise ceiling: how much of each gene's spot-to-spot variation any model could predict.

The counts at a spot are a sample of the molecules there. Part of a gene's variation over
the spots of a section is that sampling noise, which no model (image based or otherwise)
can predict. The ceiling of a gene in a section is the highest Pearson correlation any
prediction can reach with the measured target:

.. math::

    \\text{ceiling} = \\operatorname{corr}(E[y \\mid \\lambda], y) = \\sqrt{R}, \\qquad
    R = \\frac{\\operatorname{Var} E[y \\mid \\lambda]}{\\operatorname{Var} y},

where ``y`` is the target (the transformed counts, :mod:`stlib.pp`) and ``lambda`` the
spot's expected counts. ``R`` is the *reliability* of the target.

How it is estimated
-------------------
Binomial thinning (:func:`split_half`) splits each spot's counts into two halves,
``a ~ Binomial(c, 1/2)`` and ``b = c - a``. If the counts are Poisson given ``lambda``
(molecule sampling), the halves are independent Poisson with mean ``lambda / 2``: two
independent replicates of the section at half its depth. All genes are thinned, not only
the targets, so that each half's totals (its size factors) are those of a half-depth
section. Each half goes through the same target transform as the full data
(:func:`transform_counts`); the correlation of the two transformed halves over the spots is
the reliability at half depth, ``r_half``. Two corrections bring it to full depth
(``correction=``):

``"spearman-brown"``
    ``r_full = 2 r_half / (1 + r_half)``: exact when the target is linear in the counts
    (noise variance halves when the depth doubles), an approximation after ``log1p``.
``"extrapolate"`` (default)
    A second thinning level: the counts are split into four quarters (four independent
    quarter-depth replicates; six pairs), giving ``r_quarter``. The reliability's log-odds
    ``L(d) = log(R / (1 - R))`` is taken as linear in ``log(depth)`` and extrapolated from
    the quarter and half depths to the full depth: ``L(1) = 2 L(1/2) - L(1/4)``.
    Spearman-Brown is the special case of slope 1 (``L(1) = L(1/2) + log 2``); the second
    level measures the slope instead of assuming it. The slope is kept in
    ``[0, 2]`` (outside that it is noise) and the rule falls back to Spearman-Brown when
    ``r_quarter <= 0`` or when a quarter is constant (a gene too rare to be seen in every
    quarter of a section).

The simulation tests (``tests/test_ceiling.py``) quantify both against the true ceiling:
Spearman-Brown is biased upwards after ``log1p`` (mean over genes +0.01 to +0.02; +0.03 to
+0.05 at ~500 counts per spot for genes with a high contrast over the spots); the
extrapolation's mean error stays within -0.03 to +0.02 in every regime tested (Poisson and
negative binomial, 500 to 10,000 counts per spot, the three transforms), with the same
per-gene noise.

What counts as noise
--------------------
Only what thinning can remove: Poisson (molecule) sampling. Extra-Poisson variation
(negative-binomial overdispersion, i.e. spot-level biological or technical variation of
the rate) is shared by both halves and therefore counted as **signal**: the ceiling is the
correlation reachable by a predictor that knew each spot's actual rate. If that variation
is unpredictable from the image, the ceiling here is an upper bound, not the bound.

Conventions
-----------
Correlations are Pearson, per gene, over the spots of a section (or of any group of spots:
``groups=``, e.g. a split pooled over its sections; the normalisation stays per section). A
gene constant in a half (e.g. never detected in the section) has no correlation: ``r_half``,
``r_full`` and ``ceiling`` are NaN, and the draws concerned are counted in
``n_constant_draws``, never dropped silently. ``ceiling = sqrt(max(r_full, 0))``. Besides
the target transforms, ``"counts"`` (raw counts) is a space too: that of GLMs scored on
counts. The thinned copies are kept (:class:`ThinnedTargets`) so that the ceiling can be
computed on any subset or bootstrap resample of the spots (:mod:`stlib.tl.uncertainty`).
Everything is seeded; nothing is global.
"""

from stlib.tl.ceiling._counts import check_counts, split_counts, split_half, thin, transform_counts
from stlib.tl.ceiling._estimator import (
    CORRECTIONS,
    DEFAULT_CORRECTION,
    SCORE_SPACES,
    ThinnedTargets,
    extrapolate_reliability,
    noise_ceiling,
    spearman_brown,
    thinned_targets,
)
from stlib.tl.ceiling._tables import (
    ceiling_caption,
    ceiling_summary,
    ceiling_vs_depth,
    ceilings,
    depth_match,
    depth_summary,
)

__all__ = [
    "ceiling_caption",
    "ceiling_summary",
    "ceiling_vs_depth",
    "ceilings",
    "depth_match",
    "depth_summary",
    "CORRECTIONS",
    "DEFAULT_CORRECTION",
    "SCORE_SPACES",
    "ThinnedTargets",
    "check_counts",
    "noise_ceiling",
    "spearman_brown",
    "extrapolate_reliability",
    "split_counts",
    "split_half",
    "thin",
    "thinned_targets",
    "transform_counts",
]

