"""``contdepth models``: list every named model with family, depth, parameters and default scheme."""

from __future__ import annotations

import argparse
import json

from ..models.registry import available, describe
from .command import Command


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``models`` flags."""
    parser.add_argument("--json", action="store_true", help="print one JSON list instead of a table")


def run(args: argparse.Namespace) -> int:
    """Print the table (or ``--json``)."""
    rows = [describe(name) for name in available()]
    if getattr(args, "json", False):
        print(json.dumps(rows, indent=2))
        return 0
    header = f"{'name':<22} {'family':<20} {'depth':>5} {'parameters':>11}  {'scheme':<15} {'noise':<6} classes"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['name']:<22} {r['family']:<20} {r['depth']:>5} {r['params']:>11,}  "
            f"{r['scheme']:<15} {r['noise']:<6} {r['num_classes']}"
        )
    return 0


COMMAND = Command("models", "list the named models with depth, parameters and scheme", configure, run)
