"""``contdepth models``: list every named model with family, depth, parameters and default scheme."""

from __future__ import annotations

import argparse
import json

from ..models.registry import available, describe
from ..pretrained import pretrained_runs
from .command import Command


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``models`` flags."""
    parser.add_argument("--json", action="store_true", help="print one JSON list instead of a table")
    parser.add_argument(
        "--pretrained",
        action="store_true",
        help="list the trained nets the project ships (model.tag), with the run and test error of each",
    )


def run(args: argparse.Namespace) -> int:
    """Print the table (or ``--json``)."""
    if getattr(args, "pretrained", False):
        return _print_pretrained(args)
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


def _print_pretrained(args: argparse.Namespace) -> int:
    """The table of the shipped trained nets (or ``--json``); ``*`` marks a model's default."""
    rows = [r.row() for r in pretrained_runs()]
    if getattr(args, "json", False):
        print(json.dumps(rows, indent=2))
        return 0
    header = f"{'name':<42} {'test error %':>12}  {'images':>6}  {'scheme':<6} {'noise':<7} run"
    print(header)
    print("-" * len(header))
    for r in rows:
        name = r["name"] + (" *" if r["default"] else "")
        print(
            f"{name:<42} {r['test_error']:>12.2f}  {r['test_images']:>6}  {r['scheme']:<6} "
            f"{r['noise'] or 'none':<7} results/{r['run']}"
        )
    print("* the model's default: `cd.models.get(model, pretrained=True)`, `contdepth eval --pretrained model`")
    return 0


COMMAND = Command("models", "list the named models with depth, parameters and scheme", configure, run)
