"""benchmarks/throughput.py's bookkeeping on CPU: skipped modes with reasons, rows in the JSON, same map checked."""

import json
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture()
def throughput():
    sys.path.insert(0, str(BENCH))
    try:
        import throughput

        yield throughput
    finally:
        sys.path.remove(str(BENCH))


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
