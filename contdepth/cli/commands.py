"""The subcommands of ``contdepth``, in the order ``contdepth --help`` lists them."""

from __future__ import annotations

import importlib

from .command import Command

# The modules of contdepth.cli that hold a subcommand, each as its ``COMMAND``.
MODULES = ("demo", "train", "eval", "models", "analyze", "reproduce")


def load_commands() -> list[Command]:
    """Every subcommand whose module this build has (one that needs a package left out of it is skipped)."""
    commands = []
    for module in MODULES:
        try:
            mod = importlib.import_module(f"{__package__}.{module}")
        except ModuleNotFoundError as err:
            if not err.name or not err.name.startswith("contdepth"):
                raise
            continue
        commands.append(mod.COMMAND)
    return commands
