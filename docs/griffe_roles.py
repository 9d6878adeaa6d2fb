"""Griffe extension for the API reference: the docstrings' conventions, read as Markdown.

- reST roles (``:class:`~contdepth.Flow```), which Markdown would show verbatim, become optional
  cross-references: a link where the target is documented, else code.
- An ``Args:`` entry that describes related parameters together (``t0, t1: the interval``) is
  given to each of them, so every parameter gets its row and its type from the signature.
- Doctest examples (``>>>`` lines) become highlighted code blocks, without ``# doctest:`` directives.
- Each scheme lives in a module of its own whose docstring describes it; a scheme class without a
  docstring of its own is shown with its module's.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|data|exc|obj):`(~?)([\w.]+)(?:\(\))?`")


def _target(obj: griffe.Object, name: str) -> str:
    """The full path of ``name`` as written in ``obj``'s docstring (``Flow`` in ``contdepth`` is ``contdepth.Flow``)."""
    head, _, rest = name.partition(".")
    for scope in (obj, obj.parent):
        try:
            full = scope.resolve(head) if scope is not None else None
        except (griffe.NameResolutionError, AttributeError):
            continue
        if full:
            return f"{full}.{rest}" if rest else full
    return name


def _roles(obj: griffe.Object, text: str) -> str:
    def link(match: re.Match[str]) -> str:
        short, name = match.group(1), match.group(2)
        title = name.rsplit(".", 1)[-1] if short else name
        target = html.escape(_target(obj, name))
        return f'<autoref optional identifier="{target}"><code>{html.escape(title)}</code></autoref>'

    return ROLE.sub(link, text)


ARGS_SECTIONS = ("Args:", "Arguments:", "Parameters:", "Params:", "Keyword Args:", "Keyword Arguments:")
SHARED_ENTRY = re.compile(r"^(\s+)(\**\w+(?:,\s*\**\w+)+):(.*)$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def split_shared_entries(text: str) -> str:
    """``a, b: text`` entries of the argument sections, written out once per parameter."""
    lines = text.split("\n")
    out: list[str] = []
    section: int | None = None  # indent of the current argument section's header
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() and section is not None and _indent(line) <= section:
            section = None
        if line.strip() in ARGS_SECTIONS:
            section = _indent(line)
        match = SHARED_ENTRY.match(line) if section is not None else None
        if match is None:
            out.append(line)
            i += 1
            continue
        indent, names, first = match.group(1), match.group(2), match.group(3)
        body = [first]
        i += 1
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > len(indent)):
            if not lines[i].strip() and (i + 1 >= len(lines) or _indent(lines[i + 1]) <= len(indent)):
                break
            body.append("\n" + lines[i])
            i += 1
        for name in (n.strip() for n in names.split(",")):
            out.append(f"{indent}{name}:{''.join(body)}")
    return "\n".join(out)


DIRECTIVE = re.compile(r"\s*# doctest:.*$")


def fence_doctests(text: str) -> str:
    """Runs of ``>>>`` lines (with their continuation and output lines) as fenced ``pycon`` blocks."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        if not lines[i].lstrip().startswith(">>>"):
            out.append(lines[i])
            i += 1
            continue
        indent = lines[i][: _indent(lines[i])]
        out.append(f"{indent}```pycon")
        while i < len(lines) and lines[i].strip():
            out.append(DIRECTIVE.sub("", lines[i]))
            i += 1
        out.append(f"{indent}```")
    return "\n".join(out)


def rewrite(obj: griffe.Object, text: str) -> str:
    """``obj``'s docstring ``text`` as the reference renders it (see the module's docstring)."""
    return split_shared_entries(fence_doctests(_roles(obj, text)))


def _is_scheme_class(obj: griffe.Object) -> bool:
    module = obj.parent
    return obj.is_class and module is not None and module.path.startswith("contdepth.schemes.")


class SphinxRoles(griffe.Extension):
    """Rewrites the roles of every docstring once the package is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        objects: dict[int, griffe.Object] = {}
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if id(obj) not in objects:
                objects[id(obj)] = obj
                stack.extend(member for member in obj.members.values() if not member.is_alias)
        raw = {id(obj): obj.docstring.value for obj in objects.values() if obj.docstring is not None}
        for obj in objects.values():
            module = obj.parent
            if obj.docstring is None and _is_scheme_class(obj) and module is not None and id(module) in raw:
                obj.docstring = griffe.Docstring(raw[id(module)], parent=obj)
            if obj.docstring is not None:
                obj.docstring.value = rewrite(obj, raw.get(id(obj), obj.docstring.value))
