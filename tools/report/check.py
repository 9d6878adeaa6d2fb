"""Rewrite the marked blocks of the pages, or check that they hold what the result files give."""

from __future__ import annotations

import difflib
from pathlib import Path

from . import freshness
from .data import Results, clear_cache
from .markers import MarkerError, body, find_blocks, replace_blocks
from .registry import PAGES, Block, load_blocks


def pages(root: Path) -> list[Path]:
    """The Markdown pages whose marked blocks are generated, in a stable order."""
    found: list[Path] = []
    for pattern in PAGES:
        found += sorted(p for p in root.glob(pattern) if p.is_file() and p not in found)
    return found


def _renderer(results: Results, blocks: dict[str, Block]) -> dict[str, str]:
    """Each block's Markdown, rendered once."""
    return {name: b.render(results) for name, b in blocks.items()}


def rewrite(root: Path) -> list[str]:
    """Rewrite every marked block under ``root``; returns the pages changed (repository paths)."""
    root = Path(root)
    clear_cache()
    blocks = load_blocks()
    rendered = _renderer(Results(root), blocks)
    changed = []
    for page in pages(root):
        text = page.read_text()
        new = replace_blocks(text, lambda name: rendered[name] if name in rendered else _unknown(name, blocks))
        if new != text:
            page.write_text(new)
            changed.append(page.relative_to(root).as_posix())
    return changed


def check(root: Path) -> list[str]:
    """One line per problem: a block that differs from its rendering, an unknown or unused block, a malformed
    marker, a stale result file or a pinned one whose block does not say so. Empty when all is well."""
    root = Path(root)
    clear_cache()
    results = Results(root)
    blocks = load_blocks()
    rendered = _renderer(results, blocks)
    problems: list[str] = []
    used: set[str] = set()
    for page in pages(root):
        rel = page.relative_to(root).as_posix()
        text = page.read_text()
        try:
            marked = find_blocks(text)
        except MarkerError as err:
            problems.append(f"{rel}: {err}")
            continue
        for m in marked:
            used.add(m.name)
            if m.name not in rendered:
                problems.append(f"{rel}: unknown block {m.name!r}; registered: {', '.join(sorted(rendered))}")
                continue
            want = body(rendered[m.name])
            if text[m.start : m.end] != want:
                problems.append(
                    f"{rel}: block {m.name!r} differs from the results{_first_difference(text[m.start : m.end], want)}"
                )
    for name in sorted(set(rendered) - used):
        problems.append(f"block {name!r} is registered but shown on no page")
    problems += freshness.stale(results)
    for name, b in sorted(blocks.items()):
        for path in b.sources:
            if path in freshness.PINNED:
                prov = freshness.provenances(results, path)[0]
                if freshness.pinned_note(path, prov).lower() not in rendered[name].lower():
                    problems.append(f"block {name!r} shows {path} without saying which code it describes")
    return problems


def _first_difference(have: str, want: str) -> str:
    for line in difflib.unified_diff(have.splitlines(), want.splitlines(), lineterm="", n=0):
        if line.startswith(("-", "+")) and not line.startswith(("---", "+++")):
            return f" (first: {line[:160]!r})"
    return ""


def _unknown(name: str, blocks: dict[str, Block]) -> str:
    raise MarkerError(f"unknown block {name!r}; registered: {', '.join(sorted(blocks))}")
