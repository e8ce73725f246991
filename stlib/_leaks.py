"""The leaks of the authors' choices, each named once.

A leak lets what a model is scored on shape what it learns. Each has a short **label** (the
"leaks / bugs" column of every table, :meth:`stlib.book.protocol.Protocol.leaks`, a model's
``settings["leaks"]``) and a **record** (the sentence a function writes into ``uns`` beside what
it built). The keys: ``genes`` (target genes chosen on all sections, test included),
``neighbors`` (KNN features from each spot's own expression) and ``refit`` (a penalty refitted
on train + valid).
"""

from __future__ import annotations

#: Leak -> its label in tables and settings.
LABELS: dict[str, str] = {
    "genes": "genes chosen on all sections, test included",
    "neighbors": "neighbours from each spot's own expression (test included)",
    "refit": "penalty refitted on train + valid: Valid in-sample",
}

#: Leak -> the sentence recorded in ``uns`` (or ``settings``) by the function that commits it.
RECORDS: dict[str, str] = {
    "genes": "LEAK: the gene choice saw the test spots",
    "neighbors": "LEAK: built from each spot's own expression (test spots included)",
    "refit": "valid targets in the fit (refit on train + valid): the valid scores are in-sample",
}
