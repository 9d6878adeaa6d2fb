"""``--download``: fetch CIFAR through torchvision, imported only when asked for."""
from __future__ import annotations

from pathlib import Path

from .cifar import DataError, Spec, expected_layout, how_to_get


def download(s: Spec, data_dir: Path) -> None:
    """Download and unpack ``s`` into ``data_dir/<folder>`` with torchvision (md5-checked by it)."""
    try:
        import torchvision.datasets as tvd
    except ImportError as err:
        raise DataError(
            f"--download needs torchvision, which does not import here ({err}); install it "
            f"(pip install torchvision, or contdepth[vision]) or provide the data yourself.\n"
            f"{expected_layout(s, data_dir)}\n{how_to_get(s, data_dir, mention_download=False)}"
        ) from None
    cls = {"cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100}[s.name]
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        for train in (True, False):
            cls(root=str(data_dir), train=train, download=True)
    except Exception as err:  # network errors, md5 mismatches: torchvision raises many kinds
        raise DataError(f"downloading {s.title} into {data_dir} failed: {err}\n{how_to_get(s, data_dir)}") from None
