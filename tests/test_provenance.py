"""One provenance record for every result file: command, commit, device, versions, seed, UTC date."""

from __future__ import annotations

import datetime as dt
import re
import shlex
import subprocess
from pathlib import Path

import torch

from contdepth import provenance as prov

BASE = {"command", "git_commit", "git_commit_from", "device", "torch", "python", "platform", "seed", "date"}


def test_the_record_names_the_command_the_seed_the_device_and_a_utc_date():
    record = prov.provenance(["contdepth", "demo", "--out", "a folder"], 7)
    assert set(record) == BASE
    assert shlex.split(record["command"]) == ["contdepth", "demo", "--out", "a folder"]  # pastes back as typed
    assert record["seed"] == 7 and record["torch"] == torch.__version__
    assert re.fullmatch(r"cpu: .+ \(\d+ logical cores, torch threads \d+\)", record["device"])
    assert dt.datetime.fromisoformat(record["date"]).utcoffset() == dt.timedelta(0)


def test_the_commit_comes_from_git_else_from_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(prov.COMMIT_ENV, raising=False)
    assert prov.commit_and_source(tmp_path) == (None, None)  # no git here, nothing given
    monkeypatch.setenv(prov.COMMIT_ENV, "0123abc")
    assert prov.commit_and_source(tmp_path) == ("0123abc", f"${prov.COMMIT_ENV}")
    repo = Path(__file__).resolve().parents[1]
    if subprocess.run(["git", "-C", str(repo), "rev-parse"], capture_output=True).returncode == 0:
        commit, source = prov.commit_and_source(repo)
        assert source == "git" and re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", commit or "")
    assert prov.provenance(None, 0, repo=tmp_path)["git_commit"] == "0123abc"  # the checkout asked for


def test_training_adds_how_it_computed_to_the_same_record():
    from contdepth.train.report import provenance

    record = provenance(torch.device("cpu"), 3, 1, settings={"compile_mode": "none"})
    assert BASE <= set(record) and record["processes"] == 1 and record["gpu"] is None
    assert record["compile_mode"] == "none" and record["seed"] == 3
