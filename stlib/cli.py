"""Command line: ``stlib datasets``, ``stlib fetch <dataset>``, ``stlib summary <dataset>``.

Examples
--------
.. code-block:: console

    $ stlib datasets
    $ STLIB_DATA_MIRROR=../shared/data stlib summary her2st-demo
"""

from __future__ import annotations

import argparse
import sys

from stlib.errors import DataError, SplitError


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``stlib`` command."""
    parser = argparse.ArgumentParser(prog="stlib", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("datasets", help="list the registered data sets")
    for name, help_ in (("fetch", "download (or verify the mirror of) a data set"),
                        ("summary", "fetch a data set and print a per-section summary")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("dataset", help="registered name (see 'stlib datasets') or manifest path")
        p.add_argument("--sections", nargs="*", default=None, help="only these sections")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    from stlib.io.registry import available_datasets, load_dataset

    try:
        if args.cmd == "datasets":
            for name in available_datasets():
                ds = load_dataset(name)
                n = f"{len(ds.sections)} sections" if ds.sections else f"{len(ds.patients)} patients (sections listed in {ds.sections_from})"
                print(f"{name}\t{n}\treader={ds.reader}\t{ds.origin}")
            return 0
        ds = load_dataset(args.dataset)
        if args.cmd == "fetch":
            files = ds.files_for(args.sections) if args.sections else None
            root = ds.fetch(progress=not args.quiet, files=files)
            print(f"{ds.name}: {len(files) if files is not None else len(ds.files)} files verified in {root}")
            return 0
        from stlib.pp import section_summary

        adata = ds.read(args.sections, progress=not args.quiet)
        table = section_summary(adata)
        print(table.to_markdown() if _has_tabulate() else table.to_string())
        return 0
    except (DataError, SplitError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
