"""The CPU-budget study: its runs, its recipe, threads per run, and a summary that shows each run and the learned k."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contdepth.cli import main
from contdepth.cli.reproduce import build_jobs
from contdepth.studies.catalog import get_study
from contdepth.studies.runner import Runner


def test_the_cpu_study_runs_three_seeds_of_the_pair_and_one_of_resnet20(tmp_path):
    study = get_study("lu2018-cifar10-cpu")
    jobs = build_jobs(study, tmp_path, list(study.seeds), None, ["--device", "cpu"])
    assert [j.name for j in jobs] == [
        "preact_resnet20-s0",
        "lm_resnet20-s0",
        "preact_resnet20-s1",
        "lm_resnet20-s1",
        "preact_resnet20-s2",
        "lm_resnet20-s2",
        "resnet20-s0",
        "preact_resnet20-bf16-s0",
    ]
    assert [j.config.amp for j in jobs] == ["none"] * 7 + ["bf16"]  # float32 as run; the bf16 row checks bf16
    for job in jobs:  # one schedule for every model: 30 epochs, one of warm-up, linear decay to zero
        cfg = job.config
        assert (cfg.epochs, cfg.schedule, cfg.warmup_epochs, cfg.lr, cfg.batch_size) == (30, "linear", 1.0, 0.1, 128)
        assert (cfg.momentum, cfg.weight_decay, cfg.subset, cfg.test_subset) == (0.9, 1e-4, None, None)
        assert cfg.compile_mode == "default" and cfg.channels_last  # what a long CPU run picks
    assert jobs[0].config.scheme == "euler" and jobs[1].config.model == "lm_resnet20"
    only_seed_1 = build_jobs(study, tmp_path, [1], None, [])
    assert [j.name for j in only_seed_1] == ["preact_resnet20-s1", "lm_resnet20-s1"]


@pytest.mark.parametrize("jobs, threads", [(1, "2"), (2, "1")])
def test_cpu_runs_share_the_cores(tmp_path, monkeypatch, jobs, threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1}, raising=False)
    study = get_study("lu2018-cifar10-cpu")
    (job,) = build_jobs(study, tmp_path, [0], ["resnet20"], ["--device", "cpu"])
    assert Runner([job], tmp_path, jobs=jobs)._thread_env(job) == {"OMP_NUM_THREADS": threads}
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's setting wins
    assert Runner([job], tmp_path, jobs=jobs)._thread_env(job) == {}


@pytest.mark.parametrize("load, warned", [(0.3, False), (1.2, True)])
def test_a_runner_says_once_when_other_processes_keep_the_cores_busy(tmp_path, monkeypatch, load, warned):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr("os.getloadavg", lambda: (load, load, load))
    (job,) = build_jobs(get_study("lu2018-cifar10-cpu"), tmp_path, [0], ["resnet20"], ["--device", "cpu"])
    said: list[str] = []
    runner = Runner([job], tmp_path, jobs=1, say=said.append)
    for _ in range(2):
        assert runner._thread_env(job) == {"OMP_NUM_THREADS": "2"}
    assert len(said) == int(warned) and all("OMP_NUM_THREADS" in line for line in said)


def test_summary_lists_each_run_the_paper_and_the_learned_k(tmp_path):
    def finished(name: str, error: float, ks=None) -> None:
        folder = tmp_path / name
        folder.mkdir()
        res = {"complete": True, "final_test_error": error, "epochs": 30, "params": 272282}
        if ks is not None:
            res["momentum_k"] = ks
        (folder / "results.json").write_text(json.dumps(res))

    finished("preact_resnet20-s0", 9.0)
    finished("preact_resnet20-s1", 10.0)
    finished("lm_resnet20-s0", 8.5, [[-0.2, 0.1], [0.3], [0.0]])
    assert main(["reproduce", "lu2018-cifar10-cpu", "--out", str(tmp_path), "--summary"]) == 0
    md = (tmp_path / "summary.md").read_text()
    assert "| preact_resnet20 (1) | 2 | 30 | 9.50 ± 0.71 | 9.00 (s0), 10.00 (s1) | - |" in md
    assert "| lm_resnet20 | 1 | 30 | 8.50 | 8.50 (s0) | 8.33 |" in md
    assert "lm_resnet20-s0: k_n per stage [-0.20, +0.10]; [+0.30]; [+0.00]; 1 + k_n from 0.80 to 1.30" in md
    assert "30 epochs of linear decay" in md  # the study's note: why the numbers differ from the paper's
    rows = {r["name"]: r for r in json.loads((tmp_path / "summary.json").read_text())["rows"]}
    assert rows["lm_resnet20"]["momentum_k"] == {"lm_resnet20-s0": [[-0.2, 0.1], [0.3], [0.0]]}


def test_summary_marks_errors_measured_on_held_out_training_images(tmp_path):
    folder = tmp_path / "preact_resnet20-gaussian0.3-val-s0"
    folder.mkdir()
    res = {"complete": True, "final_test_error": 18.0, "epochs": 10, "params": 272282}
    res["evaluated_on"] = "validation: the last 5000 training images"
    (folder / "results.json").write_text(json.dumps(res))
    assert main(["reproduce", "sde-cpu", "--out", str(tmp_path), "--summary"]) == 0
    md = (tmp_path / "summary.md").read_text()
    assert "| 1 | 10 | 18.00 (validation) | 18.00 (s0) |" in md
    assert "not on the test set" in md
    row = next(r for r in json.loads((tmp_path / "summary.json").read_text())["rows"] if r["runs"])
    assert row["evaluated_on"] == ["validation: the last 5000 training images"]


def test_a_closed_pipe_is_not_a_study_folder_error(monkeypatch, capsys):
    from contdepth.cli import reproduce

    def closed():  # what `contdepth reproduce --list | head` meets when head has gone
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(reproduce, "_list", closed)
    monkeypatch.setattr("contdepth.cli.entry._silence_stdout", lambda: None)
    assert main(["reproduce", "--list"]) == 1
    assert "choose another --out" not in capsys.readouterr().err


def test_the_gaussian_run_is_at_the_level_the_validation_runs_chose():
    from contdepth.studies.catalog import GAUSSIAN_LEVELS

    folder = Path(__file__).resolve().parents[1] / "results" / "sde-cpu"
    errors = {}
    for level in GAUSSIAN_LEVELS:
        res = json.loads((folder / f"preact_resnet20-gaussian{level}-val-s0" / "results.json").read_text())
        assert res["complete"] and res["evaluated_on"].startswith("validation")
        errors[level] = res["final_test_error"]
    rows = get_study("sde-cpu").rows
    gaussian = [r.noise for r in rows if r.noise and r.noise.startswith("gaussian") and "--validation" not in r.flags]
    assert gaussian == [f"gaussian:{min(errors, key=errors.__getitem__)}"]
