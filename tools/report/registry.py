"""The generated blocks: name -> the result files it reads and the function that renders its Markdown.

A block is a function from :class:`~tools.report.data.Results` to Markdown, registered with
``@block(NAME, FILE, ...)`` in one of the modules of ``tools/report/blocks/``; a page shows it between
``<!-- report:NAME -->`` and ``<!-- /report:NAME -->``. The files (repository paths, globs allowed) are
what the block reads: the test copies them to check that a changed number changes the page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .data import Results

Render = Callable[[Results], str]

#: The pages whose marked blocks are generated (globs from the repository root).
PAGES = ("README.md", "docs/*.md", "benchmarks/README.md", "results/README.md")


@dataclass(frozen=True)
class Block:
    name: str
    sources: tuple[str, ...]
    render: Render


BLOCKS: dict[str, Block] = {}


def block(name: str, *sources: str) -> Callable[[Render], Render]:
    """Register the decorated function as the block ``name``, reading ``sources``."""

    def register(render: Render) -> Render:
        if name in BLOCKS:
            raise ValueError(f"block {name!r} is registered twice")
        BLOCKS[name] = Block(name, sources, render)
        return render

    return register


def load_blocks() -> dict[str, Block]:
    """Every block (importing the block modules registers them)."""
    from . import blocks  # noqa: F401

    return BLOCKS
