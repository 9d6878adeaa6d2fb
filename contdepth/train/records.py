"""Run-directory files: ``metrics.jsonl`` (one line per epoch), ``results.json``, ``config.json``, provenance."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from ..gitinfo import commit_and_source
from .rundir import CONFIG as CONFIG  # the file names, owned by rundir; also records.CONFIG and so on
from .rundir import METRICS as METRICS
from .rundir import RESULTS as RESULTS


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


CONCURRENT_ENV = "CONTDEPTH_CONCURRENT_RUNS"  # how many runs share this device (set by whoever starts several)


def concurrent_runs() -> int:
    """``$CONTDEPTH_CONCURRENT_RUNS`` (runs sharing this device), 1 when unset.

    Raises ``ValueError`` when it is set to anything but a positive integer."""
    text = os.environ.get(CONCURRENT_ENV, "").strip()
    if not text:
        return 1
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"${CONCURRENT_ENV} must be a positive integer (runs sharing the device), got {text!r}")
    return value


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu: {platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def provenance(
    device: torch.device, seed: int, world: int, *, settings: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Where a result came from: command line, git commit, device (GPU name), versions (torch, CUDA, cuDNN),
    seed, date (UTC), and ``settings`` (how it computed: compile mode, AMP, flags, ...)."""
    commit, source = commit_and_source()
    cudnn = torch.backends.cudnn.version() if device.type == "cuda" else None
    return {
        "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "git_commit": commit,
        "git_commit_from": source,
        "device": device_name(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "processes": world,
        "torch": str(torch.__version__),
        "cuda": None if torch.version.cuda is None else str(torch.version.cuda),
        "cudnn": None if cudnn is None else str(cudnn),
        "python": platform.python_version(),
        "seed": seed,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **(settings or {}),
    }
