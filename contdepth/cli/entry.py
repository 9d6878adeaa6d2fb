"""``contdepth``'s entry point: parse, run the command, and say any failure as one line (the error boundary)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from .errors import failure_of
from .parser import build_parser, unknown_flags_message


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``contdepth ARGV...``; returns the exit code (0 done, 1 failed, 2 usage error, 130 interrupted).

    The one error boundary: a command's :class:`~contdepth.cli.errors.CommandError`, the package's own errors
    about its input and OS errors become ``contdepth COMMAND: error: ...`` on one line of stderr.
    """
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    passthrough: list[str] = []
    if "--" in words:  # words after `--` go to commands that pass them on (reproduce -> train)
        cut = words.index("--")
        words, passthrough = words[:cut], words[cut + 1 :]
    args, extras = parser.parse_known_args(words)
    if args.command is None:
        if extras:
            parser.error(unknown_flags_message(parser, extras))
        parser.print_help()
        return 2
    command, command_parser = parser.commands[args.command]
    if extras:  # worded by the subcommand (`contdepth train: error: ...`), which knows its flags
        command_parser.error(unknown_flags_message(command_parser, extras))
    if command.passthrough:
        args.passthrough = passthrough
    elif passthrough:
        command_parser.error(f"unrecognized arguments: -- {' '.join(passthrough)}")
    try:
        return int(command.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`contdepth models | head`): stop quietly
        _silence_stdout()
        return 1
    except Exception as err:
        failure = failure_of(err, command.os_error_hint)
        if failure is None:  # a bug: its traceback
            raise
        print(f"contdepth {command.name}: error: {failure.message}", file=sys.stderr)
        return failure.code


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # a stdout without a file descriptor
        pass
