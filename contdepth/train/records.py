"""Run-directory files: ``metrics.jsonl`` (one line per epoch), ``results.json``, ``config.json``, provenance."""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable, Optional

import torch

METRICS = "metrics.jsonl"
RESULTS = "results.json"
CONFIG = "config.json"


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON atomically (temporary file + rename)."""
    _write_atomic(Path(path), json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_metrics(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    """Rewrite ``metrics.jsonl`` with ``rows`` (after a resume it matches the checkpoint exactly)."""
    _write_atomic(Path(path), "".join(json.dumps(r) + "\n" for r in rows))


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file, then rename it over ``path``; a failed write leaves no ``.tmp``."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_config_file(path: Path) -> dict[str, Any]:
    """A run's ``config.json`` as a dict; ``ValueError`` naming the file when it is not one."""
    try:
        values = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is damaged (not JSON: {err}); delete it to use the copy of the settings "
                         "in checkpoint.pt") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path} is damaged (holds a {type(values).__name__}, not the run's settings); delete it "
                         "to use the copy of the settings in checkpoint.pt")
    return values


def read_metrics(path: str | os.PathLike) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def git_commit(where: Optional[Path] = None) -> Optional[str]:
    """The commit of the checkout holding this package (``+dirty`` with local changes), or None."""
    where = where or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu: {platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def provenance(device: torch.device, seed: int, world: int) -> dict[str, Any]:
    """Where a result came from: command line, git commit, device, versions, seed, date (UTC)."""
    return {
        "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "git_commit": git_commit(),
        "device": device_name(device),
        "processes": world,
        "torch": str(torch.__version__),
        "cuda": None if torch.version.cuda is None else str(torch.version.cuda),
        "python": platform.python_version(),
        "seed": seed,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
