"""The offline-machine script: packing within file limits, mode choice, commit, and start/watch/collect on CPU."""

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from contdepth.data import write_fake_cifar
from tools.offline import calibrate, pack, prepare
from tools.offline.__main__ import main as offline_main

REPO = Path(__file__).resolve().parents[1]
MiB = 2**20


def _check_limits(dest: Path, max_files: int, max_bytes: int) -> list[Path]:
    files = sorted(dest.rglob("*"))
    assert all(p.is_file() and p.parent == dest for p in files), files  # nothing in a subfolder
    assert 1 <= len(files) <= max_files, files
    assert all(p.stat().st_size <= max_bytes for p in files), [(p.name, p.stat().st_size) for p in files]
    return [p for p in files if p.name.endswith(".tar.gz")]


def _members(archives: list[Path]) -> dict[str, bytes]:
    out = {}
    for path in archives:
        with tarfile.open(path) as tar:
            for m in tar.getmembers():
                out[m.name] = tar.extractfile(m).read()
    return out


def test_collect_packs_within_the_file_limits(tmp_path):
    """Incompressible logs and weights beyond what fits: every file within the limits, text first,
    a too-large log keeps its end, what does not fit is listed as left out."""
    work, rng = tmp_path / "work", torch.Generator().manual_seed(0)
    study = work / "study"
    for i in range(6):
        run = study / f"resnet20-s{i}"
        run.mkdir(parents=True)
        (run / "results.json").write_text(json.dumps({"complete": True, "run": i}))
        (run / "metrics.jsonl").write_text('{"epoch": 1}\n')
        (run / "train.log").write_bytes(
            torch.randint(0, 256, (300_000,), generator=rng, dtype=torch.uint8).numpy().tobytes()
        )
    big_log = work / "logs" / "reproduce.log"
    big_log.parent.mkdir()
    big_log.write_bytes(
        torch.randint(0, 256, (3 * MiB,), generator=rng, dtype=torch.uint8).numpy().tobytes() + b"\nlast line\n"
    )
    weights = []
    for i in range(4):
        w = tmp_path / f"w{i}.pt"
        w.write_bytes(torch.randint(0, 256, (700_000,), generator=rng, dtype=torch.uint8).numpy().tobytes())
        weights.append(w)
    dest = tmp_path / "out"
    result = pack.pack(pack.gather(work, study, weights), dest, max_files=4, max_bytes=1 * MiB, header="test")
    archives = _check_limits(dest, 4, MiB)
    members = _members(archives)
    for i in range(6):  # every result is there
        assert json.loads(members[f"study/resnet20-s{i}/results.json"])["run"] == i
    assert members["logs/reproduce.log"].endswith(b"\nlast line\n") and len(members["logs/reproduce.log"]) < MiB
    left = {item.name for item, _ in result.left_out}
    assert left and left <= {f"weights/w{i}.pt" for i in range(4)}  # only weights give way
    manifest = (dest / pack.MANIFEST).read_text()
    assert all(name in manifest for name in left) and "end only" in manifest
    # the real limits: 8 files of 15 MiB, with 2 x 8 MiB of incompressible weights
    big = []
    for i in range(2):
        w = tmp_path / f"big{i}.pt"
        w.write_bytes(os.urandom(8 * MiB))
        big.append(w)
    result = pack.pack(pack.gather(work, study, big), dest, header="test")
    archives = _check_limits(dest, 8, 15 * MiB)
    assert len(archives) == 2 and not result.left_out
    assert _members(archives)["weights/big1.pt"] == big[1].read_bytes()


def test_collect_gives_the_study_log_and_status_first_claim_and_cuts_logs_rather_than_drop_them(tmp_path):
    """Results fill every file: the study's log and the status files still go in (first), and a log that does
    not fit whole keeps its end in the room left, where it was left out before."""
    work, rng = tmp_path / "work", torch.Generator().manual_seed(1)

    def noise(n):
        return torch.randint(0, 256, (n,), generator=rng, dtype=torch.uint8).numpy().tobytes()

    (work / "logs").mkdir(parents=True)
    (work / "state.json").write_text(json.dumps({"study": "s", "out": "study"}))
    (work / "plan.txt").write_text("plan\n")
    (work / "logs" / "reproduce.log").write_bytes(noise(50_000) + b"\nthe study's last line\n")
    (work / "logs" / "decode.log").write_bytes(noise(300_000) + b"\ndecode's last line\n")
    study = work / "study"
    for i in range(20):
        (study / f"run{i:02d}").mkdir(parents=True)
        (study / f"run{i:02d}" / "metrics.jsonl").write_bytes(noise(100_000))
    dest = tmp_path / "out"
    result = pack.pack(pack.gather(work, study, []), dest, max_files=3, max_bytes=MiB, header="test")
    members = _members(_check_limits(dest, 3, MiB))
    assert members["logs/reproduce.log"].endswith(b"the study's last line\n")
    assert "state.json" in members and "plan.txt" in members
    assert members["logs/decode.log"].endswith(b"decode's last line\n") and len(members["logs/decode.log"]) < 300_000
    left = {item.name for item, _ in result.left_out}
    assert left and all(name.endswith("metrics.jsonl") for name in left)  # no log is left out
    assert "logs/decode.log  [end only" in (dest / pack.MANIFEST).read_text()


def _collect_work(tmp_path):
    """A work folder whose study holds one finished run (a real checkpoint of a tiny state dict)."""
    from contdepth.runs.checkpoint import save_atomic
    from tools.offline.layout import State, Work

    work = Work(tmp_path / "work").make()
    run = work.root / "study" / "resnet20-s0"
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps({"complete": True}))
    save_atomic({"config": {}, "model": {"w": torch.ones(4)}, "epoch": 1, "batch": 0}, run / "checkpoint.pt")
    State(study="lu2018-cifar10", out=str(work.root / "study")).save(work)
    return work


def test_collect_checks_its_folder_before_any_work_and_a_full_disk_is_one_line(tmp_path, capsys, monkeypatch):
    import contdepth.outputs as outputs
    from contdepth.runs import checkpoint as ckpt

    work = _collect_work(tmp_path)
    args = ["--work", str(work.root), "--no-summary"]
    (tmp_path / "ro").mkdir()
    with monkeypatch.context() as m:  # a read-only place
        m.setattr(outputs.os, "access", lambda path, mode: not str(path).startswith(str(tmp_path / "ro")))
        assert offline_main(["collect", str(tmp_path / "ro" / "OUT"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not writable" in err and "choose another DIR" in err
    assert not list(work.weights.glob("*.pt"))  # refused before the weights were written

    def full(obj, fh, *a, **k):
        try:
            raise OSError(28, os.strerror(28))
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")  # noqa: B904

    monkeypatch.setattr(ckpt.torch, "save", full)
    assert offline_main(["collect", str(tmp_path / "OUT"), *args]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "No space left on device" in err and "resnet20-s0.pt" in err
    assert not list(work.weights.iterdir())  # no partial file


def test_failed_gpu_tests_rule_out_their_modes():
    ruled = calibrate.excluded_by_tests(
        ["test_compiled_training_step_matches_eager[lm_resnet20-reduce-overhead-bf16+cl]"]
    )
    assert set(ruled) == {"reduce-overhead-bf16-cl"}
    ruled = calibrate.excluded_by_tests(
        [
            "test_compiled_training_step_matches_eager[lm_resnet20-default-fp32]",
            "test_every_family_forward_backward_fp32_and_bf16_channels_last[resnet50-plain]",
        ]
    )
    assert set(ruled) == {"default-bf16-cl", "eager-bf16-cl", "reduce-overhead-bf16-cl"}
    assert set(calibrate.excluded_by_tests(["test_one_epoch_of_2048_images_in_the_fastest_mode"])) == {
        "reduce-overhead-bf16-cl"
    }
    assert calibrate.excluded_by_tests(["test_device_loader_crops_and_flips_batched_seeded_reproducible"]) == {}
    fast, slow = (
        calibrate.Measurement(m, True, {"resnet56": {"contdepth": v}})
        for m, v in (("reduce-overhead-bf16-cl", 9000.0), ("eager-fp32", 3000.0))
    )
    assert calibrate.choose([slow, fast], {}).mode == "reduce-overhead-bf16-cl"
    assert calibrate.choose([slow, fast], {"reduce-overhead-bf16-cl": "t"}).mode == "eager-fp32"
    assert calibrate.choose([calibrate.Measurement("eager-fp32", False)], {}) is None
    assert calibrate.jobs_from({1: 1000.0, 2: 1500.0, 3: 1550.0}) == 2
    assert calibrate.jobs_from({1: 1000.0, 2: 1050.0, 3: 2000.0}) == 3
    assert calibrate.jobs_from({1: 1000.0, 2: 1050.0, 3: 1080.0}) == 1
    assert calibrate.MODES["reduce-overhead-bf16-cl"].train_flags == [
        "--compile-mode",
        "reduce-overhead",
        "--amp",
        "bf16",
        "--channels-last",
    ]


def test_calibration_reads_throughput_rows(tmp_path):
    (tmp_path / "throughput.json").write_text(
        json.dumps(
            {
                "comparisons": [
                    {"model": "resnet56", "phase": "train", "images_per_s": {"contdepth": 100.0, "hand": 110.0}},
                    {"model": "resnet56", "phase": "inference", "images_per_s": {"contdepth": 900.0, "hand": 900.0}},
                    {"model": "lm_resnet56", "phase": "train", "images_per_s": {"contdepth": 80.0, "hand": 90.0}},
                ]
            }
        )
    )
    m = calibrate.read_measurement(calibrate.MODES["eager-fp32"], tmp_path)
    assert m.ok and m.speed == 90.0 and m.images_per_s["resnet56"]["hand"] == 110.0
    assert "0.909" in calibrate.table([m], {}, {1: 100.0})


def test_commit_comes_from_the_argument_the_environment_git_or_the_carry_file(tmp_path, monkeypatch):
    monkeypatch.delenv(prepare.COMMIT_ENV, raising=False)
    carry = tmp_path / ".carry"
    carry.mkdir()
    assert prepare.resolve_commit(None, tmp_path, carry) == (None, "unknown")
    (carry / "COMMIT").write_text("0123abc\n")
    assert prepare.resolve_commit(None, tmp_path, carry) == ("0123abc", str(carry / "COMMIT"))
    monkeypatch.setenv(prepare.COMMIT_ENV, "fromenv")
    assert prepare.resolve_commit(None, tmp_path, carry)[0] == "fromenv"
    assert prepare.resolve_commit("given", tmp_path, carry)[0] == "given"
    if (REPO / ".git").exists() and shutil.which("git"):
        monkeypatch.delenv(prepare.COMMIT_ENV)
        commit, source = prepare.resolve_commit(None, REPO, carry)
        assert source == "git" and len(commit.split("+")[0]) == 40


def test_bad_arguments_get_one_line(capsys, tmp_path):
    work = ["--work", str(tmp_path / "w")]
    assert offline_main(["watch", "10", *work]) == 2
    assert "run `start` first" in capsys.readouterr().err
    assert offline_main(["start", "lu2018-cifar10", *work, "--mode", "fastest"]) == 2
    assert "choose from: eager-fp32" in capsys.readouterr().err
    assert offline_main(["start", "lu2018-cifar10", *work, "--jobs", "0"]) == 2
    assert "--jobs takes a positive number or auto" in capsys.readouterr().err
    assert offline_main(["start", "lu2018-cifar10", *work, "--dry-run"]) == 2
    assert "--dry-run is set by start itself" in capsys.readouterr().err
    assert offline_main(["start", "lu2018-cifar10", *work, "--", "--device", "cuda"]) == 2
    assert "give it to start" in capsys.readouterr().err


def test_start_watch_collect_on_cpu_from_a_copy_without_git(tmp_path, capsys):
    """The whole cycle on a copy of the checkout that has no .git: the commit comes from .carry/COMMIT."""
    copy = tmp_path / "checkout"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, copy / name)
    assert not (copy / ".git").exists()
    (copy / ".carry").mkdir()
    (copy / ".carry" / "COMMIT").write_text("feedc0ffee\n")
    data, work = tmp_path / "data", tmp_path / "work"
    write_fake_cifar(data, "cifar10", train=32, test=32)
    env = {k: v for k, v in os.environ.items() if k != prepare.COMMIT_ENV}
    env.update(OMP_NUM_THREADS="1", CONTDEPTH_SITE=str(tmp_path / "site"))
    proc = subprocess.run(
        [
            "bash",
            "tools/offline/offline_gpu.sh",
            "start",
            "lu2018-cifar10",
            "--device",
            "cpu",
            "--data-dir",
            str(data),
            "--work",
            str(work),
            "--only",
            "resnet20",
            "--settle",
            "60",
            "--",
            "--epochs",
            "1",
            "--subset",
            "32",
            "--batch-size",
            "16",
            "--test-subset",
            "32",
        ],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "gpu tests: skipped (--device cpu)" in proc.stdout and "feedc0ffee" in proc.stdout
    assert "1 runs to do" in proc.stdout
    # watch (in this process: the copy's package is the same code) returns when the study ends
    assert offline_main(["watch", "240", "--every", "1", "--work", str(work)]) == 0
    last = capsys.readouterr().out.strip().split("\n\n")[-1]
    assert "not running" in last and any(line.split()[:2] == ["resnet20-s0", "done"] for line in last.splitlines())
    res = json.loads((work / "lu2018-cifar10" / "resnet20-s0" / "results.json").read_text())
    assert res["complete"] and res["provenance"]["git_commit"] == "feedc0ffee"
    dest = tmp_path / "OUT"
    assert offline_main(["collect", str(dest), "--work", str(work), "--no-summary"]) == 0
    members = _members(_check_limits(dest, 8, 15 * MiB))
    assert json.loads(members["lu2018-cifar10/resnet20-s0/results.json"])["complete"]
    assert "logs/reproduce.log" in members and "plan.txt" in members
    saved = torch.load(io.BytesIO(members["lu2018-cifar10/resnet20-s0/weights.fp16.pt"]), weights_only=True)
    assert saved["model_name"] == "resnet20" and saved["epoch"] == 1  # the run's own weights.fp16.pt
    half = saved["model"]
    floats = [v for v in half.values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats) and not any(k.startswith("_orig_mod") for k in half)


def test_the_smoke_tier_keeps_what_a_short_lease_needs():
    """The smoke tier's selection names real GPU tests: the families, the loader, the compiled step with CUDA
    graphs in bf16 + channels_last; not the subprocess tests nor the other compiles."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-m", "cuda"]
        + prepare.TIERS["smoke"]
        + ["tests/test_cuda.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    ids = [line.split("::", 1)[1] for line in proc.stdout.splitlines() if "::" in line]
    assert any(i.startswith("test_every_family") for i in ids), proc.stdout + proc.stderr
    assert any(i.startswith("test_device_loader") for i in ids)
    compiled = [i for i in ids if i.startswith("test_compiled")]
    assert compiled == ["test_compiled_training_step_matches_eager[lm_resnet14-reduce-overhead-bf16+cl]"]
    assert set(calibrate.excluded_by_tests(compiled)) == {"reduce-overhead-bf16-cl"}  # its failure rules the mode out
    assert not any(i.startswith(("test_one_epoch", "test_reproduce", "test_two_ddp")) for i in ids)


def test_calibration_stays_within_its_budget(tmp_path, monkeypatch):
    """Each mode gets what is left of the budget; a mode with too little left is not measured, not chosen."""
    import argparse

    import tools.offline.__main__ as command
    from tools.offline.layout import Work

    now = [0.0]
    monkeypatch.setattr(command, "time", argparse.Namespace(monotonic=lambda: now[0], time=lambda: now[0]))
    given = []

    def measure(repo, mode, folder, timeout, flags, models):
        given.append((mode.name, timeout, models))
        now[0] += 70.0
        speed = {"eager-fp32": 1000.0, "eager-bf16-cl": 2000.0}.get(mode.name, 9000.0)
        return calibrate.Measurement(mode.name, True, {"resnet56": {"contdepth": speed, "hand": speed}})

    monkeypatch.setattr(calibrate, "measure", measure)
    args = argparse.Namespace(mode="auto", calibrate_args="", baseline=False)
    work = Work(tmp_path / "work").make()
    steps: dict = {}
    modes = calibrate.check_modes(calibrate.CALIBRATED)
    name, _ = command._choose_mode(args, True, modes, ["resnet56"], {}, work, steps, 1, tmp_path, 120.0)
    assert given == [("eager-fp32", 120.0, ["resnet56"]), ("eager-bf16-cl", 50.0, ["resnet56"])]
    assert name == "eager-bf16-cl" and steps["calibration"] == "fastest that passed: eager-bf16-cl"
    assert "the calibration budget (120 s) was spent" in (work.calibration / "calibration.txt").read_text()


def test_watch_then_collect_in_one_command(tmp_path, capsys):
    """`watch SECONDS --collect DIR`: the destination is checked first; the packed run folder holds its fp16
    weights as the library writes them (taken from the checkpoint of a run that kept none)."""
    work = _collect_work(tmp_path)
    common = ["--work", str(work.root), "--no-summary"]
    assert offline_main(["watch", "30", "--collect", str(tmp_path / "OUT"), "--collect-seconds", "40", *common]) == 2
    assert "--collect-seconds" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    common += ["--collect-seconds", "20"]
    assert offline_main(["watch", "30", "--collect", str(tmp_path / "file" / "OUT"), *common]) == 2
    captured = capsys.readouterr()
    assert "choose another DIR" in captured.err and "not running" not in captured.out  # refused before watching
    dest = tmp_path / "OUT"
    assert offline_main(["watch", "30", "--collect", str(dest), *common]) == 0
    assert "not running" in capsys.readouterr().out
    members = _members(_check_limits(dest, 8, 15 * MiB))
    assert json.loads(members["study/resnet20-s0/results.json"])["complete"]
    saved = torch.load(io.BytesIO(members["study/resnet20-s0/weights.fp16.pt"]), weights_only=True)
    assert saved["epoch"] == 1 and saved["model"]["w"].dtype == torch.float16
    assert not (work.root / "study" / "resnet20-s0" / "weights.fp16.pt").exists()  # the run folder left as it was


def test_the_tooling_is_not_installed_with_the_package():
    setuptools = pytest.importorskip("setuptools")
    text = (REPO / "setup.py").read_text()  # the package list: setup.py adds the shipped runs beside it
    found = re.search(r"find_namespace_packages\(include=(\[.*?\])\)", text)
    assert found, "setup.py: find_namespace_packages(include=[...])"
    packages = setuptools.find_namespace_packages(str(REPO), include=json.loads(found.group(1)))
    assert "contdepth.studies" in packages and "contdepth.train" in packages
    assert not any(p.split(".")[0] in ("tools", "benchmarks", "tests") for p in packages), packages
    assert not (REPO / "contdepth" / "offline" / "__init__.py").exists()
