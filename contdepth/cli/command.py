"""The protocol every ``contdepth`` subcommand follows: a name, a line of help, its flags and what it runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """One subcommand of ``contdepth``.

    ``configure(parser)`` adds its flags; ``run(args)`` does the work and returns the exit code. A failure is
    raised, never printed: ``contdepth.cli.main`` turns a :class:`~contdepth.cli.errors.CommandError`, the
    package's own errors and OS errors into one line, ``contdepth NAME: error: ...``, and the exit code.

    Args:
        name: the word after ``contdepth``.
        help: one line for ``contdepth --help`` and the top of ``contdepth NAME --help``.
        configure: adds the subcommand's arguments to its parser.
        run: runs it on the parsed arguments; returns the exit code (0: done).
        passthrough: it takes the words after ``--`` (``contdepth reproduce STUDY -- --epochs 1``) as
            ``args.passthrough``; other commands refuse them.
        os_error_hint: what to do about an OS error, appended to its line (``choose another --out``).
    """

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    passthrough: bool = False
    os_error_hint: str = ""
