"""The stochastic-training toy of Sun, Tao and Du (arXiv 1812.00174), measured in full.

1. Accuracy: the planar flow trained deterministically (euler, lm2, rk4) and stochastically
   (Euler–Maruyama with additive Gaussian noise, stochastic depth, dropout in the branch) on two
   moons and on two spirals with 10 % flipped training labels, several seeds; mean ± std, and the
   paired test-accuracy gain of each variant over plain euler on the same seeds. An ablation
   drops the running (kinetic) cost of the objective.
2. The Kolmogorov check: for the trained Gaussian-noise networks (one step per block, i.e. a
   ResNet, and four steps per block) with parameters fixed, ``v(0, x) = E[φ(X_T) | X_0 = x]`` by
   Monte Carlo over Euler–Maruyama passes of the network, refined step by step, against the
   finite-difference solution of the backward Kolmogorov equation.

Writes ``kolmogorov_toy.json`` (numbers + provenance) and ``kolmogorov_toy.png`` /
``kolmogorov_check.png`` to ``--out`` (default ``runs/toy``; ``--out results/toy`` refreshes the
committed ones). ``--quick`` is a smoke run.

    python examples/kolmogorov_toy.py --seeds 5
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt

from contdepth.outputs import save_figure
from contdepth.provenance import provenance
from contdepth.toy._threads import one_thread
from contdepth.toy.experiment import DEFAULT_CONFIGS, format_table, paired_gains, run_experiment
from contdepth.toy.kolmogorov import Grid, kolmogorov_check
from contdepth.toy.kolmogorov import summary as kolmogorov_summary
from contdepth.toy.model import ModelConfig
from contdepth.toy.plots import experiment_figure, kolmogorov_row
from contdepth.toy.train import ToyTrainConfig

ROI = ((-2.0, -1.5), (2.0, 1.5))


def _accuracy(configs, seeds, train, dataset, n_train, n_test, title, record, key):
    print(f"\n== {title} ==", flush=True)
    result = run_experiment(configs, seeds, train, dict(name=dataset, n_train=n_train, n_test=n_test))
    rows, gains = result.summary(), paired_gains(result)
    print(format_table(rows))
    for g in gains:
        print(
            f"  test-accuracy gain of {g['label']:<26} over {g['baseline']}: "
            f"{100 * g['gain_mean']:+5.1f} ± {100 * g['gain_std']:.1f} points"
        )
    record[key] = {
        "dataset": dataset,
        "train": train.to_dict(),
        "configs": [c.to_dict() for c in configs],
        "summary": rows,
        "paired_gains": gains,
        "runs": [vars(r) for r in result.runs],
    }
    return result


def _check(result, label, seed, roi, steps, paths, refine, record):
    model = result.models[(label, seed)]
    print(
        f"\n== Kolmogorov check: {label} (seed {seed}), {roi.shape[1]}x{roi.shape[0]} points, {paths} paths ==",
        flush=True,
    )
    check = kolmogorov_check(model.flow, model.phi, roi, steps=steps, paths=paths, refine=refine, seed=seed)
    s = kolmogorov_summary(check)
    box = [round(v, 1) for v in s["pde"]["box"][0] + s["pde"]["box"][1]]
    print(
        f"  PDE: grid {s['pde']['grid']} (dx {s['pde']['dx']:.3f}), box {box}, "
        f"{s['pde']['time_steps']} time steps, stability number {s['pde']['max_stability_number']:.2f}, "
        f"|v - v(half resolution)| <= {s['pde']['error_estimate_vs_half_resolution']:.1e}"
    )
    for m in s["monte_carlo"]:
        print(
            f"  MC h={m['h']:<8.4g} max|MC-PDE|={m['max_abs_diff']:.4f}  mean={m['mean_abs_diff']:.4f}  "
            f"max s.e.={m['max_se']:.4f}  rms z={m['rms_z']:.2f}  max|z|={m['max_abs_z']:.2f}  "
            f"within 3 s.e. {100 * m['frac_within_3se']:.1f} %  exits {m['exit_fraction']:.1e}",
            flush=True,
        )
    record.setdefault("kolmogorov", []).append({"model": label, "seed": seed, "network_steps": model.flow.steps, **s})
    return check


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--out",
        default="runs/toy",
        help="output folder (default runs/toy, git-ignored; --out results/toy refreshes the committed results)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = list(range(args.seeds))
    if args.quick:
        train, n_train, n_test = ToyTrainConfig(iters=30), 100, 400
        roi, paths, refine, mc_a, mc_b = Grid.box(*ROI, (5, 4)), 200, 2, (4, 16), (16, 64)
    else:
        train, n_train, n_test = ToyTrainConfig(), 300, 3000
        roi, paths, refine, mc_a, mc_b = Grid.box(*ROI, (21, 16)), 2000, 8, (4, 16, 64, 256, 1024), (16, 64, 256)
    record: dict = {
        "provenance": provenance(["python", "examples/kolmogorov_toy.py", *sys.argv[1:]], seeds[0]),
        "seeds": seeds,
    }
    configs = [ModelConfig(scheme=s, noise=n) for s, n in DEFAULT_CONFIGS] + [ModelConfig(noise="gaussian", steps=16)]
    with one_thread():
        moons = _accuracy(configs, seeds, train, "moons", n_train, n_test, "two moons", record, "moons")
        _accuracy(
            [ModelConfig(scheme=s, noise=n) for s, n in DEFAULT_CONFIGS],
            seeds,
            train,
            "spirals",
            n_train,
            n_test,
            "two spirals",
            record,
            "spirals",
        )
        no_cost = ToyTrainConfig(iters=train.iters, lr=train.lr, kinetic=0.0)
        _accuracy(
            [ModelConfig(noise=n) for n in ("none", "gaussian", "stochastic_depth", "dropout")],
            seeds,
            no_cost,
            "moons",
            n_train,
            n_test,
            "two moons, no running cost (kinetic = 0)",
            record,
            "moons_no_running_cost",
        )
        check_a = _check(moons, "euler/gaussian", seeds[0], roi, mc_a, paths, refine, record)
        check_b = _check(moons, "euler/gaussian/16 steps", seeds[0], roi, mc_b, paths, refine, record)

    shown = [(c.label, moons.models[(c.label, seeds[0])]) for c in configs]
    fig = experiment_figure(shown, moons.data[seeds[0]], check_a, kolmogorov_label="euler/gaussian")
    save_figure(fig, out / "kolmogorov_toy.png", dpi=90)
    plt.close(fig)
    fig, axes = plt.subplots(2, 5, figsize=(13, 6.4))
    for row, (check, label) in zip(
        axes, ((check_a, "4 steps (a ResNet), h = 1"), (check_b, "16 steps, h = 1/4")), strict=True
    ):
        kolmogorov_row(row, check)
        row[0].set_ylabel(f"trained with {label}\ninput $x_2$", fontsize=8)
    fig.suptitle(
        "Two moons, the euler/gaussian network trained with 4 and with 16 steps, weights fixed: "
        "v(0, x) = E[φ(X_T) | X_0 = x] by Monte Carlo over its noisy passes\nagainst the finite-difference "
        "solution of its backward Kolmogorov equation, and the weak error against the Euler–Maruyama step h",
        fontsize=9,
    )
    fig.tight_layout()
    save_figure(fig, out / "kolmogorov_check.png", dpi=90)
    record["seconds"] = time.perf_counter() - start
    record["figures"] = ["kolmogorov_toy.png", "kolmogorov_check.png"]
    (out / "kolmogorov_toy.json").write_text(json.dumps(record, indent=2))
    print(
        f"\nwrote {out / 'kolmogorov_toy.json'}, {out / 'kolmogorov_toy.png'}, {out / 'kolmogorov_check.png'} "
        f"({record['seconds'] / 60:.1f} min)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
