"""``python -m tools.report [--check | --list]``: write or check the generated blocks of the pages."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .check import check, pages, rewrite
from .markers import MarkerError
from .registry import load_blocks

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.report", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="change nothing; exit 1 if a block or result is out of date")
    mode.add_argument("--list", action="store_true", help="the blocks, the files each reads and the pages showing it")
    args = parser.parse_args(argv)
    if args.list:
        shown: dict[str, list[str]] = {}
        from .markers import find_blocks

        for page in pages(ROOT):
            for m in find_blocks(page.read_text()):
                shown.setdefault(m.name, []).append(page.relative_to(ROOT).as_posix())
        for name, b in sorted(load_blocks().items()):
            print(f"{name}: {', '.join(b.sources)} -> {', '.join(shown.get(name, ['(no page)']))}")
        return 0
    if args.check:
        problems = check(ROOT)
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            print(
                "python -m tools.report rewrites the blocks; a stale result file needs its benchmark rerun",
                file=sys.stderr,
            )
            return 1
        print(f"all generated blocks agree with the results ({len(load_blocks())} blocks)")
        return 0
    try:
        changed = rewrite(ROOT)
    except MarkerError as err:
        print(f"python -m tools.report: error: {err}", file=sys.stderr)
        return 1
    for rel in changed:
        print(f"rewrote {rel}")
    stale = check(ROOT)
    for line in stale:
        print(line, file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
