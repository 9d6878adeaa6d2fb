"""bf16 autocast against float32: does a CPU run in bf16 train as accurately?

Reads the CPU study's float32 seeds of ``preact_resnet20`` and its bf16 run (``results/cifar10-cpu``),
and evaluates the bf16 run's committed fp16 weights on the full test set in bf16 autocast and in
float32, against the error its training recorded.

    python3 benchmarks/bf16_parity.py --data-dir data [--out benchmarks/results]

Writes ``bf16_parity.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, add_out_argument, provenance, write_json

from contdepth.runs.files import RESULTS
from contdepth.train import evaluate_run

STUDY = ROOT / "results" / "cifar10-cpu"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_out_argument(parser)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data", help="folder holding cifar-10-batches-py/")
    parser.add_argument("--bf16-run", type=Path, default=STUDY / "preact_resnet20-bf16-s0")
    parser.add_argument("--fp32-runs", type=Path, nargs="+", default=sorted(STUDY.glob("preact_resnet20-s[0-9]")))
    args = parser.parse_args(argv)
    fp32 = {r.name: json.loads((r / RESULTS).read_text())["final_test_error"] for r in args.fp32_runs}
    trained = json.loads((args.bf16_run / RESULTS).read_text())
    evals = {}
    for amp in ("bf16", "none"):
        r = evaluate_run(args.bf16_run, data_dir=str(args.data_dir), device="cpu", amp=amp)
        evals[amp] = {"test_error": r["test_error"], "images": r["images"], "weights": r["weights"]}
    low, high = min(fp32.values()), max(fp32.values())
    error = trained["final_test_error"]
    out = {
        "provenance": provenance(0),
        "fp32_runs": fp32,
        "fp32_mean": statistics.mean(fp32.values()),
        "fp32_std": statistics.stdev(fp32.values()) if len(fp32) > 1 else None,
        "bf16_run": args.bf16_run.name,
        "bf16_final_test_error": error,
        "bf16_inside_fp32_range": low <= error <= high,
        "fp16_weights_eval": evals,
        "fp16_weights_largest_gap_points": max(abs(e["test_error"] - error) for e in evals.values()),
    }
    write_json(args.out / "bf16_parity.json", out)
    print(json.dumps({k: v for k, v in out.items() if k != "provenance"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
