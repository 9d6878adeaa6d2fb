"""A small random data set written in the standard CIFAR layout, for smoke runs and tests."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from .cifar import IMAGE_BYTES, spec
from .integrity import check


def write_fake_cifar(
    data_dir: str | os.PathLike, name: str = "cifar10", *, train: int = 256, test: int = 100, seed: int = 0
) -> Path:
    """Write ``train``/``test`` random images with random labels as ``data_dir/<standard folder>``.

    Images are uniform noise with a class-dependent brightness offset, so a network can learn a
    little. The train images are spread over the standard batch files. Returns the folder written.
    """
    s = spec(name)
    rng = np.random.default_rng(seed)
    folder = Path(data_dir) / s.folder
    folder.mkdir(parents=True, exist_ok=True)

    def images(labels: np.ndarray) -> np.ndarray:
        base = rng.integers(0, 192, size=(len(labels), IMAGE_BYTES))
        shift = (labels * (64 // max(1, s.num_classes // 4 + 1)))[:, None] % 64
        return (base + shift).astype(np.uint8)

    def dump(filename: str, n: int, label_name: str) -> None:
        labels = rng.integers(0, s.num_classes, size=n)
        entry = {
            "batch_label": filename,
            "data": images(labels),
            label_name: [int(v) for v in labels],
            "filenames": [f"{filename}_{i:05d}.png" for i in range(n)],
        }
        if name == "cifar100":
            entry["coarse_labels"] = [int(v) // 5 for v in labels]
        with open(folder / filename, "wb") as fh:
            pickle.dump(entry, fh, protocol=4)

    chunks = np.array_split(np.arange(train), len(s.train_files))
    for filename, idx in zip(s.train_files, chunks, strict=True):
        dump(filename, len(idx), s.label_key)
    for filename in s.test_files:
        dump(filename, test, s.label_key)
    meta = {s.names_key: [f"class{i}" for i in range(s.num_classes)]}
    with open(folder / s.meta_file, "wb") as fh:
        pickle.dump(meta, fh, protocol=4)
    check(folder, s, warn=None)  # known as not the official data from the start: no warning when it is read
    return folder
