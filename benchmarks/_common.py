"""Shared by the benchmark scripts: provenance, output paths, JSON writing, table printing."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from contdepth.gitinfo import commit_and_source

ROOT = Path(__file__).resolve().parent.parent
# Default output of every benchmark: a git-ignored folder, so a documented command never rewrites the
# committed results; refreshing those is an explicit ``--out benchmarks/results`` (COMMITTED_OUT).
DEFAULT_OUT = ROOT / "runs" / "benchmarks"
COMMITTED_OUT = Path(__file__).resolve().parent / "results"


def add_out_argument(parser: argparse.ArgumentParser, what: str = "JSON and PNG") -> None:
    """``--out``: where a benchmark writes (default the git-ignored runs/benchmarks)."""
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"output folder for {what} (default runs/benchmarks, git-ignored; "
        "benchmarks/results refreshes the committed ones)",
    )


def git_commit() -> str:
    """HEAD's hash (``+dirty`` when tracked files differ), else ``$CONTDEPTH_GIT_COMMIT``, else ``unknown``."""
    return commit_and_source(ROOT)[0] or "unknown"


def device_name(device: str | torch.device = "cpu") -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"cpu: {cpu} ({os.cpu_count()} logical cores, torch threads {torch.get_num_threads()})"


def provenance(seed: int | None, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Command, commit, device, versions, seed and UTC date of this run."""
    return {
        "command": " ".join(["python3", *sys.argv]),
        "git_commit": git_commit(),
        "device": device_name(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "seed": seed,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        json.dump(payload, f, indent=1, default=float)
        f.write("\n")
    return path


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table; floats are written as given (format them first)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def setup_matplotlib():
    """pyplot with a non-interactive backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
