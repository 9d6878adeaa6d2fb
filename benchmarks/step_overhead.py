"""Python cost of one Flow step: euler over identity blocks on a tiny state against the plain loop ``x + m(x)``.

The blocks do no arithmetic worth timing, so what is left is the Python (and dispatch) of a step:
microseconds per step of ``cd.Flow(cd.Blocks(identities), "euler")`` and of the loop
``for m in mods: x = x + m(x)``, in inference mode, on a (2, 4) CPU tensor, wall clock, averaged
over ``--calls`` forwards after 100 untimed ones.

    python3 benchmarks/step_overhead.py [--steps 8] [--calls 2000]

Results go to ``--out`` (default ``runs/benchmarks``, git-ignored) as ``step_overhead.json``;
``--out benchmarks/results`` refreshes the committed one.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_out_argument, provenance, write_json

import contdepth as cd


def step_overhead(steps: int = 8, calls: int = 2000) -> dict[str, float]:
    """Microseconds per step of a Flow and of the plain loop (see the module docstring)."""
    mods = [nn.Identity() for _ in range(steps)]
    flow = cd.Flow(cd.Blocks(mods), "euler", steps=steps).eval()
    x = torch.randn(2, 4)

    def loop(u: Tensor) -> Tensor:
        for m in mods:
            u = u + m(u)
        return u

    out = {}
    with torch.inference_mode():
        for key, fn in (("flow_us_per_step", flow), ("loop_us_per_step", loop)):
            for _ in range(100):
                fn(x)
            start = time.perf_counter()
            for _ in range(calls):
                fn(x)
            out[key] = 1e6 * (time.perf_counter() - start) / calls / steps
    return out


def sentence(so: dict[str, float]) -> str:
    return (
        f"Python cost of a Flow step (euler, identity blocks, (2, 4) state): {so['flow_us_per_step']:.1f} us, "
        f"against {so['loop_us_per_step']:.1f} us for the plain loop `x = x + m(x)`."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_out_argument(parser, "JSON")
    parser.add_argument("--steps", type=int, default=8, help="identity blocks, one euler step each")
    parser.add_argument("--calls", type=int, default=2000, help="timed forwards of each")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (0 = torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = {
        "provenance": provenance(None),
        "steps": args.steps,
        "calls": args.calls,
        "step_overhead": step_overhead(args.steps, args.calls),
    }
    results["markdown"] = sentence(results["step_overhead"])
    write_json(args.out / "step_overhead.json", results)
    print(results["markdown"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
