"""`contdepth reproduce`: studies as data, the time planner (fake clock), the runner, the CLI end to end."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest

from contdepth.cli import main
from contdepth.cli.reproduce import build_jobs
from contdepth.models import available, parse_noise
from contdepth.models.noise_spec import NoiseSpec
from contdepth.runs.files import LOG
from contdepth.runs.lock import FolderLock
from contdepth.runs.state import run_state
from contdepth.studies import planner
from contdepth.studies.calibration import burst_estimate, calibrate
from contdepth.studies.catalog import SAFE_NAME, STUDIES, UnknownName, basic_blocks, get_study, matching_gaussian_level
from contdepth.studies.planner import Estimate, Pending
from contdepth.studies.runner import CONCURRENT_ENV, Runner
from contdepth.studies.summary import device_sharing

TINY = ["--epochs", "1", "--batch-size", "16", "--subset", "32", "--test-subset", "32", "--device", "cpu"]


pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------- studies
def test_study_rows_name_real_models_and_noises_with_safe_unique_names():
    for study in STUDIES.values():
        names = [row.name for row in study.rows]
        assert len(set(names)) == len(names)
        for row in study.rows:
            assert row.model in available()
            parse_noise(row.noise)
            assert SAFE_NAME.match(row.run_name(12)), row.run_name(12)
            assert row.priority in (1, 2, 3)
    cifar = get_study("lu2018-cifar10")
    assert [r.paper_error for r in cifar.select(["resnet20", "lm_resnet20"])] == [8.75, 8.33]
    assert get_study("lu2018-stochastic").row("lm_resnet56-sd0.8").paper_error == 5.14


def test_unknown_study_and_run_names_list_the_choices_closest_first():
    with pytest.raises(UnknownName, match=r"did you mean lu2018-cifar10.*choices: lu2018-cifar10, lu2018-stochastic"):
        get_study("lu2018-cifar")
    with pytest.raises(UnknownName, match=r"did you mean lm_resnet56.*choices: resnet56, lm_resnet56"):
        get_study("lu2018-cifar10").select(["lm_resnet57"])


def test_gaussian_level_matches_the_stochastic_depth_law_of_the_noise_spec():
    """Per block, sd:P is x + a F + c F ξ (noise_spec scales); in its mean G = a F the relative noise is c / a.
    The study's gaussian:S has S² = mean (c / a)² over the net's blocks."""
    blocks = basic_blocks(56)
    assert blocks == 27
    sd = NoiseSpec("sd", 0.8)
    ratios = [(c / a) ** 2 for a, c in (sd.scales(block, blocks) for block in range(1, blocks + 1))]
    level = matching_gaussian_level(blocks, 0.8)
    assert level == pytest.approx(math.sqrt(sum(ratios) / blocks))
    assert min(ratios) ** 0.5 < level < max(ratios) ** 0.5
    assert matching_gaussian_level(blocks, 1.0) == 0.0
    row = next(
        r
        for r in get_study("lu2018-stochastic").rows
        if r.noise and r.noise.startswith("gaussian") and r.model == "lm_resnet56"
    )
    assert parse_noise(row.noise).level == pytest.approx(level, rel=1e-2)
    assert "not expressible" in row.note


# ----------------------------------------------------------------- planner (pure, fake times)
def test_plan_list_schedules_in_priority_order_and_fills_gaps_with_runs_that_fit():
    pending = [Pending("a", 50.0), Pending("b", 80.0), Pending("c", 30.0), Pending("d", 10.0)]
    planned, left = planner.plan(pending, jobs=2, now=100.0, deadline=200.0)
    assert [(p.name, p.start, p.end) for p in planned] == [
        ("a", 100.0, 150.0),
        ("b", 100.0, 180.0),
        ("c", 150.0, 180.0),
        ("d", 180.0, 190.0),
    ]
    assert left == []
    planned, left = planner.plan(pending, jobs=1, now=0.0, deadline=100.0)
    assert [p.name for p in planned] == ["a", "c", "d"]  # b (80 s) does not fit after a; c and d do
    assert [p.name for p in left] == ["b"]
    planned, left = planner.plan(pending, jobs=2, now=0.0, deadline=100.0, busy_until=[95.0, 60.0])
    # running runs hold the slots until 60 and 95: c fits at 60, d then at 90; a and b never fit
    assert [(p.name, p.start, p.end) for p in planned] == [("c", 60.0, 90.0), ("d", 90.0, 100.0)]
    assert [p.name for p in left] == ["a", "b"]


def test_plan_with_too_small_a_budget_or_unknown_times_starts_nothing():
    planned, left = planner.plan([Pending("a", 500.0), Pending("b", None)], jobs=4, now=0.0, deadline=60.0)
    assert planned == [] and [p.name for p in left] == ["a", "b"]
    planned, _ = planner.plan([Pending("a", None)], jobs=1, now=0.0, deadline=None)
    assert planned[0].end == math.inf and planner.format_duration(planned[0].end) == "?"
    assert planner.next_to_start([Pending("a", 61.0), Pending("b", 59.0)], now=0.0, deadline=60.0).name == "b"


def test_estimates_from_epoch_times_and_bursts():
    assert planner.median_epoch_seconds([{"seconds": 9.0}, {"seconds": 1.0}, {"seconds": 2.0}]) == 2.0
    assert Estimate(10.0, 5.0).seconds(3) == 35.0
    # burst: 100 train images at 50 img/s (2 s) + 3 s testing 50 images; full: 1000 train, 500 test
    epoch = planner.epoch_seconds_from_burst({"seconds": 5.0, "images_per_s": 50.0}, 100, 50, 1000, 500)
    assert epoch == pytest.approx(20.0 + 30.0)
    assert planner.format_duration(95) == "1m35s" and planner.format_duration(7384) == "2h03m"


def test_device_sharing_counts_the_runs_alive_together():
    entries = [
        {"event": "start", "run": "a", "time": 0},
        {"event": "start", "run": "b", "time": 1},
        {"event": "end", "run": "b", "time": 2},
        {"event": "end", "run": "a", "time": 5},
        {"event": "start", "run": "c", "time": 6},
    ]
    assert device_sharing(entries) == {"a": 2, "b": 2, "c": 1}


# ----------------------------------------------------------------- runner with a fake clock and fake processes
class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class FakeProcess:
    """Ends at ``end`` on the fake clock with ``code``; a finished run leaves a complete results.json."""

    def __init__(self, clock, end, code, folder):
        self.clock, self.end, self.code, self.folder = clock, end, code, folder
        self.returncode = None
        self.signals = []

    def poll(self):
        if self.returncode is None and self.clock() >= self.end:
            self.returncode = self.code
            if self.code == 0 and not (self.folder / "results.json").exists():
                (self.folder / "results.json").write_text(json.dumps({"complete": True}))
        return self.returncode

    def send_signal(self, sig):
        self.signals.append(sig)

    def wait(self, timeout=None):
        return self.poll()


def _fake_jobs(tmp_path, names):
    study = get_study("lu2018-cifar10")
    return build_jobs(study, tmp_path, [0], names, ["--device", "cpu", "--epochs", "2"])


def test_runner_keeps_to_the_deadline_never_stops_a_started_run_and_reports_failures(tmp_path):
    clock = FakeClock()
    jobs = _fake_jobs(tmp_path, ["resnet56", "lm_resnet56", "resnet20", "lm_resnet20"])
    assert [j.name for j in jobs] == ["resnet56-s0", "lm_resnet56-s0", "resnet20-s0", "lm_resnet20-s0"]
    seconds = {"resnet56-s0": 40.0, "lm_resnet56-s0": 45.0, "resnet20-s0": 500.0, "lm_resnet20-s0": 20.0}
    true_seconds = {"resnet56-s0": 70.0, "lm_resnet56-s0": 45.0, "resnet20-s0": 500.0, "lm_resnet20-s0": 20.0}
    started, processes = [], {}

    def launch(argv, env, log):
        name = log.parent.name
        log.write_text("line 1\nTraceback: boom\n" if name == "lm_resnet56-s0" else "ok\n")
        started.append((name, env[CONCURRENT_ENV], clock()))
        processes[name] = FakeProcess(
            clock, clock() + true_seconds[name], 1 if name == "lm_resnet56-s0" else 0, log.parent
        )
        return processes[name]

    lines = []
    runner = Runner(
        jobs,
        tmp_path,
        jobs=2,
        deadline=60.0,
        clock=clock,
        sleep=clock.sleep,
        launch=launch,
        estimates=lambda job: Estimate(seconds[job.name] / 2, 0.0),
        say=lines.append,
        poll_seconds=1.0,
    )
    report = runner.run()
    # resnet56 and lm_resnet56 start together; lm_resnet56 fails at 45 s, and lm_resnet20 (20 s) no longer
    # fits before 60 s; resnet20 (500 s) never fits; resnet56 overruns its prediction and is left to finish
    assert started == [("resnet56-s0", "1", 0.0), ("lm_resnet56-s0", "2", 0.0)]
    assert report.finished == ["resnet56-s0"] and clock() >= 70.0
    assert processes["resnet56-s0"].signals == []
    assert [(name, code) for name, code, _ in report.failed] == [("lm_resnet56-s0", 1)]
    assert report.failed[0][2][-1] == "Traceback: boom"
    assert any("Traceback: boom" in line for line in lines)
    assert report.pending == ["resnet20-s0", "lm_resnet20-s0"]
    assert any("done 0 / running 2 / pending 2" in line for line in lines)
    ledger = [json.loads(line) for line in (tmp_path / "launches.jsonl").read_text().splitlines()]
    assert [(e["event"], e["run"]) for e in ledger][:2] == [("start", "resnet56-s0"), ("start", "lm_resnet56-s0")]


def test_runner_stop_request_asks_each_run_to_checkpoint(tmp_path):
    clock = FakeClock()
    jobs = _fake_jobs(tmp_path, ["resnet56"])
    procs = []

    def launch(argv, env, log):
        procs.append(FakeProcess(clock, 1e9, 0, log.parent))
        return procs[-1]

    def interrupting_sleep(seconds):
        raise KeyboardInterrupt

    runner = Runner(jobs, tmp_path, clock=clock, sleep=interrupting_sleep, launch=launch, say=lambda line: None)
    report = runner.run()
    assert procs[0].signals == [signal.SIGTERM]
    assert report.pending == []


def test_a_run_held_by_another_process_waits_takes_a_slot_and_never_fails(tmp_path):
    """resnet56-s0 is held by a live process the study did not start (this test's lock); lm_resnet56-s0 loses the
    race for its folder to another process after it was launched. Neither counts as failed: both are waited for,
    taking a slot meanwhile, and run here once let go."""
    clock = FakeClock()
    jobs = _fake_jobs(tmp_path, ["resnet56", "lm_resnet56", "resnet20"])
    held = jobs[0].folder
    held.mkdir(parents=True)
    holders = {"resnet56-s0": FolderLock(held, what="run").acquire()}
    started = []

    def launch(argv, env, log):
        name = log.parent.name
        started.append((name, env[CONCURRENT_ENV], clock()))
        if name == "lm_resnet56-s0" and "lm_resnet56-s0" not in holders:  # another process takes the folder
            holders[name] = FolderLock(log.parent, what="run").acquire()
            return FakeProcess(clock, clock() + 1.0, 2, log.parent)
        return FakeProcess(clock, clock() + 10.0, 0, log.parent)

    def sleep(seconds):
        clock.sleep(seconds)
        for name, at in (("resnet56-s0", 20.0), ("lm_resnet56-s0", 30.0)):
            if clock() >= at and name in holders and holders[name].held:
                holders[name].release()

    lines = []
    runner = Runner(jobs, tmp_path, jobs=2, clock=clock, sleep=sleep, launch=launch, say=lines.append)
    report = runner.run()
    assert report.failed == [] and sorted(report.finished) == ["lm_resnet56-s0", "resnet20-s0", "resnet56-s0"]
    # the held run takes one of the 2 slots: lm_resnet56 starts beside it (2 sharing the device) and, once its
    # folder is held too, both slots are taken: resnet20 waits; each held run starts here once let go
    starts = {name: (shared, at) for name, shared, at in started if name != "lm_resnet56-s0" or at > 0}
    assert started[0] == ("lm_resnet56-s0", "2", 0.0) and len(started) == 4
    assert starts["resnet56-s0"] == ("2", 20.0) and starts["lm_resnet56-s0"][1] >= 30.0
    assert starts["resnet20-s0"][1] >= 30.0
    assert [shared for _, shared, _ in started] == ["2", "2", "1", "2"]  # never more than --jobs
    said = "\n".join(lines)
    assert f"resnet56-s0: its folder is held by another process (pid {os.getpid()})" in said
    assert "lm_resnet56-s0: its folder is held" in said and "let go by process" in said


def test_the_ledger_survives_a_cut_line_and_garbage(tmp_path, capsys, monkeypatch):
    """A study killed while appending leaves a cut last line; the next start goes on a line of its own.
    Garbage lines (binary too) are skipped, and named, by --summary; so is a damaged results.json."""
    import contdepth.studies.summary as summary_module

    monkeypatch.setattr(summary_module, "_params", lambda row: None)  # no model built to count parameters
    clock = FakeClock()
    jobs = _fake_jobs(tmp_path, ["resnet20"])
    ledger = tmp_path / "launches.jsonl"
    ledger.write_bytes(b'{"event": "start", "run": "resnet20-s0", "time": 1}\n{"event": "end", "ru')

    def launch(argv, env, log):
        return FakeProcess(clock, clock() + 5.0, 0, log.parent)

    Runner(jobs, tmp_path, clock=clock, sleep=clock.sleep, launch=launch, say=lambda line: None).run()
    lines = ledger.read_bytes().split(b"\n")
    assert lines[1] == b'{"event": "end", "ru' and [json.loads(x)["event"] for x in lines[2:] if x] == ["start", "end"]
    with open(ledger, "ab") as fh:
        fh.write(b"\xff\xfe\x00 not json \x80\n")
    broken = tmp_path / "lm_resnet20-s0"
    broken.mkdir()
    (broken / "results.json").write_text('{"complete": true, "final_test_er')  # cut short
    (tmp_path / "resnet20-s0" / "results.json").write_text(
        json.dumps({"complete": True, "final_test_error": 9.0, "epochs": 2})
    )
    assert main(["reproduce", "lu2018-cifar10", "--out", str(tmp_path), "--summary"]) == 0
    err = capsys.readouterr().err
    assert "lm_resnet20-s0/results.json is damaged" in err and "launches.jsonl: lines 2, 5 are not entries" in err
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["launches_skipped"] == [2, 5] and summary["damaged"][0]["file"] == "lm_resnet20-s0/results.json"
    assert {r["name"]: r["runs"] for r in summary["rows"]}["resnet20"] == 1
    md = (tmp_path / "summary.md").read_text()
    assert "Damaged, not counted" in md and "lm_resnet20-s0/results.json" in md


def test_calibration_scales_each_burst_to_the_runs_epochs(tmp_path):
    """Bursts run through the same runner; a fake burst writes the files a real one would."""
    clock = FakeClock()
    jobs = _fake_jobs(tmp_path, ["resnet20", "lm_resnet20"])
    seen = []

    def launch(argv, env, log):
        folder = log.parent
        seen.append(argv)
        ips = 100.0 if "lm_resnet20" in argv else 200.0
        rows = [{"epoch": e, "seconds": 1024 / ips + 2.0, "images_per_s": ips} for e in (1, 2)]
        (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (folder / "results.json").write_text(json.dumps({"complete": True, "train_images": 1024, "test_images": 1000}))
        return FakeProcess(clock, clock() + 20.0, 0, folder)

    from contdepth.cli.reproduce import _burst_job

    found, failed = calibrate(
        jobs, _burst_job, jobs=2, launch=launch, clock=clock, sleep=clock.sleep, say=lambda line: None
    )
    assert failed == [] and len(seen) == 2
    # 8 batches of 128 train images, 2 test batches of 500, 2 epochs
    assert all(
        a[a.index("--subset") + 1] == "1024"
        and a[a.index("--test-subset") + 1] == "1000"
        and a[a.index("--epochs") + 1] == "2"
        for a in seen
    )
    by_model = {key[0]: est for key, est in found.items()}
    # full epoch: 50,000 / ips train + 10,000 test images at 2 s per 1000
    assert by_model["resnet20"].epoch_seconds == pytest.approx(50_000 / 200 + 20.0)
    assert by_model["lm_resnet20"].epoch_seconds == pytest.approx(50_000 / 100 + 20.0)
    # start-up: the burst's wall time less two steady epochs
    assert by_model["resnet20"].startup_seconds == pytest.approx(20.0 - 2 * (1024 / 200 + 2.0), abs=0.5)
    assert by_model["lm_resnet20"].startup_seconds == 0.0
    assert burst_estimate(jobs[0], tmp_path / "nothing-here", 1.0) is None


# ----------------------------------------------------------------- the command end to end
@pytest.fixture(scope="module")
def data_dir(fake_cifar10):
    return fake_cifar10


def test_dry_run_prints_one_train_command_per_run(tmp_path, capsys):
    assert main(["reproduce", "lu2018-cifar10", "--out", str(tmp_path / "W"), "--dry-run", "--seeds", "0,1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 * len(get_study("lu2018-cifar10").rows)
    assert all(line.startswith("contdepth train --model ") for line in lines)
    assert lines[0] == f"contdepth train --model resnet56 --seed 0 --out {tmp_path / 'W' / 'resnet56-s0'}"
    assert not (tmp_path / "W").exists()
    (tmp_path / "W" / "resnet56-s0").mkdir(parents=True)
    (tmp_path / "W" / "resnet56-s0" / "checkpoint.pt").write_bytes(b"")  # interrupted: resumes
    (tmp_path / "W" / "lm_resnet56-s0").mkdir()
    (tmp_path / "W" / "lm_resnet56-s0" / "metrics.jsonl").write_text('{"epoch": 1}\n')  # its checkpoint is gone
    (tmp_path / "W" / "resnet110-s0").mkdir()
    (tmp_path / "W" / "resnet110-s0" / "config.json").write_text("{}")  # a start that saved nothing: starts again
    assert main(["reproduce", "lu2018-cifar10", "--out", str(tmp_path / "W"), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("resnet56-s0 --resume") and lines[1].endswith("lm_resnet56-s0 --overwrite")
    assert not any(line.endswith(("--resume", "--overwrite")) for line in lines[2:])
    assert any(line.endswith("resnet110-s0") for line in lines)


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["lu2018-cifar100", "--out", "W"], "did you mean lu2018-cifar10"),
        (["lu2018-cifar10", "--out", "W", "--only", "resnet2O"], "unknown run 'resnet2O'"),
        (["lu2018-cifar10", "--out", "W", "--dry-run", "--", "--epochs", "x"], "flags after --: argument --epochs"),
        (["lu2018-cifar10", "--out", "W", "--dry-run", "--", "--out", "x"], "--out is set by the study"),
        (["lu2018-cifar10", "--out", "W", "--seeds", "0,0"], "distinct integers"),
        (["lu2018-cifar10", "--out", "W", "--budget", "-1"], "minutes > 0"),
        (["--out", "W"], "name a study"),
        (["lu2018-cifar10", "--out", "f/W", "--", "--device", "cpu"], "Not a directory"),
        (["lu2018-cifar10", "--out", "f", "--summary"], "is a file"),
        # what every `contdepth train` run would refuse is refused once, before any run starts
        (["lu2018-cifar10", "--out", "W", "--", "--device", "bogus"], "flags after --: unknown device 'bogus'"),
        (["lu2018-cifar10", "--out", "W", "--", "--epochs", "0"], "flags after --: argument --epochs"),
        (["lu2018-cifar10", "--out", "W", "--", "--subset", "8", "--batch-size", "16"], "than one batch"),
        (["lu2018-cifar10", "--out", "W", "--", "--device", "cpu", "--data-dir", "none"], "CIFAR-10 not found"),
    ],
)
def test_bad_input_gets_one_clear_line(tmp_path, capsys, monkeypatch, argv, expected):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f").write_text("a file")
    assert main(["reproduce", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("contdepth reproduce: error: ") and expected in err and len(err.splitlines()) == 1
    assert not (tmp_path / "W").exists()


def test_two_runs_then_nothing_then_summary(tmp_path, data_dir, capsys, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # each `contdepth train` process: one thread on a shared machine
    out = tmp_path / "W"
    argv = [
        "reproduce",
        "lu2018-cifar10",
        "--out",
        str(out),
        "--only",
        "resnet20,lm_resnet20",
        "--jobs",
        "2",
        "--",
        *TINY,
        "--data-dir",
        str(data_dir),
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "2 of 2 runs done (2 now), 0 failed" in text
    for name in ("resnet20-s0", "lm_resnet20-s0"):
        results = json.loads((out / name / "results.json").read_text())
        assert results["complete"] and results["model"] == name[:-3]
        assert "epoch   1/1" in (out / name / LOG).read_text()
        # no path of this machine in the results; the copy of the data is told by its fingerprint
        assert str(tmp_path) not in json.dumps(results) and str(data_dir) not in json.dumps(results)
        assert results["config"]["out"] == name and results["data_dir"] == "cifar-10-batches-py"
        assert f"--out {name}" in results["provenance"]["command"]
        assert results["data"]["official"] is False and len(results["data"]["fingerprint"]) == 32
    ledger = (out / "launches.jsonl").read_text()
    assert sorted(json.loads(line)["concurrent_runs"] for line in ledger.splitlines() if '"start"' in line) == [1, 2]

    assert main(argv) == 0  # everything done: nothing starts
    assert "all 2 runs" in capsys.readouterr().out
    assert (out / "launches.jsonl").read_text() == ledger

    assert main([*argv[:2], "--dry-run", *argv[2:]]) == 0
    assert capsys.readouterr().out == ""  # done runs are not printed again

    assert main(["reproduce", "lu2018-cifar10", "--out", str(out), "--summary"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = {r["name"]: r for r in summary["rows"]}
    assert rows["resnet20"]["runs"] == 1 and rows["resnet20"]["paper_error"] == 8.75
    assert rows["resnet20"]["max_concurrent_runs"] == 2 and rows["resnet20"]["epochs"] == [1]
    assert rows["resnet56"]["runs"] == 0 and rows["resnet56"]["params"] > 0
    md = (out / "summary.md").read_text()
    assert "| resnet20 | 1 | 1 |" in md and "8.75" in md
    assert str(tmp_path) not in md + json.dumps(summary)
    assert "the copy of the data these runs used differs from the official files" in md
    assert rows["resnet20"]["data"] == [{"fingerprint": results["data"]["fingerprint"], "official": False}]
    assert (out / "summary.png").stat().st_size > 10_000

    # a run folder trained with other settings is not mixed in
    assert main([*argv[:2], "--dry-run", *argv[2:], "--epochs", "3"]) == 2
    assert "resnet20-s0 (epochs: 1 -> 3; milestones: [1] -> [2])" in capsys.readouterr().err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="runs die with the study through Linux's prctl")
def test_runs_die_with_a_study_killed_by_sigkill(tmp_path, data_dir):
    """kill -9 of `contdepth reproduce` leaves no `contdepth train` run training on: each is asked to stop,
    saves its checkpoint and ends (the same command resumes it)."""
    from tools.offline.layout import process_alive

    out = tmp_path / "W"
    run = out / "resnet20-s0"
    flags = [*TINY[2:], "--epochs", "500", "--data-dir", str(data_dir)]  # minutes of epochs: killed long before
    argv = [sys.executable, "-m", "contdepth", "reproduce", "lu2018-cifar10", "--out", str(out), "--only", "resnet20"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    study = subprocess.Popen([*argv, "--", *flags], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    child = None
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and study.poll() is None:
            if (run / "metrics.jsonl").is_file():  # the run trains: an epoch is done
                child = int((run / ".lock").read_text())
                break
            time.sleep(0.2)
        assert child is not None and child != study.pid and process_alive(child), (run / LOG).read_text()
        study.send_signal(signal.SIGKILL)
        study.wait()
        deadline = time.monotonic() + 60
        while process_alive(child) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not process_alive(child)
        assert run_state(run) == "resume" and "continue with --resume" in (run / LOG).read_text()
    finally:
        if study.poll() is None:
            study.kill()
            study.wait()
        if child is not None and process_alive(child):
            os.kill(child, signal.SIGKILL)


def test_budget_too_small_starts_nothing_and_a_busy_folder_is_refused(tmp_path, data_dir, capsys):
    out = tmp_path / "W"
    flags = [*TINY, "--data-dir", str(data_dir)]
    jobs = build_jobs(get_study("lu2018-cifar10"), out, [1], ["resnet20"], flags)
    earlier = jobs[0].folder  # an earlier run with the same settings took 1000 s per epoch
    earlier.mkdir(parents=True)
    (earlier / "config.json").write_text(json.dumps(jobs[0].config.to_dict()))
    (earlier / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "seconds": 1000.0}) + "\n")
    argv = ["reproduce", "lu2018-cifar10", "--out", str(out), "--only", "resnet20", "--budget", "1", "--", *flags]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "too small for any run" in captured.err and "resnet20-s0" in captured.err
    assert "not started" in captured.out
    assert not (out / "launches.jsonl").exists() and not (out / "resnet20-s0").exists()

    with FolderLock(out, what="contdepth reproduce"):
        assert main(argv) == 2
    assert f"in use by another contdepth reproduce (process {os.getpid()})" in capsys.readouterr().err


def test_budget_without_any_timed_run_starts_nothing(tmp_path, data_dir, capsys, monkeypatch):
    import contdepth.cli.reproduce as command

    monkeypatch.setattr(command, "calibrate", lambda runs, make_job, **kw: ({}, [("resnet20-s0-c0", 2, ["no data"])]))
    out = tmp_path / "W"
    assert (
        main(
            [
                "reproduce",
                "lu2018-cifar10",
                "--out",
                str(out),
                "--only",
                "resnet20",
                "--budget",
                "5",
                "--",
                "--device",
                "cpu",
                "--data-dir",
                str(data_dir),
            ]
        )
        == 1
    )
    captured = capsys.readouterr()
    assert "calibration burst resnet20-s0-c0 failed (exit 2)" in captured.out and "    no data" in captured.out
    assert "no run could be timed" in captured.err
    assert not (out / "launches.jsonl").exists()


def test_the_data_sentence_agrees_with_the_number_of_copies():
    from contdepth.studies.summary import unofficial_data_line

    one = unofficial_data_line(["a" * 32])
    assert "the copy of the data these runs used differs" in one and "fingerprint aaaaaaaaaaaa;" in one
    two = unofficial_data_line(["a" * 32, "b" * 32])
    assert two.startswith("Data: 2 of the copies") and "differ from" in two and "aaaaaaaaaaaa, bbbbbbbbbbbb" in two
