"""What each CIFAR variant is: files, layout, archive and checksum, statistics; and how to get it.

A leaf module: the reader (``cifar.py``) and the downloader (``download.py``) both import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PAGE = "https://www.cs.toronto.edu/~kriz/cifar.html"  # the data sets' page; the archives sit beside it


class DataError(RuntimeError):
    """The data set is missing, unreadable or not in the expected layout (message says how to fix it)."""


@dataclass(frozen=True)
class Spec:
    """Where one CIFAR variant keeps what, and its per-channel statistics (of the train split, in [0, 1])."""

    name: str
    title: str
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: str
    names_key: str
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    archive: str
    md5: str  # of the archive, as the data set's page gives it

    @property
    def url(self) -> str:
        return f"{PAGE.rsplit('/', 1)[0]}/{self.archive}"


DATASETS: dict[str, Spec] = {
    "cifar10": Spec(
        "cifar10",
        "CIFAR-10",
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        "batches.meta",
        "labels",
        "label_names",
        10,
        (0.4914, 0.4822, 0.4465),
        (0.2470, 0.2435, 0.2616),
        "cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a",
    ),
    "cifar100": Spec(
        "cifar100",
        "CIFAR-100",
        "cifar-100-python",
        ("train",),
        ("test",),
        "meta",
        "fine_labels",
        "fine_label_names",
        100,
        (0.5071, 0.4865, 0.4409),
        (0.2673, 0.2564, 0.2762),
        "cifar-100-python.tar.gz",
        "eb9058c3a382ffc7106e4002c42a8d85",
    ),
}


def spec(name: str) -> Spec:
    """The spec of data set ``name`` (``cifar10`` or ``cifar100``)."""
    key = name.lower().replace("-", "")
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    return DATASETS[key]


def by_hand(s: Spec, data_dir: Path) -> str:
    """How to supply ``s`` without a network download, in one sentence."""
    return (
        f"fetch {s.url} (md5 {s.md5}) by other means into {data_dir} and run again with --download "
        f"(it unpacks it), or unpack it yourself: tar xzf {data_dir / s.archive} -C {data_dir}"
    )


def how_to_get(s: Spec, data_dir: Path) -> str:
    """Lines telling the user how to obtain ``s`` in the standard layout under ``data_dir``."""
    return f"Get it with --download (the official archive from {PAGE}), or {by_hand(s, data_dir)}"


def expected_layout(s: Spec, data_dir: Path) -> str:
    files = [*s.train_files, *s.test_files, s.meta_file]
    return f"Expected the standard python layout: {data_dir / s.folder}/{{{', '.join(files)}}}"
