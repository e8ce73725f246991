"""This reproduction: the analyses of the book's chapters, and the machinery that runs them.

The analyses (each a chapter's computations, tested, so that the notebooks are calls,
displays and prose):

- :mod:`stlib.book.protocol` -- every choice in which the authors' code and the sound
  protocol differ, as data, and the fits of Table I's models under one;
- :mod:`stlib.book.scoring` -- scores of fitted models: per gene, per section, with intervals;
- :mod:`stlib.book.tables` -- Table I beside the report's;
- :mod:`stlib.book.qualitative` -- the report's figures (spatial maps, clusters);
- :mod:`stlib.book.controls`, :mod:`stlib.book.ladder`, :mod:`stlib.book.cv`,
  :mod:`stlib.book.verdict`, :mod:`stlib.book.markers`, :mod:`stlib.book.beyond`,
  :mod:`stlib.book.readings` -- the controls, the ladder from the paper's protocol to the
  sound one, patient cross-validation, the verdict on the report's claims, marker genes,
  the chapters beyond the report, and the numbers the text quotes.

Running the book:

- :mod:`stlib.book.store` -- a run's artifacts (``results/<run>/``);
- :mod:`stlib.book.run` -- the pipeline (papermill; ``python -m stlib.book.run``);
- :mod:`stlib.book.provenance` -- what a run was made with;
- :mod:`stlib.book.scale` -- the scale benchmark's records.

Each is imported on first use (``st.book.ladder``).
"""

from __future__ import annotations

from stlib._lazy import lazy_submodules

#: The book's modules, ``stlib.book.<name>``.
SUBMODULES: tuple[str, ...] = (
    "protocol", "scoring", "tables", "qualitative", "controls", "ladder", "cv", "verdict", "markers", "beyond",
    "readings", "store", "run", "provenance", "scale",
)

__all__ = [*SUBMODULES]

__getattr__, __dir__ = lazy_submodules(__name__, SUBMODULES, globals())
