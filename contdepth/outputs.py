"""Where output goes, checked before the work: one line when a folder cannot take the files."""

from __future__ import annotations

import os
from pathlib import Path


def unwritable(folder: str | os.PathLike[str]) -> str | None:
    """Why files cannot be written into ``folder`` (made, with its parents, where missing), or None when they can.

    Looks only (nothing is created): ``folder`` must be a folder, or the nearest folder above it that
    exists must be one that this process may write in (not on a read-only file system).
    """
    if not str(folder).strip():
        return "the folder is empty; name one"
    path = Path(folder).expanduser().absolute()
    if path.exists() and not path.is_dir():
        return f"{path} is a file, not a folder"
    nearest = next(p for p in (path, *path.parents) if p.exists())
    if not nearest.is_dir():
        return f"cannot create {path}: {nearest} is a file"
    if not os.access(nearest, os.W_OK | os.X_OK):
        what = f"{path} is" if nearest == path else f"cannot create {path}: {nearest} is"
        return f"{what} not writable (read-only file system or no permission)"
    return None
