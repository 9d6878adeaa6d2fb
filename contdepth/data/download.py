"""``--download``: fetch the official CIFAR python archive, check its md5, unpack it atomically.

Needs only the standard library and tqdm. An archive already in the data folder (put there by hand)
is checked and unpacked without a download.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from .specs import DataError, Spec, by_hand

CHUNK = 1 << 20  # bytes read at a time


def download(
    s: Spec,
    data_dir: Path,
    *,
    url: str | None = None,
    md5: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Make ``data_dir/<s.folder>`` from the archive at ``url`` (default ``s.url``) checked against
    ``md5`` (default ``s.md5``); returns that folder. The archive is kept in ``data_dir``. Raises
    :class:`DataError` in one line when the download fails, the checksum differs or the archive is bad."""
    url, md5 = url or s.url, md5 or s.md5
    data_dir = Path(data_dir).expanduser()
    data_dir.mkdir(parents=True, exist_ok=True)
    archive = data_dir / s.archive
    if archive.is_file():
        found = file_md5(archive)
        if found != md5:
            raise DataError(
                f"{archive} has md5 {found}, expected {md5} (truncated or another file): delete it and "
                f"run again, or {by_hand(s, data_dir)}"
            )
    else:
        _fetch(url, archive, md5, s, progress=progress, timeout=timeout)
    return _unpack(archive, s, data_dir)


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(url: str, archive: Path, md5: str, s: Spec, *, progress: bool, timeout: float) -> None:
    """Stream ``url`` into ``archive`` through a partial file, renamed only once the md5 matches."""
    partial = archive.with_name(archive.name + ".part")
    digest = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as fh:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=archive.name, disable=not progress
            ) as bar:
                for chunk in iter(lambda: response.read(CHUNK), b""):
                    fh.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError, ValueError) as err:
        partial.unlink(missing_ok=True)
        reason = getattr(err, "reason", None) or err
        raise DataError(
            f"could not download {s.title} ({reason}); to supply it by hand, {by_hand(s, archive.parent)}"
            + ("" if url == s.url else f" (tried {url})")
        ) from None
    if digest.hexdigest() != md5:
        partial.unlink(missing_ok=True)
        raise DataError(
            f"the download of {url} has md5 {digest.hexdigest()}, expected {md5} (interrupted or changed "
            f"on the server); run again, or {by_hand(s, archive.parent)}"
        )
    partial.replace(archive)


def _safe_members(tar: tarfile.TarFile, s: Spec, archive: Path) -> list[tarfile.TarInfo]:
    """The archive's members, all regular files or folders under ``s.folder`` (no links, no escapes)."""
    members = tar.getmembers()
    for m in members:
        parts = Path(m.name).parts
        if not (m.isfile() or m.isdir()) or Path(m.name).is_absolute() or ".." in parts or parts[:1] != (s.folder,):
            raise DataError(
                f"{archive} is not the {s.title} archive: it holds {m.name!r} "
                f"(expected only files under {s.folder}/); delete it and run again"
            )
    return members


def _unpack(archive: Path, s: Spec, data_dir: Path) -> Path:
    """Extract into a temporary folder beside the target, check the files, then rename into place."""
    target = data_dir / s.folder
    staging = Path(tempfile.mkdtemp(prefix=f".{s.folder}-", dir=data_dir))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                members = _safe_members(tar, s, archive)
                if hasattr(tarfile, "data_filter"):  # Python >= 3.12 (and patch releases before): strict extraction
                    tar.extractall(staging, members=members, filter="data")
                else:
                    tar.extractall(staging, members=members)
        except (tarfile.TarError, EOFError, OSError) as err:
            raise DataError(f"{archive} cannot be unpacked ({err}); delete it and run again") from None
        unpacked = staging / s.folder
        missing = [f for f in (*s.train_files, *s.test_files, s.meta_file) if not (unpacked / f).is_file()]
        if missing:
            raise DataError(
                f"{archive} lacks {', '.join(missing)} under {s.folder}/: not the {s.title} archive; "
                f"delete it and run again"
            )
        if target.exists():  # an incomplete earlier copy: replaced as a whole
            old = staging / "replaced"
            target.rename(old)
        unpacked.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
