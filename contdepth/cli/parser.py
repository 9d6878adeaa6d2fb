"""The ``contdepth`` argument parser: one subparser per command, errors as one line with exit code 2."""

from __future__ import annotations

import argparse
from typing import NoReturn

from .._checks import close_matches
from .command import Command
from .commands import load_commands


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``contdepth train: error: ...``) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class CommandLineParser(OneLineParser):
    """The ``contdepth`` parser, which knows each command and its subparser (``commands[name]``)."""

    commands: dict[str, tuple[Command, argparse.ArgumentParser]]


def build_parser() -> CommandLineParser:
    """The ``contdepth`` parser, with a subparser for every command of this build."""
    parser = CommandLineParser(
        prog="contdepth", description="Continuous-depth networks: ResNets as ODE/SDE discretisations."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.commands = {}
    for command in load_commands():
        p = sub.add_parser(command.name, help=command.help, description=command.help)
        command.configure(p)
        parser.commands[command.name] = (command, p)
    return parser


def unknown_flags_message(parser: argparse.ArgumentParser, extras: list[str]) -> str:
    """``unrecognized arguments: --epoch; did you mean --epochs?`` (the close match when there is one)."""
    message = f"unrecognized arguments: {' '.join(extras)}"
    flags = [s for action in parser._actions for s in action.option_strings]
    for word in extras:
        if word.startswith("-"):
            close = close_matches(word.split("=", 1)[0], flags, cutoff=0.75)
            if close:
                return f"{message}; did you mean {close[0]}?"
    return message
