"""Shared by the benchmark scripts: provenance, output paths, JSON writing, table printing."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from contdepth.outputs import save_figure  # noqa: F401  (the benchmarks' figure writer)
from contdepth.provenance import provenance as contdepth_provenance

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


def provenance(seed: int | None, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Command, commit, device, versions, seed and UTC date of this benchmark run."""
    return contdepth_provenance(["python3", *sys.argv], seed, device, repo=ROOT)  # the scripts' checkout


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
