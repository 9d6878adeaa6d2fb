"""Readers for CIFAR-10 (``cifar-10-batches-py``) and CIFAR-100 (``cifar-100-python``) in the
standard python (pickle) layout, the one the official archives unpack to. No torchvision needed.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .download import download as fetch
from .integrity import Integrity, check
from .specs import DATASETS, DataError, Spec, expected_layout, how_to_get, spec

__all__ = ["DATASETS", "CifarData", "DataError", "Spec", "Split", "load_cifar", "locate", "spec"]

IMAGE_SHAPE = (3, 32, 32)
IMAGE_BYTES = 3 * 32 * 32
# A pickle of the standard layout can run code when loaded: only read files you trust.


@dataclass
class Split:
    """One split: ``images`` uint8 ``(N, 3, 32, 32)`` (RGB, CHW) and ``labels`` int64 ``(N,)``."""

    images: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def head(self, n: int | None) -> Split:
        """The first ``n`` examples (all when ``n`` is None)."""
        if n is None:
            return self
        if n < 1:
            raise ValueError(f"subset size must be positive, got {n}")
        return Split(self.images[:n], self.labels[:n])

    def hold_out(self, n: int) -> tuple[Split, Split]:
        """``(rest, held)``: the last ``n`` examples held out (a validation split) and the others."""
        if not 1 <= n < len(self):
            raise ValueError(f"a held-out split needs 1 <= n < {len(self)} (the examples there are), got {n}")
        cut = len(self) - n
        return Split(self.images[:cut], self.labels[:cut]), Split(self.images[cut:], self.labels[cut:])

    def spread(self, n: int | None) -> Split:
        """``n`` examples evenly spaced through the split (all when ``n`` is None): a fair sample even
        of a split stored sorted by class, as some copies of the CIFAR test set are."""
        if n is None or n >= len(self):
            return self
        if n < 1:
            raise ValueError(f"subset size must be positive, got {n}")
        idx = torch.arange(n) * len(self) // n
        return Split(self.images[idx], self.labels[idx])


@dataclass
class CifarData:
    """A CIFAR data set read from ``root``: train and test splits, class names, normalisation."""

    name: str
    root: Path
    train: Split
    test: Split
    classes: list[str]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    integrity: Integrity | None = None  # the files' md5 against the official ones (None: not checked)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def locate(s: Spec, data_dir: str | os.PathLike) -> Path:
    """The folder holding ``s``'s files: ``data_dir/<folder>``, or ``data_dir`` itself if it is that folder."""
    root = Path(data_dir).expanduser()
    if not str(data_dir).strip():
        raise DataError("the data directory is empty; name the folder holding the data (for example --data-dir data)")
    if root.exists() and not root.is_dir():
        raise DataError(
            f"the data directory {root.resolve()} is a file, not a folder; name the folder holding {s.folder}/"
        )
    for candidate in (root / s.folder, root):
        if all((candidate / f).is_file() for f in (*s.train_files, *s.test_files, s.meta_file)):
            return candidate
    raise DataError(_not_found_message(s, root))


def _not_found_message(s: Spec, root: Path) -> str:
    folder = root / s.folder
    where = folder.resolve()
    if not root.exists():
        problem = f"{s.title} not found: the data directory {root.resolve()} does not exist."
    elif folder.is_dir():
        missing = [f for f in (*s.train_files, *s.test_files, s.meta_file) if not (folder / f).is_file()]
        problem = f"{s.title} in {where} is incomplete: missing {', '.join(missing)}."
    else:
        entries = sorted(p.name for p in root.iterdir())
        shown = ", ".join(entries[:8]) + (f", ... ({len(entries)} entries)" if len(entries) > 8 else "")
        problem = (
            f"{s.title} not found: searched {where} (no such folder; {root.resolve()} holds: {shown or 'nothing'})."
        )
        if s.archive in entries:
            problem += f" Unpack the archive first: tar xzf {root / s.archive} -C {root}"
        others = [o.title for o in DATASETS.values() if o is not s and (root / o.folder).is_dir()]
        if others:
            problem += f" It holds {', '.join(others)} instead: pick that --dataset."
    return "\n".join([problem, expected_layout(s, root), how_to_get(s, root)])


def _unpickle(path: Path, s: Spec, data_dir: Path) -> dict:
    hint = f"re-create the copy.\n{how_to_get(s, data_dir)}"
    try:
        with open(path, "rb") as fh:
            obj = pickle.load(fh, encoding="latin1")  # the original batches were pickled by python 2
    except (
        EOFError,
        pickle.UnpicklingError,
        ValueError,
        TypeError,
        AttributeError,
        ImportError,
        IndexError,
        KeyError,
        OverflowError,
        MemoryError,
    ) as err:
        raise DataError(
            f"{s.title} file {path} is truncated or corrupt ({type(err).__name__}: {err}); {hint}"
        ) from None
    except OSError as err:
        raise DataError(f"{s.title} file {path} cannot be read ({err})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{s.title} file {path} holds a {type(obj).__name__}, not a CIFAR batch dict; {hint}")
    return obj


def _read_batch(path: Path, s: Spec, data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    obj = _unpickle(path, s, data_dir)
    if "data" not in obj or s.label_key not in obj:
        raise DataError(
            f"{path} is not a {s.title} batch: it has keys {sorted(obj)}, expected 'data' and {s.label_key!r}; "
            f"{expected_layout(s, data_dir)}"
        )
    hint = f"re-create the copy.\n{how_to_get(s, data_dir)}"
    try:
        data = np.asarray(obj["data"])
        labels = np.asarray(obj[s.label_key])
    except (TypeError, ValueError) as err:  # ragged or mixed contents
        raise DataError(f"{path} is corrupt: its 'data' or {s.label_key!r} is not an array ({err}); {hint}") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != IMAGE_BYTES:
        raise DataError(
            f"{path} is truncated or corrupt: 'data' is {data.dtype} {data.shape}, expected uint8 "
            f"(N, {IMAGE_BYTES}) (N images of 3x32x32); {hint}"
        )
    if labels.ndim != 1 or not (labels.dtype.kind in "iu" or (labels.size == 0 and labels.dtype.kind == "f")):
        raise DataError(
            f"{path} is corrupt: {s.label_key!r} is {labels.dtype} {labels.shape}, expected one "
            f"integer label per image; {hint}"
        )
    counts = {"images": len(data), s.label_key: len(labels)}
    if "filenames" in obj and hasattr(obj["filenames"], "__len__"):
        counts["filenames"] = len(obj["filenames"])
    if len(set(counts.values())) != 1:
        raise DataError(
            f"{path} is truncated or corrupt: it holds {', '.join(f'{v} {k}' for k, v in counts.items())}; {hint}"
        )
    if not len(data):
        raise DataError(f"{path} holds no images; {hint}")
    labels = labels.astype(np.int64)
    if labels.min() < 0 or labels.max() >= s.num_classes:
        raise DataError(
            f"{path}: labels outside 0..{s.num_classes - 1} (found {labels.min()}..{labels.max()}); is this {s.title}?"
        )
    return data, labels


def _read_split(folder: Path, files: tuple[str, ...], s: Spec, data_dir: Path) -> Split:
    parts = [_read_batch(folder / f, s, data_dir) for f in files]
    data = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    images = torch.from_numpy(data).reshape(-1, *IMAGE_SHAPE)  # rows are R(1024) G(1024) B(1024)
    return Split(images, torch.from_numpy(labels))


def _empty() -> Split:
    return Split(torch.empty(0, *IMAGE_SHAPE, dtype=torch.uint8), torch.empty(0, dtype=torch.int64))


def _read_classes(folder: Path, s: Spec, data_dir: Path) -> list[str]:
    meta = _unpickle(folder / s.meta_file, s, data_dir)
    names = meta.get(s.names_key)
    if (
        not isinstance(names, (list, tuple, np.ndarray))
        or len(names) != s.num_classes
        or not all(isinstance(n, (str, bytes, np.str_)) for n in names)
    ):
        raise DataError(
            f"{folder / s.meta_file} has no list of {s.num_classes} class names under {s.names_key!r} "
            f"(keys: {sorted(meta)}); {expected_layout(s, data_dir)}"
        )
    return [str(n) for n in names]


def load_cifar(
    name: str, data_dir: str | os.PathLike, *, download: bool = False, train: bool = True, quiet: bool = False
) -> CifarData:
    """Read CIFAR-10/100 from ``data_dir`` (which holds ``cifar-10-batches-py`` or ``cifar-100-python``).

    ``download=True`` fetches a missing copy (the official archive, md5-checked); ``train=False`` skips reading the
    training split (left empty), for evaluation; ``quiet=True`` keeps the warning below to itself (the other
    processes of a distributed run, whose first process says it). Raises :class:`DataError` with
    the directory searched, the expected layout and how to get it when the data is missing or bad.
    The files are compared with the official ones (:mod:`.integrity`): a copy that differs is read, with
    one warning line on stderr the first time, and ``integrity`` says which copy it is.
    """
    s = spec(name)
    root = Path(data_dir).expanduser()
    try:
        folder = locate(s, root)
    except DataError:
        if not download:
            raise
        fetch(s, root)
        folder = locate(s, root)
    train_split = _read_split(folder, s.train_files, s, root) if train else _empty()
    test_split = _read_split(folder, s.test_files, s, root)
    classes = _read_classes(folder, s, root)
    try:
        integrity = (
            check(folder, s, warn=None) if quiet else check(folder, s)
        )  # files that read well: are they the official ones?
    except OSError as err:
        raise DataError(f"{s.title} in {folder} cannot be read ({err})") from None
    return CifarData(
        name=s.name,
        root=folder,
        train=train_split,
        test=test_split,
        classes=classes,
        mean=s.mean,
        std=s.std,
        integrity=integrity,
    )
