"""Command line: ``stlib datasets | fetch | summary | fit-model | predict``.

Examples
--------
.. code-block:: console

    $ stlib datasets
    $ STLIB_DATA_MIRROR=../shared/data stlib summary her2st-demo
    $ stlib summary my-sections.yaml                  # check your own data set (see the Data page)
    $ stlib fit-model results/default model/          # save the image-only model of a run
    $ stlib predict model/ he.jpg --um-per-px 0.5 --out he.h5ad --maps maps/   # maps of the 3 best genes
    $ stlib predict model/ he.jpg --um-per-px 0.5 --maps maps/ --genes COMP TIMP1  # genes it predicts

``stlib summary`` also shows each section's resolution (um/px and its source) and which chapters
the data set's split can run (:func:`stlib.io.check_design`). ``stlib predict`` without
``--spots`` needs the image's resolution: ``--um-per-px``, or an image that declares it (a TIFF's MPP or
resolution tags, a PNG's pHYs or a JPEG's dpi, above 1,000 px per inch), and says which it used.

A data problem (a missing, corrupt or inconsistent file; a model that does not fit the image)
prints ``error: <file>: <problem>`` and exits with status 2, never a traceback (``--debug``
shows one); input that is used but deserves a word prints ``warning: <file or section>: <problem>``.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from stlib.errors import DataError, DataWarning, SplitError


_show_warning = warnings.showwarning


def _one_line_warning(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001, ANN202
    """A :class:`DataWarning` as one line, ``warning: <where>: <problem>``; other warnings as Python shows them."""
    if issubclass(category, DataWarning):
        print(f"warning: {message}", file=sys.stderr if file is None else file)
    else:
        _show_warning(message, category, filename, lineno, file, line)


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
    p = sub.add_parser("fit-model", help="fit the image-only model of a run and save it to a folder")
    p.add_argument("results", help="a run's results folder (targets.h5ad, embeddings.h5ad), e.g. results/default")
    p.add_argument("out", help="folder to write model.json and arrays.npz to")
    p = sub.add_parser("predict", help="predict expression from an H&E image with a saved model")
    p.add_argument("model", help="a folder written by 'stlib fit-model' (or stlib.predictor.save_model)")
    p.add_argument("image", help="the full-resolution H&E image")
    p.add_argument("--spots", help="spot centres (spot_id, pixel_x, pixel_y); default: a grid over the tissue")
    p.add_argument("--um-per-px", type=float, help="the image's resolution in micrometres per pixel (default: "
                                                  "measured from --spots' pitch; without --spots it is required "
                                                  "unless the image (TIFF, PNG pHYs, JPEG dpi) declares it)")
    p.add_argument("--spot-pitch-um", type=float, help="centre-to-centre distance of --spots (default: the "
                                                      "model's, 200 for legacy ST; 100 for Visium)")
    p.add_argument("--out", help="the .h5ad to write (default: <image name>.predicted.h5ad here)")
    p.add_argument("--maps", help="folder for PNG maps of --genes over the image")
    p.add_argument("--genes", nargs="*", help="genes to map (default: the 3 best predicted on valid)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    for p in sub.choices.values():
        p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", DataWarning)
            warnings.showwarning = _one_line_warning
            return _dispatch(args)
    except (DataError, SplitError) as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # permissions, a folder where a file should be, a full disk
        if args.debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a problem no check named: still no traceback  # noqa: BLE001
        if args.debug:
            raise
        print(f"error: the input could not be used ({type(exc).__name__}: {exc}); run with --debug for the "
              "traceback and report it if the input looks right", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    from stlib.io.registry import available_datasets, load_dataset

    if args.cmd == "fit-model":
        return _fit_model(args)
    if args.cmd == "predict":
        return _predict(args)
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

    from stlib.io import check_design, resolution_table

    adata = ds.read(args.sections, progress=not args.quiet)
    table = section_summary(adata).join(resolution_table(adata))
    print(table.to_markdown() if _has_tabulate() else table.to_string())
    print()
    print(check_design(adata).describe())
    return 0


def _fit_model(args: argparse.Namespace) -> int:
    from pathlib import Path

    from stlib import predictor
    from stlib.book import store

    targets = store.load_targets(Path(args.results).resolve())
    fitted, info = predictor.fit_image_model(targets)
    out = predictor.save_model(fitted, args.out)
    print(info["grid"].round(4).to_string(index=False))
    print(f"saved {out}: {len(fitted.genes)} genes, alpha {fitted.meta['alpha']:g} (chosen on valid), "
          f"{fitted.meta['backbone']} features of a {fitted.window_um:g} um window")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from pathlib import Path

    from stlib import predictor

    from stlib.io.images import image_um_per_px

    m = predictor.load_model(args.model)
    genes = args.genes or m.best_genes(3)
    unknown = [g for g in genes if g not in m.genes]
    if unknown:  # checked before any work, so that nothing is written
        raise DataError(args.model, f"--genes: the model does not predict {unknown[:5]}; it predicts "
                                    f"{len(m.genes)} genes, its best on valid {m.best_genes(5)}")
    if args.um_per_px is None and not args.spots:
        declared = image_um_per_px(args.image)
        if declared is None:
            train = m.meta.get("um_per_px_train")
            raise DataError(args.image, "the image's resolution is unknown: without --spots give --um-per-px "
                                        "(micrometres per pixel; the model was trained on images at "
                                        f"{train if train is None else f'{train:.3g}'} um/px); the image "
                                        "declares none (an Aperio MPP, TIFF resolution tags in px/cm, or a TIFF, "
                                        "PNG or JPEG density above 1,000 px per inch)")
        print(f"resolution: {declared[0]:.4g} um/px, from {declared[1]}")
    # um_per_px None: predict_image reads the same metadata, and records it as the source
    pred = predictor.predict_image(m, args.image, spots=args.spots, um_per_px=args.um_per_px,
                                 spot_pitch_um=args.spot_pitch_um, progress=not args.quiet)
    out = Path(args.out or f"{Path(args.image).stem}.predicted.h5ad")
    out.parent.mkdir(parents=True, exist_ok=True)
    pred.write_h5ad(out)
    info = pred.uns["prediction"]
    print(f"wrote {out}: {pred.n_obs} spots x {pred.n_vars} genes ({info['spots']}; {info['um_per_px']:.3g} um/px, "
          f"{info['um_per_px_source']}; {info['seconds']:.0f} s)")
    if info["spots_file"]:
        f = info["spots_file"]
        print(f"spots file: {f['n_rows']} rows; dropped: in_tissue 0: {f['dropped_not_in_tissue']}, "
              f"in_tissue empty or not 0/1: {f['dropped_selected_missing']}")
    if info["grid"]:
        g = info["grid"]
        print(f"tissue grid: {g['n_tissue']} of {g['n_grid']} grid spots on tissue ({g['grid'][0]} x {g['grid'][1]} at "
              f"{g['pitch_px']:.1f} px; {100 * g['tissue_fraction']:.0f}% of the image is tissue)")
    if args.maps:
        for f in predictor.write_maps(pred, genes, args.maps):
            print(f"map: {f}")
    return 0


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
