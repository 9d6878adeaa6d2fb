"""The work folder of an offline session: where each step writes, and the state ``start`` leaves behind."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_WORK = Path("runs") / "offline"
STATE = "state.json"


@dataclass
class Work:
    """The folder ``root`` and the files in it."""

    root: Path

    @property
    def state(self) -> Path:
        return self.root / STATE

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def calibration(self) -> Path:
        return self.root / "calibration"

    @property
    def weights(self) -> Path:
        return self.root / "weights"

    @property
    def plan(self) -> Path:
        return self.root / "plan.txt"

    def make(self) -> Work:
        for folder in (self.root, self.logs, self.calibration):
            folder.mkdir(parents=True, exist_ok=True)
        return self


@dataclass
class State:
    """What ``start`` did: the study, its folder, the detached process and how it trains."""

    study: str
    out: str
    pid: int | None = None
    log: str | None = None
    command: list[str] = field(default_factory=list)
    mode: str | None = None
    train_flags: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    commit: str | None = None
    device: str = "cuda"
    started: float = 0.0
    steps: dict[str, Any] = field(default_factory=dict)

    def save(self, work: Work) -> None:
        tmp = work.state.with_name(STATE + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1) + "\n")
        os.replace(tmp, work.state)

    @classmethod
    def load(cls, work: Work) -> State:
        """The saved state; ``FileNotFoundError`` naming the folder when ``start`` has not run there."""
        if not work.state.is_file():
            raise FileNotFoundError(f"no {STATE} in {work.root}: run `start` first (or pass the same --work)")
        values = json.loads(work.state.read_text())
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})


def process_alive(pid: int | None) -> bool:
    """Whether process ``pid`` exists and is not a zombie (a finished child its parent has not reaped)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def process_age() -> float:
    """Seconds since this process started (its imports included; 0 where /proc is not there)."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0
