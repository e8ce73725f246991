"""Where a data set's files come from: a local mirror, the download cache, or the public origin.

A data set whose ``origin`` is local (``local``: the manifest's folder, or a folder path) is
used in place, each file verified against its sha256 when the manifest gives one. Otherwise, in
order of precedence:

1. a local mirror: ``$STLIB_DATA_MIRROR/<mirror_subdir>/<path>`` (CI and the developers'
   machines point this at ``../shared/data``); files are used in place, verified against the
   manifest's sha256;
2. the download cache ``$STLIB_DATA_DIR`` (default: pooch's OS cache for ``stlib``), filled
   from the public origin with :func:`pooch.retrieve` (progress bar, checksum verification).

A data set published as one zip has an ``archive:`` entry (``{url, fname, sha256 (or null),
marker}``): the mirror may hold the extracted tree (``marker`` present) or the zip itself;
otherwise the zip is downloaded and unpacked with :class:`pooch.Unzip`.

A file may also carry its git blob id (``git_blob``: the SHA-1 git gives the file in the
upstream repository, ``sha1(b"blob <size>\\0" + bytes)``; a manifest gives it for files whose
sha256 is not known offline). A file is verified by its sha256 when known, else by its blob id.

A gated origin says so in the manifest (``auth: huggingface``, e.g. HEST-1k): its downloads carry
the user's Hugging Face token (``$HF_TOKEN``, else the file ``huggingface-cli login`` writes,
``$HF_HOME/token``); without one, a :class:`~stlib.errors.DataError` says how to get access before
any download starts.

A checksum mismatch is a :class:`~stlib.errors.ChecksumError` naming the file (and both ids); a
failed download a :class:`~stlib.errors.DataError` naming the URL and how to work offline.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from stlib._utils import sha256_file
from stlib.errors import ChecksumError, DataError

if TYPE_CHECKING:  # pragma: no cover
    from stlib.io._manifest import Manifest

log = logging.getLogger("stlib.io.registry")

ENV_MIRROR = "STLIB_DATA_MIRROR"
ENV_DATA_DIR = "STLIB_DATA_DIR"
ENV_HF_TOKEN = "HF_TOKEN"

__all__ = ["ENV_DATA_DIR", "ENV_MIRROR", "cache_root", "fetch", "git_blob_sha1", "hf_token", "local_root",
           "mirror_root", "verify_file"]

def mirror_root(ds: Manifest) -> Path | None:
    """The mirror folder of this data set, if ``$STLIB_DATA_MIRROR`` is set."""
    env = os.environ.get(ENV_MIRROR)
    return Path(env).expanduser() / ds.mirror_subdir if env else None

def local_root(ds: Manifest) -> Path | None:
    """The folder of a data set whose ``origin`` is local (``local``, ``.`` or a folder path,
    relative to the manifest): its files are used in place, verified; ``None`` for a URL."""
    origin = str(ds.origin).strip()
    if "://" in origin:
        return None
    folder = ds.manifest_path.parent if origin in ("local", "") else Path(origin).expanduser()
    if not folder.is_absolute():
        folder = ds.manifest_path.parent / folder
    return folder.resolve()


def cache_root(ds: Manifest) -> Path:
    """Download cache of this data set."""
    import pooch

    base = os.environ.get(ENV_DATA_DIR)
    name = (ds.extra.get("subset") or {}).get("of", ds.name)  # a subset shares the whole data set's cache
    return (Path(base).expanduser() if base else Path(pooch.os_cache("stlib"))) / name

def fetch(ds: Manifest, *, progress: bool = True, files: Sequence[str] | None = None) -> Path:
    """Make every file available locally, verified, and return the data-set root.

    Files in the mirror are used in place; others are downloaded into the cache. A
    checksum mismatch raises :class:`~stlib.errors.ChecksumError` naming the file.
    ``files`` restricts this to some manifest files (see :meth:`~stlib.io._manifest.Manifest.files_for`). A data set with
    an ``archive`` is fetched as a whole (see :func:`_fetch_archive`).
    """
    if ds.archive is not None:
        return _fetch_archive(ds, progress)
    wanted = list(files) if files is not None else list(ds.files)
    local = local_root(ds)
    if local is not None:
        for f in _progress(wanted, progress, f"verify {ds.name}"):
            verify_file(local / f, ds.files.get(f), _blob(ds, f))
        return local
    mirror = mirror_root(ds)
    if mirror is not None and mirror.is_dir() and all((mirror / f).is_file() for f in wanted):
        for f in _progress(wanted, progress, f"verify {ds.name}"):
            verify_file(mirror / f, ds.files.get(f), _blob(ds, f))
        return mirror
    root = cache_root(ds)
    missing = [f for f in wanted if not (mirror is not None and (mirror / f).is_file()) and not (root / f).is_file()]
    downloader = _downloader(ds, progress) if missing else None
    for f in _progress(wanted, progress, f"fetch {ds.name}"):
        src = mirror / f if mirror is not None else None
        if src is not None and src.is_file():
            verify_file(src, ds.files.get(f), _blob(ds, f))
            dest = root / f
            dest.parent.mkdir(parents=True, exist_ok=True)
            if not dest.exists():
                dest.symlink_to(src.resolve())
            continue
        _download(ds, f, root, progress, downloader)
    return root


def hf_token() -> str | None:
    """The user's Hugging Face token: ``$HF_TOKEN``, else ``$HF_HOME/token`` (default
    ``~/.cache/huggingface/token``, written by ``huggingface-cli login``); ``None`` when neither."""
    tok = os.environ.get(ENV_HF_TOKEN, "").strip()
    if tok:
        return tok
    home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface").expanduser()
    f = home / "token"
    return (f.read_text().strip() or None) if f.is_file() else None


def _downloader(ds: Manifest, progress: bool):
    """pooch's HTTP downloader with the Hugging Face token for a gated origin (``auth: huggingface``);
    ``None`` (pooch's default) for any other origin. No token: a :class:`DataError` saying what to do."""
    if str(ds.extra.get("auth") or "").lower() != "huggingface":
        return None
    import pooch

    tok = hf_token()
    if not tok:
        raise DataError(ds.origin, f"{ds.name} is a gated Hugging Face data set: accept its terms on its page, create "
                        f"an access token and set {ENV_HF_TOKEN} (or run `huggingface-cli login`); or download the "
                        f"files yourself and set {ENV_MIRROR} to the folder holding {ds.mirror_subdir}/"
                        + (f". {' '.join(str(ds.extra['access']).split())}" if ds.extra.get("access") else ""))
    return pooch.HTTPDownloader(progressbar=progress, headers={"Authorization": f"Bearer {tok}"})

def _download(ds: Manifest, relpath: str, root: Path, progress: bool, downloader=None) -> Path:
    import pooch

    dest = root / relpath
    known = ds.files.get(relpath)
    blob = _blob(ds, relpath)
    if dest.is_file():
        verify_file(dest, known, blob)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    url = ds.origin.rstrip("/") + "/" + relpath
    try:
        pooch.retrieve(
            url,
            known_hash=f"sha256:{known}" if known else None,
            fname=dest.name,
            path=dest.parent,
            progressbar=progress,
            **({"downloader": downloader} if downloader is not None else {}),
        )
    except ValueError as exc:  # pooch's hash mismatch
        raise ChecksumError(url, f"checksum mismatch after download ({exc})") from None
    except Exception as exc:  # network errors: name the file
        raise DataError(url, f"download failed ({type(exc).__name__}: {exc}); "
                        f"set {ENV_MIRROR} to a local copy to work offline") from None
    if not known and blob:  # no sha256 known: the git blob id decides; a wrong file is not kept
        try:
            verify_file(dest, None, blob)
        except ChecksumError:
            dest.unlink(missing_ok=True)
            raise
    return dest

def _archive_marker_root(ds: Manifest, folder: Path) -> Path | None:
    marker = str((ds.archive or {}).get("marker") or "")
    if marker and (folder / marker).is_file():
        return folder
    name = Path(marker).name if marker else None
    if name and (folder / name).is_file():
        return folder
    return None

def _fetch_archive(ds: Manifest, progress: bool) -> Path:
    """Mirror (extracted tree, or the zip) first, then the cache, then download + unzip."""
    import pooch

    arc = ds.archive or {}
    url = str(arc.get("url") or ds.origin)
    fname = str(arc.get("fname") or url.rstrip("/").rsplit("/", 1)[-1])
    known = arc.get("sha256") or None
    mirror = mirror_root(ds)
    if mirror is not None and mirror.is_dir():
        if _archive_marker_root(ds, mirror) is not None:
            return mirror
        if (mirror / fname).is_file():
            verify_file(mirror / fname, known)
            dest = cache_root(ds) / f"{fname}.unzip"
            if _archive_marker_root(ds, dest) is None:
                _unzip(mirror / fname, dest)
            return dest
    root = cache_root(ds)
    dest = root / f"{fname}.unzip"
    zpath = root / fname
    if _archive_marker_root(ds, dest) is not None and (zpath.is_file() or not known):
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
                        f"set {ENV_MIRROR} to a folder holding {ds.mirror_subdir}/{fname} "
                        "or its extracted contents to work offline") from None
    if not known and zpath.is_file():
        log.warning("%s: downloaded %s without a known checksum; its sha256 is %s -- record it as "
                    "archive.sha256 in %s", ds.name, fname, sha256_file(zpath), ds.manifest_path.name)
    if _archive_marker_root(ds, dest) is None:
        raise DataError(zpath, f"archive does not contain {arc.get('marker')!r}")
    return dest


def _unzip(zpath: Path, dest: Path) -> None:
    import pooch

    try:
        pooch.Unzip(extract_dir=str(dest))(str(zpath), "download", None)
    except Exception as exc:  # zipfile.BadZipFile, truncated archives
        raise DataError(zpath, f"cannot unpack the archive ({type(exc).__name__}: {exc})") from None


def _progress(items: Sequence[str], show: bool, desc: str):
    from tqdm import tqdm

    return tqdm(items, desc=desc, disable=not show, leave=False)


def _blob(ds: Manifest, relpath: str) -> str | None:
    return (getattr(ds, "git_blobs", None) or {}).get(relpath)


def git_blob_sha1(path: str | os.PathLike[str], chunk: int = 1 << 22) -> str:
    """The git blob id of a file: hex SHA-1 over ``b"blob <size>\\0"`` and the file's bytes (what
    ``git hash-object`` prints, and the id a repository's tree gives the file)."""
    p = Path(path)
    try:
        size = p.stat().st_size
        h = hashlib.sha1(b"blob %d\0" % size)
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(chunk), b""):
                h.update(block)
    except FileNotFoundError:
        raise DataError(p, "missing file") from None
    except IsADirectoryError:
        raise DataError(p, "a folder, not a file") from None
    return h.hexdigest()


def verify_file(path: Path, sha256: str | None, git_blob: str | None = None) -> None:
    """Check a file exists and, when a checksum is known, that it matches: the sha256 when known,
    else the git blob id (:func:`git_blob_sha1`). A mismatch is a :class:`ChecksumError` naming the
    file and both ids."""
    if not path.is_file():
        raise DataError(path, "missing file")
    if sha256:
        got = sha256_file(path)
        if got != sha256:
            raise ChecksumError(path, f"checksum mismatch: expected sha256 {sha256}, got {got}")
    elif git_blob:
        got = git_blob_sha1(path)
        if got != git_blob.lower():
            raise ChecksumError(path, f"checksum mismatch: expected git blob id {git_blob}, got {got} "
                                      "(not the file of the pinned upstream commit: a changed or damaged copy)")
