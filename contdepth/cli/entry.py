"""The ``contdepth`` command: one subcommand per module, each with ``configure(parser)`` and ``run(args)``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from ._checks import close_matches

# subcommand -> (module, one-line help). Modules are imported only to build their parser.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": (
        "contdepth.toy.command",
        "the stochastic-training toy of Sun, Tao and Du on built-in 2-D data (CPU, ~1 min)",
    ),
    "train": ("contdepth.train.command", "train a CIFAR classifier with any scheme"),
    "eval": ("contdepth.train.evaluate", "test accuracy of a trained run under another scheme / step count"),
    "models": ("contdepth.models.command", "list the named models with depth, parameters and scheme"),
    "analyze": (
        "contdepth.analysis.command",
        "where a network's blocks sit in its scheme's stability region (figure + JSON)",
    ),
    "reproduce": ("contdepth.studies.command", "train a paper's study (its tables) in runs that fit your time"),
}


# subcommands that take the words after `--` as ``args.passthrough`` (filled in by build_parser)
_PASSTHROUGH: set[str] = set()


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``contdepth train: error: ...``) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``contdepth`` parser; each subcommand's parser is in ``parser.subcommands[name]``."""
    parser = OneLineParser(
        prog="contdepth", description="Continuous-depth networks: ResNets as ODE/SDE discretisations."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    subcommands: dict[str, argparse.ArgumentParser] = {}
    for name, (module, help_text) in COMMANDS.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as err:
            if not err.name or not err.name.startswith("contdepth"):
                raise
            continue  # a subcommand whose module is not part of this build
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod.configure(p)
        p.set_defaults(_run=mod.run)
        subcommands[name] = p
        if getattr(mod, "TAKES_PASSTHROUGH", False):
            _PASSTHROUGH.add(name)
    parser.subcommands = subcommands  # type: ignore[attr-defined]  # read by main() to word its errors
    return parser


def _unknown_flags_message(parser: argparse.ArgumentParser, extras: list[str]) -> str:
    """``unrecognized arguments: --epoch; did you mean --epochs?`` (the close match when there is one)."""
    message = f"unrecognized arguments: {' '.join(extras)}"
    flags = [s for action in parser._actions for s in action.option_strings]
    for word in extras:
        if word.startswith("-"):
            close = close_matches(word.split("=", 1)[0], flags, cutoff=0.75)
            if close:
                return f"{message}; did you mean {close[0]}?"
    return message


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    passthrough: list[str] = []
    if "--" in words:  # words after `--` go to commands that pass them on (reproduce -> train)
        cut = words.index("--")
        words, passthrough = words[:cut], words[cut + 1 :]
    args, extras = parser.parse_known_args(words)
    if not getattr(args, "_run", None):
        if extras:
            parser.error(_unknown_flags_message(parser, extras))
        parser.print_help()
        return 2
    command_parser = parser.subcommands[args.command]  # type: ignore[attr-defined]
    if extras:  # worded by the subcommand (`contdepth train: error: ...`), which knows its flags
        command_parser.error(_unknown_flags_message(command_parser, extras))
    if args.command in _PASSTHROUGH:
        args.passthrough = passthrough
    elif passthrough:
        command_parser.error(f"unrecognized arguments: -- {' '.join(passthrough)}")
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`contdepth models | head`): stop quietly
        _silence_stdout()
        return 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # a stdout without a file descriptor
        pass
