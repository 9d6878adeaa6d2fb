"""The command layer: every subcommand is a `Command`, one error boundary words failures, pass-through is declared."""

from __future__ import annotations

import argparse
import ast
import errno
import os
from pathlib import Path

import pytest

import contdepth.cli.parser as cli_parser
from contdepth.cli import Command, CommandError, build_parser, main
from contdepth.cli.errors import os_error_message
from contdepth.data import DataError
from contdepth.runs.lock import FolderLocked

PACKAGE = Path(__file__).resolve().parents[1] / "contdepth"


def _fake(monkeypatch, fail: BaseException | None = None, **options) -> list[argparse.Namespace]:
    """Make `fake` the only command; it records its arguments and raises ``fail``."""
    seen: list[argparse.Namespace] = []

    def run(args: argparse.Namespace) -> int:
        seen.append(args)
        if fail is not None:
            raise fail
        return 0

    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--flag")

    command = Command("fake", "a command for tests", configure, run, **options)
    monkeypatch.setattr(cli_parser, "load_commands", lambda: [command])
    return seen


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


@pytest.mark.parametrize(
    "fail, code, line",
    [
        (
            DataError("data/cifar-10-batches-py does not exist;\n  pass --download"),
            2,
            "does not exist; pass --download",
        ),
        (ValueError("unknown scheme 'nope'; choose one of euler, rk4"), 2, "unknown scheme 'nope'; choose one of"),
        (FolderLocked("runs/x is in use by another contdepth train (process 12)"), 2, "in use by another"),
        (CommandError("a budget of 1 min is too small", code=1), 1, "a budget of 1 min is too small"),
        (OSError(errno.EACCES, os.strerror(errno.EACCES), "runs/x/config.json"), 2, "Permission denied (runs/x/"),
        (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "runs/x/ckpt.pt"), 1, "No space left on device (runs/x/"),
        (FileNotFoundError("no run in runs/x: it holds no config.json"), 2, "no run in runs/x: it holds no config"),
    ],
)
def test_a_failure_inside_a_command_is_one_line_with_its_exit_code(monkeypatch, capsys, fail, code, line):
    _fake(monkeypatch, fail)
    assert main(["fake"]) == code
    err = _one_line(capsys)
    assert err.startswith("contdepth fake: error: ") and line in err, err


def test_an_os_error_ends_with_the_commands_hint(monkeypatch, capsys):
    _fake(
        monkeypatch, PermissionError(errno.EACCES, os.strerror(errno.EACCES), "W"), os_error_hint="choose another --out"
    )
    assert main(["fake"]) == 2
    assert _one_line(capsys) == "contdepth fake: error: Permission denied (W); choose another --out"


def test_a_bug_keeps_its_traceback(monkeypatch):
    _fake(monkeypatch, ZeroDivisionError("a bug"))
    with pytest.raises(ZeroDivisionError):
        main(["fake"])


def test_os_error_message_has_one_spelling():
    err = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "runs/x/checkpoint.pt")
    assert os_error_message(err) == "No space left on device (runs/x/checkpoint.pt)"
    assert os_error_message(err, filename=False) == "No space left on device"
    assert os_error_message(FileNotFoundError("no run in x")) == "no run in x"


def test_pass_through_words_go_to_a_command_that_declares_them(monkeypatch):
    seen = _fake(monkeypatch, passthrough=True)
    assert main(["fake", "--flag", "a", "--", "--epochs", "1"]) == 0
    assert seen[-1].passthrough == ["--epochs", "1"] and seen[-1].flag == "a"
    assert main(["fake"]) == 0 and seen[-1].passthrough == []  # a fresh parse: nothing is left from the last one


def test_a_command_that_declares_no_pass_through_refuses_the_words(monkeypatch, capsys):
    seen = _fake(monkeypatch)
    with pytest.raises(SystemExit) as stop:
        main(["fake", "--", "--epochs", "1"])
    assert stop.value.code == 2 and not seen
    assert _one_line(capsys).startswith("contdepth fake: error: unrecognized arguments: -- --epochs 1")


def test_reproduce_alone_declares_pass_through():
    commands = build_parser().commands
    assert {name for name, (command, _) in commands.items() if command.passthrough} == {"reproduce"}
    assert set(commands) == {"demo", "train", "eval", "models", "analyze", "reproduce"}


@pytest.mark.parametrize("words", [[], ["demo"], ["train"], ["eval"], ["models"], ["analyze"], ["reproduce"]])
def test_every_help_works(words, capsys):
    with pytest.raises(SystemExit) as stop:
        main([*words, "--help"])
    assert stop.value.code == 0 and "usage: contdepth" in capsys.readouterr().out


def _imports(path: Path) -> set[str]:
    """The modules ``path`` imports, relative imports resolved against its package."""
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_library_code_knows_nothing_of_the_command_line():
    library = [p for p in PACKAGE.rglob("*.py") if "cli" not in p.relative_to(PACKAGE).parts[:1]]
    library = [p for p in library if p.name != "__main__.py"]  # `python -m contdepth` is the command line
    assert not [p for p in library if p.name == "command.py"]
    users = [
        str(p) for p in library if any(m == "contdepth.cli" or m.startswith("contdepth.cli.") for m in _imports(p))
    ]
    assert users == []
