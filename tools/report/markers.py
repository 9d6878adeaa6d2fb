"""Marked blocks in a Markdown page: ``<!-- report:NAME -->`` ... ``<!-- /report:NAME -->``."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

OPEN = re.compile(r"^<!-- report:([A-Za-z0-9_.-]+) -->[ \t]*$", re.MULTILINE)
ANY_MARKER = re.compile(r"<!-- /?report:")


class MarkerError(ValueError):
    """A marker without its end, an end without its start, or a marker inside a block."""


@dataclass(frozen=True)
class Marked:
    """One marked block: its name and the character span of its body (between the two marker lines)."""

    name: str
    start: int
    end: int


def close_marker(name: str) -> str:
    return f"<!-- /report:{name} -->"


def find_blocks(text: str) -> list[Marked]:
    """The marked blocks of ``text`` in order; MarkerError names the first malformed one."""
    found: list[Marked] = []
    pos = 0
    while (m := OPEN.search(text, pos)) is not None:
        stray = ANY_MARKER.search(text, pos, m.start())
        if stray:
            raise MarkerError(
                f"line {_line(text, stray.start())}: a marker outside a block, or one not alone on its line"
            )
        name = m.group(1)
        end_marker = re.compile(rf"^{re.escape(close_marker(name))}[ \t]*$", re.MULTILINE)
        close = end_marker.search(text, m.end())
        if close is None:
            raise MarkerError(f"line {_line(text, m.start())}: block {name!r} is not closed by {close_marker(name)}")
        inner = ANY_MARKER.search(text, m.end(), close.start())
        if inner:
            raise MarkerError(f"line {_line(text, inner.start())}: a marker inside block {name!r}")
        found.append(Marked(name, m.end(), close.start()))
        pos = close.end()
    stray = ANY_MARKER.search(text, pos)
    if stray:
        raise MarkerError(f"line {_line(text, stray.start())}: a marker outside a block, or one not alone on its line")
    return found


def body(markdown: str) -> str:
    """A block's body as it stands between its markers: the Markdown framed by blank lines."""
    return "\n\n" + markdown.strip("\n") + "\n\n"


def replace_blocks(text: str, render: Callable[[str], str]) -> str:
    """``text`` with the body of every marked block replaced by ``body(render(name))``."""
    out, pos = [], 0
    for block in find_blocks(text):
        out += [text[pos : block.start], body(render(block.name))]
        pos = block.end
    return "".join(out) + text[pos:]


def _line(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1
