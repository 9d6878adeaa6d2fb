"""The folder lock: exclusive between processes, released when its holder dies."""

import os
import subprocess
import sys

import pytest

from contdepth.runs.lock import FolderLock, FolderLocked

HOLD = (
    "import sys, time; from contdepth.runs.lock import FolderLock; lock = FolderLock(sys.argv[1]).acquire(); "
    "print('held', flush=True); time.sleep(60)"
)


def test_second_holder_is_refused_with_the_pid_and_a_killed_holder_leaves_no_stale_lock(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(FolderLocked, match=f"process {proc.pid}"):
            FolderLock(tmp_path, what="run").acquire()
    finally:
        proc.kill()
        proc.wait()
    with FolderLock(tmp_path) as lock:  # the OS released the dead holder's lock
        assert lock.held
        assert (tmp_path / ".lock").read_text() == str(os.getpid())
    assert not lock.held
