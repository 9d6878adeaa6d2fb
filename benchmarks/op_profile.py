"""Where the time goes: the aten ops of contdepth's ResNet-56 / LM-ResNet-56 against the hand-written nets.

For each model, contdepth's net and its hand-written twin (``reference_nets.py``, same weights) run
eager, fp32, under ``torch.profiler``, in inference and in training: the self time summed over all
ops per iteration, and the aten ops called a different number of times (per iteration). Then the
Python overhead of a forward at batch 2 (no real compute): ms per inference forward, wall clock.

    python3 benchmarks/op_profile.py [--device cpu|cuda] [--models resnet56 lm_resnet56] [--batch 32]

Results go to ``--out`` (default ``runs/benchmarks``, git-ignored) as ``op_profile.json``
(``op_profile_cuda.json`` on CUDA); ``--out benchmarks/results`` refreshes the committed one.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_out_argument, markdown_table, provenance, write_json
from _timing import Runner, add_device_arguments, set_up, stem, sync, twin_nets
from reference_nets import HAND


def op_profile(name: str, batch: int, seed: int, device: torch.device, reps: int = 3) -> dict[str, Any]:
    """Self time per aten op of contdepth's ``name`` and the hand-written one (see the module docstring)."""
    from torch.profiler import ProfilerActivity, profile

    model, hand = twin_nets(name, seed, device)
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    out: dict[str, Any] = {}
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    for train in (False, True):
        phase = "train" if train else "inference"
        runners = {"contdepth": Runner(model, x, y, train=train), "hand": Runner(hand, x, y, train=train)}
        per: dict[str, dict[str, tuple[float, float]]] = {}
        for key, r in runners.items():
            r.timed(1)
            with profile(activities=activities) as prof:
                r.timed(reps)
            per[key] = {e.key: (e.count / reps, e.self_cpu_time_total / reps / 1e3) for e in prof.key_averages()}
        differ = {}
        for op in set(per["contdepth"]) | set(per["hand"]):
            c_cd, c_hand = per["contdepth"].get(op, (0, 0.0))[0], per["hand"].get(op, (0, 0.0))[0]
            if op.startswith("aten::") and c_cd != c_hand:
                differ[op] = {"calls_contdepth": c_cd, "calls_hand": c_hand}
        total = {k: sum(ms for _, ms in v.values()) for k, v in per.items()}
        out[phase] = {"self_ms_total": total, "ops_with_different_counts": differ}
    small = torch.randn(2, 3, 32, 32, device=device)
    with torch.inference_mode():
        for key, m in (("contdepth", model.eval()), ("hand", hand.eval())):
            for _ in range(3):
                m(small)
            sync(device)
            start = time.perf_counter()
            for _ in range(20):
                m(small)
            sync(device)
            out[f"{key}_ms_per_forward_batch2"] = 1e3 * (time.perf_counter() - start) / 20
    return out


def table(profile: dict[str, dict[str, Any]]) -> str:
    rows = []
    for name, p in profile.items():
        for phase in ("inference", "train"):
            q = p[phase]
            diff = sorted(
                q["ops_with_different_counts"].items(),
                key=lambda kv: -abs(kv[1]["calls_contdepth"] - kv[1]["calls_hand"]),
            )
            listed = ", ".join(
                f"{op.replace('aten::', '')} {v['calls_contdepth'] - v['calls_hand']:+.0f}" for op, v in diff[:6]
            )
            rows.append(
                [
                    name,
                    phase,
                    f"{q['self_ms_total']['contdepth']:.1f} / {q['self_ms_total']['hand']:.1f}",
                    listed or "none",
                ]
            )
    return markdown_table(
        [
            "model",
            "phase",
            "aten self ms per iteration (cd / hand)",
            "aten ops called a different number of times (cd - hand, per iteration)",
        ],
        rows,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_out_argument(parser, "JSON")
    add_device_arguments(parser)
    parser.add_argument("--models", nargs="+", default=["resnet56", "lm_resnet56"], choices=sorted(HAND))
    parser.add_argument("--batch", type=int, default=None, help="batch size (default 32 on CPU, 128 on CUDA)")
    parser.add_argument("--reps", type=int, default=3, help="profiled iterations per net and phase")
    args = parser.parse_args(argv)
    device = set_up(args)
    batch = args.batch or (128 if device.type == "cuda" else 32)
    results: dict[str, Any] = {
        "provenance": provenance(args.seed, device),
        "device_type": device.type,
        "batch": batch,
        "reps": args.reps,
        "threads": torch.get_num_threads(),
        "profile": {name: op_profile(name, batch, args.seed, device, args.reps) for name in args.models},
    }
    results["markdown"] = table(results["profile"])
    write_json(args.out / f"{stem('op_profile', device)}.json", results)
    print(results["markdown"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
