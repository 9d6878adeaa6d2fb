"""Whether a CIFAR folder holds the official files: each file's md5 against the published sums.

The verdict is kept beside the data, in ``<folder>/.contdepth-md5.json``, keyed by each file's size
and modification time, so later runs re-hash only a file that changed (hashing the ~180 MB of
CIFAR-10 takes about half a second). A file that differs earns one warning line, not a refusal: a
re-encoded copy (a JPEG round-trip, say) differs just as a damaged one does.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .download import file_md5
from .specs import Spec

#: md5 of the files the official archives unpack to (the sums torchvision's CIFAR readers check).
OFFICIAL_MD5: dict[str, dict[str, str]] = {
    "cifar10": {
        "data_batch_1": "c99cafc152244af753f735de768cd75f",
        "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
        "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
        "data_batch_4": "634d18415352ddfa80567beed471001a",
        "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
        "test_batch": "40351d587109b95175f43aff81a1287e",
        "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
    },
    "cifar100": {
        "train": "16019d7e3df5f24257cddd939b257f8d",
        "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
        "meta": "7973b15100ade9c7d40fb424638fde48",
    },
}
CACHE = ".contdepth-md5.json"


@dataclass(frozen=True)
class Integrity:
    """The md5 of each file of a data folder (by name) and the names that differ from the official files."""

    md5: dict[str, str]
    differs: tuple[str, ...]

    @property
    def official(self) -> bool:
        return not self.differs

    @property
    def fingerprint(self) -> str:
        """One md5 over the files' names and sums: equal for two folders holding the same files."""
        text = "".join(f"{name} {digest}\n" for name, digest in sorted(self.md5.items()))
        return hashlib.md5(text.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "official": self.official,
            "differs": list(self.differs),
            "md5": self.md5,
        }


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _write_cache(path: Path, entries: dict[str, Any]) -> None:
    """Remember the sums beside the data; a folder that cannot be written is simply hashed again next time."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)


def check(folder: Path, s: Spec, *, warn: Callable[[str], None] | None = _stderr) -> Integrity:
    """Compare the files of ``s`` in ``folder`` with the official ones (hashing only files changed since the
    verdict beside them was kept). When a file had to be hashed and some file differs, ``warn`` gets one line."""
    official = OFFICIAL_MD5.get(s.name, {})
    cache_path = folder / CACHE
    cache = _read_cache(cache_path)
    entries: dict[str, Any] = {}
    hashed = False
    for name in (*s.train_files, *s.test_files, s.meta_file):
        st = (folder / name).stat()
        kept = cache.get(name)
        if (
            isinstance(kept, dict)
            and kept.get("size") == st.st_size
            and kept.get("mtime_ns") == st.st_mtime_ns
            and isinstance(kept.get("md5"), str)
        ):
            entries[name] = kept
            continue
        entries[name] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "md5": file_md5(folder / name)}
        hashed = True
    if hashed:
        _write_cache(cache_path, entries)
    md5 = {name: str(e["md5"]) for name, e in entries.items()}
    result = Integrity(md5, tuple(name for name, digest in md5.items() if official.get(name) != digest))
    if hashed and result.differs and warn is not None:
        warn(
            f"warning: {len(result.differs)} of the {len(md5)} {s.title} files in {folder} differ from the official "
            f"ones ({', '.join(result.differs)}): a re-encoded copy (a JPEG round-trip, say) or a damaged one; "
            "results on it are not comparable with results on the official data (results.json records which "
            "copy a run used)"
        )
    return result
