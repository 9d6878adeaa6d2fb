"""The timing benchmarks' bookkeeping on CPU: skipped modes with reasons, rows in the JSON, same map checked;
op_profile.py, step_overhead.py and pipeline.py (also through ``throughput.py --pipeline``) write their own JSON."""

import argparse
import importlib
import json
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture()
def bench():
    """Imports a benchmark script by name; torch's thread count is restored afterwards (the scripts set it)."""
    sys.path.insert(0, str(BENCH))
    before = torch.get_num_threads()
    try:
        yield importlib.import_module
    finally:
        torch.set_num_threads(before)
        sys.path.remove(str(BENCH))


@pytest.fixture()
def throughput(bench):
    return bench("throughput")


def test_modes_skips_and_rows(throughput, tmp_path):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert throughput.skip_reason("eager", cpu) is None and throughput.skip_reason("compile", cpu) is None
    assert "CUDA only" in throughput.skip_reason("reduce-overhead", cpu)
    assert (
        throughput.skip_reason("compile+bf16+cl", cpu)
        and throughput.skip_reason("reduce-overhead+bf16+cl", cuda) is None
    )
    before = torch.get_num_threads()
    try:
        assert (
            throughput.main(
                [
                    "--models",
                    "resnet56",
                    "--batch",
                    "2",
                    "--reps",
                    "2",
                    "--iters",
                    "1",
                    "--warmup",
                    "0",
                    "--no-profile",
                    "--allocator",
                    "default",
                    "--modes",
                    "eager",
                    "reduce-overhead",
                    "--out",
                    str(tmp_path),
                ]
            )
            == 0
        )
    finally:
        torch.set_num_threads(before)
    res = json.loads((tmp_path / "throughput.json").read_text())
    skipped = [s["mode"] for s in res["skipped"]]
    assert res["complete"] and skipped == [
        "eager+bf16+cl",
        "compile+bf16+cl",
        "reduce-overhead",
        "reduce-overhead+bf16+cl",
    ]
    assert [(r["mode"], r["phase"]) for r in res["comparisons"]] == [("eager", "train"), ("eager", "inference")]
    assert all(r["max_logit_diff"] < 1e-3 and r["images_per_s"]["hand"] > 0 for r in res["comparisons"])
    assert (tmp_path / "throughput.png").is_file()


def test_throughput_pipeline_runs_the_pipeline_script(bench, tmp_path):
    throughput, pipeline = bench("throughput"), bench("pipeline")
    assert {"resnet20", "lm_resnet20"} <= set(pipeline.HAND)
    small = ["--models", "resnet20", "--batch", "2", "--reps", "1", "--iters", "1", "--warmup", "0"]
    with pytest.raises(SystemExit):  # a pipeline mode the device cannot run is a usage error, before any timing
        throughput.main([*small, "--pipeline", "--pipeline-mode", "reduce-overhead", "--out", str(tmp_path)])
    assert not (tmp_path / "throughput.json").exists()
    args = [*small, "--allocator", "default", "--modes", "eager", "--out", str(tmp_path), "--pipeline"]
    args += ["--pipeline-mode", "eager", "--pipeline-model", "lm_resnet20", "--subset", "16", "--pipeline-batch", "8"]
    assert throughput.main([*args, "--pipeline-reps", "1", "--workers", "0"]) == 0
    res = json.loads((tmp_path / "throughput.json").read_text())
    assert res["complete"] and "pipeline" not in res and "profile" not in res
    p = json.loads((tmp_path / "pipeline.json").read_text())["pipeline"]
    assert (p["model"], p["images"], p["contdepth_mode"]) == ("lm_resnet20", 16, "eager")
    assert p["images_per_s"]["conventional"] > 0 and p["images_per_s"]["contdepth"] > 0 and len(p["ratios"]) == 1


def test_pipeline_mode_defaults_to_what_contdepth_train_picks(bench):
    pipeline = bench("pipeline")
    parser = argparse.ArgumentParser()
    pipeline.add_arguments(parser)
    args = parser.parse_args([])
    pipeline.resolve_mode(args, torch.device("cpu"), parser)
    assert args.pipeline_mode == "compile+cl"


def test_op_profile_and_step_overhead_write_their_json(bench, tmp_path):
    op_profile, step_overhead = bench("op_profile"), bench("step_overhead")
    assert op_profile.main(["--models", "lm_resnet20", "--batch", "2", "--reps", "1", "--out", str(tmp_path)]) == 0
    prof = json.loads((tmp_path / "op_profile.json").read_text())
    assert prof["provenance"]["seed"] == 0 and prof["batch"] == 2
    train = prof["profile"]["lm_resnet20"]["train"]
    assert train["self_ms_total"]["contdepth"] > 0 and "lm_resnet20 | train" in prof["markdown"]
    assert step_overhead.main(["--steps", "2", "--calls", "5", "--out", str(tmp_path)]) == 0
    so = json.loads((tmp_path / "step_overhead.json").read_text())
    assert so["step_overhead"]["flow_us_per_step"] > 0 and so["step_overhead"]["loop_us_per_step"] > 0
