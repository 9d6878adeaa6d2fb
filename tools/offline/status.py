"""``watch``: the study's progress, each run's last epoch, the GPU's load."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from contdepth.runs.files import CONFIG, LOG, METRICS
from contdepth.runs.records import read_dict, read_results
from contdepth.runs.state import RunState, run_state

from .layout import State, process_alive


@dataclass
class RunStatus:
    name: str
    state: str  # done, running, waiting, stopped, failed, pending
    epochs_done: int = 0
    epochs: int | None = None
    last: dict | None = None

    def line(self) -> str:
        total = f"/{self.epochs}" if self.epochs else ""
        text = f"  {self.name:28s} {self.state:8s} {self.epochs_done:>4d}{total:5s}"
        if self.last:
            row = self.last
            if "test_acc" in row:
                text += f"  test error {100 * (1 - row['test_acc']):5.2f}%"
            if "train_loss" in row:
                text += f"  train loss {row['train_loss']:.3f}"
            if "seconds" in row:
                text += f"  {row['seconds']:.1f} s/epoch"
        return text


def _last_row(path: Path) -> tuple[int, dict | None]:
    try:
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        return len(lines), json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):
        return 0, None


def run_status(folder: Path, study_running: bool) -> RunStatus:
    """One run folder's state (:func:`~contdepth.runs.state.run_state`): done, running (a process holds
    its folder, or the study runs and so may it), stopped (a checkpoint to resume), failed (nothing to resume)."""
    done, last = _last_row(folder / METRICS)
    results = read_results(folder) or {}
    config = read_dict(folder / CONFIG) or {}
    epochs = results.get("epochs") or config.get("epochs")
    found = run_state(folder)
    if found is RunState.DONE:
        state = "done"
    elif found is RunState.HELD or study_running:
        state = "running"
    else:
        state = "stopped" if found is RunState.RESUME else "failed"
    return RunStatus(folder.name, state, done, epochs, last)


def study_status(out: Path, planned: list[str], study_running: bool) -> list[RunStatus]:
    """Every planned run (pending when it has no folder yet) and any other run folder in ``out``."""
    folders = {p.name: p for p in sorted(out.iterdir()) if p.is_dir()} if out.is_dir() else {}
    folders = {n: p for n, p in folders.items() if (p / CONFIG).is_file() or (p / LOG).is_file()}
    out_list = []
    for name in planned + sorted(set(folders) - set(planned)):
        if name in folders:
            status = run_status(folders[name], study_running)
            if status.state == "running" and not _recently_written(folders[name]):
                status.state = "waiting"  # its folder exists (an earlier start, a resume) but nothing moves
            out_list.append(status)
        else:
            out_list.append(RunStatus(name, "pending"))
    return out_list


def _recently_written(folder: Path, within_s: float = 900.0) -> bool:
    newest = max((p.stat().st_mtime for p in folder.iterdir() if p.is_file()), default=0.0)
    return time.time() - newest < within_s


def gpu_line() -> str:
    """Utilisation and memory of each GPU (``nvidia-smi``), or why not."""
    if shutil.which("nvidia-smi") is None:
        return "GPU: no nvidia-smi here"
    try:
        text = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=index,name,utilization.gpu,memory.used,memory.total",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError) as err:
        return f"GPU: nvidia-smi failed ({err})"
    lines = []
    for row in text.strip().splitlines():
        parts = [p.strip() for p in row.split(",")]
        if len(parts) == 5:
            lines.append(f"GPU {parts[0]} {parts[1]}: {parts[2]}% busy, memory {parts[3]} / {parts[4]} MiB")
    return "\n".join(lines) or "GPU: nvidia-smi reported nothing"


def report(state: State, now: float | None = None) -> tuple[str, bool]:
    """The status text, and whether the study is still running."""
    now = time.time() if now is None else now
    running = process_alive(state.pid)
    runs = study_status(Path(state.out), list(state.runs), running)
    counts = {
        s: sum(r.state == s for r in runs) for s in ("done", "running", "waiting", "pending", "stopped", "failed")
    }
    minutes = (now - state.started) / 60 if state.started else 0.0
    head = (
        f"[{time.strftime('%H:%M:%S', time.localtime(now))}] {state.study}: "
        f"{'running' if running else 'not running'} (pid {state.pid}, {minutes:.1f} min since start); "
        + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    )
    lines = [head, *(r.line() for r in runs), gpu_line()]
    if state.log:
        tail = _tail(Path(state.log), 1)
        if tail:
            lines.append(f"last line of {Path(state.log).name}: {tail}")
    return "\n".join(lines), running


def _tail(path: Path, n: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def watch(
    state_loader: Callable[[], State],
    seconds: float,
    every: float = 60.0,
    margin: float = 5.0,
    out: Callable[[str], None] = print,
    already: float = 0.0,
) -> bool:
    """Print the status every ``every`` s and return before ``seconds`` have passed (``margin`` to spare;
    ``already``: seconds spent before the call), or as soon as the study is no longer running.
    Returns whether it still runs."""
    deadline = time.monotonic() - already + seconds - margin
    while True:
        text, running = report(state_loader())
        out(text + "\n")
        if not running:
            return False
        wake = time.monotonic() + every
        if wake + margin > deadline:
            return True
        time.sleep(max(0.0, wake - time.monotonic()))
