"""Where output goes, checked before the work (one line when a folder cannot take the files), and how
figures are written."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any


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


def save_figure(fig: Any, path: str | os.PathLike[str], dpi: int = 110, **savefig_kwargs: Any) -> None:
    """Write a matplotlib figure to ``path`` as a 256-colour PNG.

    Plots are mostly flat colours, so the palette is not visible, and the file is about a third of
    matplotlib's RGBA one, which keeps committed figures small. Transparent parts are laid on white.
    ``OSError`` (a full disk, say) propagates as from ``fig.savefig``.
    """
    from PIL import Image  # a dependency of matplotlib

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, **savefig_kwargs)
    buffer.seek(0)
    with Image.open(buffer) as rendered:
        rgba = rendered.convert("RGBA")
    opaque = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    paletted = opaque.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    paletted.save(path, format="PNG", optimize=True)
