"""A run folder's records: ``config.json`` (the settings), ``metrics.jsonl`` (one line per epoch) and
``results.json`` (the outcome), written atomically and read back; the paths they keep, made portable."""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .files import CHECKPOINT, CONFIG, RESULTS


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON atomically (temporary file + rename)."""
    _write_atomic(Path(path), json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_metrics(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    """Rewrite ``metrics.jsonl`` with ``rows`` (after a resume it matches the checkpoint exactly)."""
    _write_atomic(Path(path), "".join(json.dumps(r) + "\n" for r in rows))


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file, then rename it over ``path``; a failed write leaves no ``.tmp`` and
    raises an ``OSError`` naming ``path`` (a full disk's says nothing of the file)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OSError(err.errno, err.strerror or str(err), str(path)) from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


#: Flags whose value is a path of the machine a run ran on (records keep them portable, see portable_path).
PATH_FLAGS = ("--out", "--data-dir")


def portable_path(path: str | os.PathLike, run_folder: str | os.PathLike) -> str:
    """``path`` as a run's records keep it, free of the machine's folders: relative to ``run_folder`` when both
    lie inside the current folder (``../../data``), else the name of its last folder alone."""
    target, base, here = (Path(os.path.abspath(Path(p).expanduser())) for p in (path, run_folder, os.curdir))
    if here in (target, *target.parents) and here in (base, *base.parents):
        return Path(os.path.relpath(target, base)).as_posix()
    return target.name


def portable_command(command: str, run_folder: str | os.PathLike) -> str:
    """A recorded command line with the values of :data:`PATH_FLAGS` made portable (``--out``: the run
    folder's name; ``--data-dir``: :func:`portable_path`)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command

    def portable(flag: str, value: str) -> str:
        return Path(os.path.abspath(value)).name if flag == "--out" else portable_path(value, run_folder)

    out: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        flag, eq, value = word.partition("=")
        if word in PATH_FLAGS and i + 1 < len(words):
            out += [word, portable(word, words[i + 1])]
            i += 2
            continue
        out.append(f"{flag}={portable(flag, value)}" if eq and flag in PATH_FLAGS else word)
        i += 1
    return shlex.join(out)


def read_config_file(path: Path) -> dict[str, Any]:
    """A run's ``config.json`` as a dict; ``ValueError`` naming the file when it is not one."""
    try:
        values = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(
            f"{path} is damaged (not JSON: {err}); delete it to use the copy of the settings in checkpoint.pt"
        ) from None
    if not isinstance(values, dict):
        raise ValueError(
            f"{path} is damaged (holds a {type(values).__name__}, not the run's settings); delete it "
            "to use the copy of the settings in checkpoint.pt"
        )
    return values


def read_metrics(path: str | os.PathLike) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


class DamagedResults(ValueError):
    """A ``results.json`` that cannot be read (the message says why)."""


def read_dict(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when the file is missing, cannot be read or holds something else."""
    try:
        value = json.loads(Path(path).read_bytes().decode())
    except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    return value if isinstance(value, dict) else None


def read_results(folder: str | os.PathLike[str], *, strict: bool = False) -> dict[str, Any] | None:
    """The run's ``results.json`` as a dict; None when there is none.

    A file that cannot be read (not JSON, not an object) is None too, or with ``strict`` a
    :class:`DamagedResults` saying why in a few words.
    """
    path = Path(folder) / RESULTS
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_bytes().decode())
    except (OSError, ValueError) as err:
        if not strict:
            return None
        why = str(err).splitlines()[0][:100] if str(err).strip() else type(err).__name__
        raise DamagedResults(why) from None
    if not isinstance(value, dict):
        if strict:
            raise DamagedResults(f"holds a {type(value).__name__}")
        return None
    return value


def saved_settings(run: Path) -> tuple[Any, Path] | None:
    """The settings saved in the run folder ``run`` and the file they came from: its ``config.json``, else its
    checkpoint's copy; None if neither exists. ``ValueError`` / :class:`~.checkpoint.CheckpointError` name a
    damaged file."""
    from . import checkpoint as ckpt  # torch, for a run without config.json only

    if (run / CONFIG).is_file():
        return read_config_file(run / CONFIG), run / CONFIG
    if (run / CHECKPOINT).is_file():
        return ckpt.load(run / CHECKPOINT)["config"], run / CHECKPOINT
    return None
