"""Shared by the benchmark scripts: provenance, output paths, JSON writing (resumable), table printing."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from contdepth.outputs import save_figure  # noqa: F401  (the benchmarks' figure writer)
from contdepth.provenance import provenance as contdepth_provenance
from contdepth.runs.files import RESULTS

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
    """Write ``payload`` whole or not at all: a kill mid-write leaves the previous file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "w") as f:
        json.dump(payload, f, indent=1, default=float)
        f.write("\n")
    os.replace(partial, path)
    return path


def fingerprint(run: Path) -> str:
    """Identifies a trained run: the digest of its results record (which names its weights' training)."""
    return hashlib.sha256((run / RESULTS).read_bytes()).hexdigest()[:16]


class Measurements:
    """A trained-run benchmark's JSON (``{"provenance", "setting", "models": [...]}``), written after every
    finished piece of a net (:meth:`checkpoint`) and every finished net (:meth:`add`): a stopped benchmark
    loses nothing. Rerun with the same setting, it finds in :attr:`before` the nets (by run name) measured
    before, to continue where it stopped, and keeps the nets it does not measure this time, so nets can be
    added one at a time. Each net records the ``provenance`` of the command that measured it (the file's
    own is the latest command's) and ``complete``, whether all its rows are in."""

    def __init__(self, path: Path, setting: str, seed: int | None, replace: bool = False) -> None:
        self.path = path
        self.before: dict[str, dict] = {}
        try:
            old = json.loads(path.read_text())
        except FileNotFoundError:
            old = {}
        except (OSError, ValueError) as e:
            if not replace:
                raise SystemExit(
                    f"{path.name}: {path} cannot be read ({e}); move it away, or pass --replace to start it anew"
                ) from None
            old = {}
        if isinstance(old, dict) and old.get("models") and not replace:
            if old.get("setting") != setting:
                raise SystemExit(
                    f"{path.name}: {path} holds nets measured in another setting ({old.get('setting')!r}, "
                    f"now {setting!r}); pass another --out, or --replace to start it anew"
                )
            for net in old["models"]:  # files written before nets carried their own provenance
                self.before[net["run"]] = {"provenance": old.get("provenance"), "complete": False, **net}
        self.results: dict[str, Any] = {"provenance": provenance(seed), "setting": setting, "models": []}
        self._nets: dict[str, dict] = dict(self.before)

    def _write(self) -> None:
        self.results["models"] = list(self._nets.values())
        write_json(self.path, self.results)

    def latest(self, run: str) -> dict | None:
        """The net ``run`` as written last (this command's rows included), or None."""
        return self._nets.get(run)

    def checkpoint(self, net: dict) -> None:
        """Write ``net``, still being measured, with the nets so far."""
        self._nets[net["run"]] = {**net, "provenance": self.results["provenance"], "complete": False}
        self._write()

    def add(self, net: dict, measured: str) -> None:
        """Write ``net``, measured in full, with the nets so far. A net that was complete before and whose
        ``net[measured]`` (its measurements: rows, laws) is unchanged keeps the provenance that measured it."""
        old = self.before.get(net["run"])
        same = (
            old is not None and old.get("complete") and _unordered(old.get(measured)) == _unordered(net.get(measured))
        )
        prov = old["provenance"] if same and old is not None else self.results["provenance"]
        self._nets[net["run"]] = {**net, "provenance": prov, "complete": True}
        self._write()

    def finish(self, markdown: str) -> None:
        self.results["markdown"] = markdown
        self._write()


def add_replace_argument(parser: argparse.ArgumentParser) -> None:
    """``--replace``: start the JSON anew instead of continuing it (needed when the setting changed)."""
    parser.add_argument(
        "--replace",
        action="store_true",
        help="discard the nets already in the output JSON instead of continuing it and keeping them",
    )


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


def _unordered(measurements: Any) -> Any:
    """Rows as a multiset: a rerun may measure the same rows in another order (``--verdicts-first``)."""
    if isinstance(measurements, list):
        return sorted(json.dumps(row, sort_keys=True) for row in measurements)
    return measurements
