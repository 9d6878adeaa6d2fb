"""``contdepth models``: list every named model with family, depth, parameters and default scheme."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

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
    as_json = getattr(args, "json", False)
    if getattr(args, "pretrained", False):
        _print_table(
            [r.row() for r in pretrained_runs()],
            as_json,
            f"{'name':<42} {'test error %':>12}  {'images':>6}  {'scheme':<6} {'noise':<7} run",
            lambda r: (
                f"{r['name'] + (' *' if r['default'] else ''):<42} {r['test_error']:>12.2f}  "
                f"{r['test_images']:>6}  {r['scheme']:<6} {r['noise'] or 'none':<7} results/{r['run']}"
            ),
        )
        if not as_json:
            print("* the model's default: `cd.models.get(model, pretrained=True)`, `contdepth eval --pretrained model`")
        return 0
    _print_table(
        [describe(name) for name in available()],
        as_json,
        f"{'name':<22} {'family':<20} {'depth':>5} {'parameters':>11}  {'scheme':<15} {'noise':<6} classes",
        lambda r: (
            f"{r['name']:<22} {r['family']:<20} {r['depth']:>5} {r['params']:>11,}  "
            f"{r['scheme']:<15} {r['noise']:<6} {r['num_classes']}"
        ),
    )
    return 0


def _print_table(rows: list[dict], as_json: bool, header: str, line: Callable[[dict], str]) -> None:
    """``rows`` as JSON, or as a fixed-width table under ``header`` (one ``line(row)`` each)."""
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    print(header)
    print("-" * len(header))
    for r in rows:
        print(line(r))


COMMAND = Command("models", "list the named models with depth, parameters and scheme", configure, run)
