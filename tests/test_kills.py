"""Every state a kill leaves in a run folder has one way forward: `train` and `reproduce` killed at each phase.

Each run is killed by SIGKILL at a phase (tests/killpoints.py: forked children of one server, so a kill costs
no interpreter start); then the same command, and the same command with ``--resume``, must end with the
uninterrupted run's metrics or say the run is done. A refusal must name its way forward, and following it
must work. The randomized loop (real ``kill -9`` at random times) is in the slow tier.
"""

from __future__ import annotations

import functools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from killpoints import KILLED, REPO, Killer

from contdepth.cli import main
from contdepth.cli import reproduce as study_command
from contdepth.runs.files import WEIGHTS
from contdepth.runs.records import read_metrics, read_results
from contdepth.runs.state import FolderState, folder_state
from contdepth.studies.runner import Runner

TIMING = ("seconds", "images_per_s", "compile_seconds", "session")  # differ between a run and its resumption
FLAGS = [
    "--model",
    "lm_resnet20",
    "--epochs",
    "2",
    "--batch-size",
    "16",
    "--subset",
    "32",
    "--test-subset",
    "32",
    "--device",
    "cpu",
    "--deterministic",
    "--amp",
    "none",
    "--no-progress",
]
#: Each phase a run can be killed in (two batches an epoch, two epochs), and the state it leaves.
PHASES = [
    ("startup", FolderState.ABSENT),  # the model built, the data read, before the folder is made
    ("config", FolderState.STARTED),  # config.json written, nothing saved (as mid-epoch 1)
    ("checkpoint:1", FolderState.STARTED),  # half of the first checkpoint written
    ("metrics:1", FolderState.SAVED),  # epoch 1 saved, its metrics half written
    ("step:3", FolderState.SAVED),  # mid-epoch 2
    ("checkpoint:2", FolderState.SAVED),  # half of epoch 2's checkpoint written
    ("results:2", FolderState.SAVED),  # epoch 2 saved, its results half written
    ("weights:1", FolderState.UNFINISHED),  # complete, half of the fp16 weights written
    ("done", FolderState.DONE),  # everything written, before the process exits
]


@pytest.fixture(scope="module")
def killer():
    server = Killer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def data_dir(fake_cifar10):
    return fake_cifar10


@pytest.fixture(scope="module")
def reference(killer, data_dir, tmp_path_factory):
    """The metrics of the run never interrupted."""
    out = tmp_path_factory.mktemp("reference") / "run"
    assert killer.run(["train", *FLAGS, "--data-dir", str(data_dir), "--out", str(out)]) == 0
    return _metrics(out)


def _metrics(out: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMING} for row in read_metrics(out / "metrics.jsonl")]


def _files(out: Path) -> dict[str, bytes]:
    """The run files in ``out`` (the lock aside: it names its last holder)."""
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name != ".lock"} if out.is_dir() else {}


def _finished_as_uninterrupted(out: Path, reference: list[dict]) -> None:
    assert folder_state(out) is FolderState.DONE
    assert _metrics(out) == reference
    assert (read_results(out) or {}).get("complete") and (out / WEIGHTS).is_file()
    assert not list(out.glob("*.tmp"))


def _last_line(log: Path) -> str:
    lines = log.read_text().strip().splitlines()
    return lines[-1] if lines else ""


def _go_on(killer, argv: list[str], out: Path, log: Path) -> str:
    """Run ``argv`` as a user would after a kill: when it refuses, it must say the way forward (--resume), which
    is taken; returns what the first command said last."""
    before = _files(out)
    code = killer.run(argv, log=log)
    said = _last_line(log)
    if code == 2:
        assert "pass --resume" in said and "Traceback" not in log.read_text(), said
        assert _files(out) == before  # a refusal leaves the folder as it was
        assert killer.run([*argv, "--resume"], log=log) == 0, log.read_text()
    else:
        assert code == 0, log.read_text()
    return said


@pytest.mark.parametrize("phase, state", PHASES, ids=[p for p, _ in PHASES])
def test_train_killed_at_each_phase_goes_on_to_the_same_metrics(killer, data_dir, reference, tmp_path, phase, state):
    out, again = tmp_path / "run", tmp_path / "again"
    argv = ["train", *FLAGS, "--data-dir", str(data_dir), "--out", str(out)]
    assert killer.run(argv, kill=phase, log=tmp_path / "killed.log") == KILLED
    assert folder_state(out) is state, sorted(_files(out))
    if out.exists():
        shutil.copytree(out, again)

    said = _go_on(killer, argv, out, tmp_path / "same.log")  # the same command
    _finished_as_uninterrupted(out, reference)
    if state in (FolderState.STARTED, FolderState.ABSENT, FolderState.UNFINISHED):
        assert (tmp_path / "same.log").read_text().count("note:") == (state is not FolderState.ABSENT)
    if state is FolderState.DONE:
        assert "holds this run, finished" in said and "nothing to train" in said

    argv_again = ["train", *FLAGS, "--data-dir", str(data_dir), "--out", str(again), "--resume"]
    assert killer.run(argv_again, log=tmp_path / "resume.log") == 0, (tmp_path / "resume.log").read_text()
    _finished_as_uninterrupted(again, reference)
    text = (tmp_path / "resume.log").read_text()
    assert "--overwrite" not in text or state is FolderState.DONE, text  # nothing is lost: never asked for
    if state in (FolderState.ABSENT, FolderState.STARTED):
        assert "note: --resume:" in text and "starting the run" in text


def test_a_folder_without_progress_is_started_again_and_one_with_progress_is_kept(killer, data_dir, tmp_path):
    """A start that saved nothing is replaced, with a note; a run with other settings and progress is refused,
    naming the settings and --overwrite."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text("{not json")  # a damaged config.json of a start that saved nothing
    (out / "checkpoint.pt.tmp").write_bytes(b"half")
    log = tmp_path / "log"
    argv = ["train", *FLAGS, "--data-dir", str(data_dir), "--out", str(out)]
    assert killer.run([*argv, "--resume"], kill="step:3", log=log) == KILLED
    assert "note: --resume:" in log.read_text() and not (out / "checkpoint.pt.tmp").exists()
    assert json.loads((out / "config.json").read_text())["epochs"] == 2
    changed = [*argv[:-4], "--epochs", "3", *argv[-4:]]
    assert killer.run(changed, log=log) == 2
    said = _last_line(log)
    assert "holds another run (epochs: 2 -> 3" in said and "--overwrite" in said and "--resume" not in said
    assert killer.run([*changed, "--resume"], log=log) == 2
    assert "started with other settings (epochs: 2 -> 3" in _last_line(log)
    (out / "checkpoint.pt").unlink()  # an epoch's metrics, no checkpoint: only --overwrite goes on
    for extra in ([], ["--resume"]):
        assert killer.run([*argv, *extra], log=log) == 2
        said = _last_line(log)
        assert "1 trained epoch but no checkpoint.pt" in said and "--overwrite" in said and "pass --resume" not in said


# ----------------------------------------------------------------------------- reproduce
def _study_argv(out: Path, data_dir: Path) -> list[str]:
    flags = [f for f in FLAGS if f not in ("--model", "lm_resnet20")]
    return [
        "reproduce",
        "lu2018-cifar10",
        "--out",
        str(out),
        "--only",
        "lm_resnet20",
        "--",
        *flags,
        "--data-dir",
        str(data_dir),
    ]


class _Ended:
    """A study run that has ended already (the kill-point server runs it to its end or its kill)."""

    def __init__(self, code: int) -> None:
        self.returncode = code

    def poll(self) -> int:
        return self.returncode

    def send_signal(self, sig: int) -> None:
        pass

    def wait(self, timeout: float | None = None) -> int:
        return self.returncode


def _studies_launching_through(monkeypatch, killer, kill: str | None) -> None:
    def launch(argv: list[str], env: dict[str, str], log: Path) -> _Ended:
        with open(log, "a") as fh:
            fh.write(f"$ {' '.join(argv)}\n")
        return _Ended(killer.run(argv[1:], kill=kill, log=log, env=env))

    monkeypatch.setattr(study_command, "Runner", functools.partial(Runner, launch=launch, sleep=lambda s: None))


def _starts(out: Path) -> list[dict]:
    ledger = out / "launches.jsonl"
    lines = ledger.read_text().splitlines() if ledger.is_file() else []
    return [e for e in map(json.loads, lines) if e["event"] == "start"]


@pytest.mark.parametrize("phase, state", PHASES, ids=[p for p, _ in PHASES])
def test_reproduce_killed_at_each_phase_finishes_every_run_once(
    killer, data_dir, reference, tmp_path, capsys, monkeypatch, phase, state
):
    out = tmp_path / "study"
    run = out / "lm_resnet20-s0"
    argv = _study_argv(out, data_dir)
    _studies_launching_through(monkeypatch, killer, phase)
    assert main(argv) == 1  # the run died: counted as failed, with its log's last lines
    assert "1 failed" in capsys.readouterr().out
    assert folder_state(run) is (FolderState.EMPTY if state is FolderState.ABSENT else state)  # train.log is there
    before = len(_starts(out))

    _studies_launching_through(monkeypatch, killer, None)
    assert main(argv) == 0, (run / "train.log").read_text()
    said = capsys.readouterr().out
    _finished_as_uninterrupted(run, reference)
    starts = _starts(out)[before:]
    if state is FolderState.DONE:
        assert starts == [] and "all 1 runs" in said
    else:
        assert len(starts) == 1 and "1 of 1 runs done (1 now), 0 failed" in said
        assert starts[0]["resume"] is (state in (FolderState.SAVED, FolderState.UNFINISHED))
        assert "--overwrite" not in starts[0]["command"]
    assert main(argv) == 0 and "all 1 runs" in capsys.readouterr().out  # and nothing is run again


# ----------------------------------------------------------------------------- slow: kill -9 at random times
KILLS = 10


def _start(argv: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "contdepth", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: killed as a whole
    )


def _ended(process: subprocess.Popen, seconds: float | None) -> bool:
    """Whether ``process`` ended within ``seconds`` (None: wait for it); if not, it is killed with SIGKILL."""
    try:
        process.wait(timeout=seconds)
        return True
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return False


def _the_documented_way(argv: list[str], kill_after: float | None) -> bool:
    """The same command, then ``--resume`` where it says so; killed after ``kill_after`` s. True when it finished."""
    process = _start(argv)
    if not _ended(process, kill_after):
        return False
    said = process.stdout.read() if process.stdout else ""
    if process.returncode == 2:
        assert "pass --resume" in said, said
        process = _start([*argv, "--resume"])
        if not _ended(process, kill_after):
            return False
        said = process.stdout.read() if process.stdout else ""
    assert process.returncode == 0, said
    return True


def _timed(argv: list[str]) -> float:
    started = time.monotonic()
    process = _start(argv)
    assert _ended(process, None) and process.returncode == 0, process.stdout.read() if process.stdout else ""
    return time.monotonic() - started


@pytest.mark.slow
def test_train_killed_at_random_times_ends_with_the_same_metrics(data_dir, tmp_path):
    """kill -9 at random times (start-up included), each time rerun the documented way; the metrics are the
    uninterrupted run's."""
    flags = [*FLAGS, "--data-dir", str(data_dir)]
    flags[flags.index("--epochs") + 1] = "4"
    seconds = _timed(["train", *flags, "--out", str(tmp_path / "straight")])
    argv = ["train", *flags, "--out", str(tmp_path / "run")]
    rng = random.Random(33)
    kills = 0
    while kills < KILLS and not _the_documented_way(argv, rng.uniform(0.0, 0.6 * seconds)):
        kills += 1
    assert _the_documented_way(argv, None)
    assert kills >= KILLS // 2, kills
    _finished_as_uninterrupted(tmp_path / "run", _metrics(tmp_path / "straight"))


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (a study's runs), from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="runs die with the study through Linux's prctl")
def test_reproduce_killed_at_random_times_finishes_every_run_once(data_dir, tmp_path):
    """kill -9 of `contdepth reproduce` (its runs stop, saving a checkpoint) or of the study and its run together
    (a closed laptop) at random times; the same command each time; every run ends as it would have, once."""
    flags = [f for f in FLAGS if f not in ("--model", "lm_resnet20")]
    flags[flags.index("--epochs") + 1] = "3"
    study = ["reproduce", "lu2018-cifar10", "--only", "resnet20,lm_resnet20", "--jobs", "2"]
    seconds = _timed([*study, "--out", str(tmp_path / "straight"), "--", *flags, "--data-dir", str(data_dir)])
    argv = [*study, "--out", str(tmp_path / "study"), "--", *flags, "--data-dir", str(data_dir)]
    rng = random.Random(33)
    kills = 0
    while kills < KILLS:
        process = _start(argv)
        time.sleep(rng.uniform(0.0, 0.6 * seconds))
        if process.poll() is not None:
            break
        runs = _children(process.pid)
        os.killpg(process.pid, signal.SIGKILL)
        if rng.random() < 0.5:  # the runs die with it at once; else they are asked to stop, and save
            for pid in runs:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        process.wait()
        kills += 1
    final = _start(argv)
    assert _ended(final, None) and final.returncode == 0, final.stdout.read() if final.stdout else ""
    for name in ("resnet20-s0", "lm_resnet20-s0"):
        _finished_as_uninterrupted(tmp_path / "study" / name, _metrics(tmp_path / "straight" / name))
    assert kills >= KILLS // 2, kills
