"""The ``contdepth`` command line: one module per subcommand, each a :class:`Command`.

The library packages know nothing of it. A command builds its parser and runs; it raises its failures,
and :func:`main` says each as one line, ``contdepth COMMAND: error: ...``, with its exit code.
"""

from __future__ import annotations

from .command import Command
from .entry import main
from .errors import CommandError
from .parser import build_parser

__all__ = ["Command", "CommandError", "build_parser", "main"]
