"""Set-up steps of ``start``: the commit to record, the data decoded once, the GPU test tier."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from contdepth.data.specs import spec
from contdepth.provenance import COMMIT_ENV, git_commit

from .procs import run_logged

COMMIT_FILE = "COMMIT"  # in the carry folder: `git rev-parse HEAD > .carry/COMMIT` before the copy
CIFAR10_FOLDER = spec("cifar10").folder
# The GPU tier (`pytest -m cuda`) as a whole takes several minutes, most of it compiling and starting
# subprocesses. The smoke tier keeps what a short lease needs, sized for start's 90 s: every model family
# eager in fp32 and bf16 + channels_last, the device loader, and one compiled training step in the mode a
# wave trains in (CUDA graphs, bf16, channels_last); no subprocess, one compile of a small net.
TIERS: dict[str, list[str]] = {
    "smoke": ["-k", "every_family or device_loader or reduce-overhead-bf16"],
    "full": [],
}


def resolve_commit(given: str | None, repo: Path, carry: Path) -> tuple[str | None, str]:
    """The commit the runs record, and where it came from: ``given``, ``$CONTDEPTH_GIT_COMMIT``, git, the carry file."""
    if given:
        return given.strip(), "--commit"
    if os.environ.get(COMMIT_ENV, "").strip():
        return os.environ[COMMIT_ENV].strip(), f"${COMMIT_ENV}"
    if (repo / ".git").exists():
        commit = git_commit(repo, timeout=20.0)
        if commit is not None:
            return commit, "git"
    path = carry / COMMIT_FILE
    if path.is_file() and path.read_text().strip():
        return path.read_text().split()[0], str(path)
    return None, "unknown"


def data_ready(data_dir: Path) -> bool:
    return (data_dir / CIFAR10_FOLDER / "test_batch").is_file()


def start_decoding(data_dir: Path, carry: Path, log: Path) -> subprocess.Popen | None:
    """Unpack or decode the carried CIFAR-10 into ``data_dir`` in the background; None when nothing is to do.

    Carried as the official archive (``cifar-10-python.tar.gz``: checked against its md5, then
    unpacked) or as a compact ``.npz`` copy with its decoder ``cifar10_from_jpeg.py``.
    Raises ``FileNotFoundError`` when the data is neither there nor carried.
    """
    if data_ready(data_dir):
        return None
    official = carry / spec("cifar10").archive
    decoder = carry / "cifar10_from_jpeg.py"
    archives = sorted(carry.glob("*.npz"))
    if official.is_file():
        data_dir.mkdir(parents=True, exist_ok=True)
        link = data_dir / official.name
        if not link.exists():  # absent, or a link left dangling by an earlier carry folder
            link.unlink(missing_ok=True)
            link.symlink_to(official.resolve())
        unpack = (
            "import sys; from pathlib import Path; from contdepth.data.download import download; "
            "from contdepth.data.specs import spec; "
            "download(spec('cifar10'), Path(sys.argv[1]), md5=sys.argv[2], progress=False)"
        )
        command = [sys.executable, "-c", unpack, str(data_dir), spec("cifar10").md5]
    elif decoder.is_file() and archives:
        command = [sys.executable, str(decoder), str(data_dir), "--npz", str(archives[0])]
    else:
        raise FileNotFoundError(
            f"no CIFAR-10 in {data_dir / CIFAR10_FOLDER}, and {carry} holds neither "
            f"{official.name} nor a .npz copy with its decoder: carry one or pass --data-dir"
        )
    with open(log, "w") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


@dataclass
class TierResult:
    """The GPU tier's outcome: ``ran`` (pytest produced a report), test counts, failed test ids."""

    ran: bool
    passed: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    note: str = ""

    def summary(self) -> str:
        if not self.ran:
            return f"did not run ({self.note})"
        text = f"{self.passed} passed, {len(self.failed)} failed, {self.skipped} skipped in {self.seconds:.0f} s"
        return text + (f": {', '.join(self.failed)}" if self.failed else "")


def read_junit(path: Path) -> TierResult:
    """Counts and failed ids (``test_name[params]``) of a pytest ``--junitxml`` report."""
    root = ET.parse(path).getroot()
    result = TierResult(ran=True)
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            result.failed.append(case.get("name", "?"))
        elif case.find("skipped") is not None:
            result.skipped += 1
        else:
            result.passed += 1
        result.seconds += float(case.get("time", 0) or 0)
    return result


def run_gpu_tier(
    repo: Path, log: Path, timeout_s: float, extra: list[str] | None = None, tier: str = "smoke"
) -> TierResult:
    """``pytest -m cuda`` (the ``tier`` of :data:`TIERS`) in ``repo``, output to ``log``; a run past
    ``timeout_s`` is stopped and reported."""
    junit = log.with_suffix(".xml")
    junit.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-m",
        "cuda",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests",
        f"--junitxml={junit}",
        *TIERS[tier],
        *(extra or []),
    ]
    code = run_logged(cmd, log, timeout_s, cwd=repo)
    if code is None:
        return TierResult(ran=False, note=f"stopped after {timeout_s:.0f} s; see {log}")
    if not junit.is_file():
        return TierResult(ran=False, note=f"pytest exited {code} without a report; see {log}")
    return read_junit(junit)
