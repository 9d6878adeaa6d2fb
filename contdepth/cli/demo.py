"""``contdepth demo``: the stochastic-training toy on built-in 2-D data, on CPU (one thread).

Trains the deterministic and stochastic variants (one seed by default), prints a table, checks
the backward Kolmogorov equation of the Gaussian-noise model against Monte Carlo, and writes
``demo.png`` and ``demo.json`` (results + provenance) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

from ..outputs import save_figure
from ..provenance import provenance
from ..toy._threads import one_thread
from ..toy.data import DATASETS
from ..toy.experiment import DEFAULT_CONFIGS, format_table, run_experiment
from ..toy.kolmogorov import Grid, kolmogorov_check
from ..toy.kolmogorov import summary as kolmogorov_summary
from ..toy.model import NOISES, SCHEMES, ModelConfig
from ..toy.train import ToyTrainConfig
from .command import Command
from .errors import CommandError, os_error_message


# Sizes of the default and the --fast (smoke test) runs.
@dataclass(frozen=True)
class Preset:
    """Sizes of a demo: Adam updates, data points, Kolmogorov-check grid nodes, paths, step counts, refinement."""

    iters: int
    n_train: int
    n_test: int
    roi_nodes: tuple[int, int]
    paths: int
    mc_steps: tuple[int, ...]
    refine: int


PRESETS = {
    "default": Preset(
        iters=600, n_train=300, n_test=3000, roi_nodes=(11, 9), paths=1000, mc_steps=(4, 16, 64, 256), refine=8
    ),
    "fast": Preset(iters=30, n_train=100, n_test=400, roi_nodes=(5, 4), paths=200, mc_steps=(4, 16), refine=2),
}
ROI = ((-2.0, -1.5), (2.0, 1.5))


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``demo`` flags."""
    parser.add_argument(
        "--scheme",
        default=None,
        help=f"comma-separated schemes ({', '.join(SCHEMES)}); noise turns euler into Euler–Maruyama",
    )
    parser.add_argument(
        "--noise",
        default=None,
        help=f"comma-separated noise kinds ({', '.join(NOISES)}); default: the standard set of 6 configurations",
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="steps over the 4 blocks (a multiple of 4; default 4: a ResNet)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of data, weights and noise (default 0)")
    parser.add_argument("--seeds", type=int, default=1, help="number of seeds, from --seed on (default 1)")
    parser.add_argument("--dataset", default="moons", help=f"{', '.join(DATASETS)} (default moons)")
    parser.add_argument("--out", default="contdepth-demo", help="output folder (default ./contdepth-demo)")
    parser.add_argument("--fast", action="store_true", help="tiny sizes, a few seconds (for tests)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _split(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def build_configs(schemes: list[str] | None, noises: list[str] | None, steps: int | None) -> list[ModelConfig]:
    """The standard set when neither is given, else every (scheme, noise) pair (defaults euler / none)."""
    if schemes is None and noises is None:
        pairs = list(DEFAULT_CONFIGS)
    else:
        pairs = [(s, n) for s in (schemes or ["euler"]) for n in (noises or ["none"])]
    configs = [ModelConfig(scheme=s, noise=n, steps=steps) for s, n in pairs]
    return list({c: None for c in configs})  # de-duplicated (aliases), in order


def _output_folder(name: str) -> Path:
    """``--out`` made ready to write (``ValueError`` when it is empty, a file, or cannot be made)."""
    if not name.strip():
        raise ValueError("--out is empty; name the output folder (for example --out contdepth-demo)")
    out = Path(name).expanduser()
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot create --out {out.absolute()}: {os_error_message(err, filename=False)}") from None
    return out


def run(args: argparse.Namespace) -> int:
    """Train, check, plot and write ``demo.png`` and ``demo.json``; a bad option raises (exit code 2), a failed
    write too (1)."""
    start = time.perf_counter()
    preset = PRESETS["fast" if args.fast else "default"]
    configs = build_configs(_split(args.scheme), _split(args.noise), args.steps)
    if args.dataset not in DATASETS:
        raise ValueError(f"unknown dataset {args.dataset!r}; valid choices: {', '.join(DATASETS)}")
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    if not 0 <= args.seed <= 2**63 - args.seeds:
        raise ValueError(f"--seed must be an integer in [0, 2**63 - seeds], got {args.seed}")
    out = _output_folder(args.out)
    seeds = list(range(args.seed, args.seed + args.seeds))
    train = ToyTrainConfig(iters=preset.iters)
    data_options = dict(name=args.dataset, n_train=preset.n_train, n_test=preset.n_test)
    print(
        f"contdepth demo: {len(configs)} configuration(s) x {len(seeds)} seed(s) on {args.dataset}, "
        f"{preset.n_train} training points, {train.iters} full-batch Adam updates each",
        flush=True,
    )
    with one_thread():
        result = run_experiment(configs, seeds, train, data_options, progress=not args.no_progress)
        rows = result.summary()
        print(format_table(rows), flush=True)

        check, check_label = None, None
        gaussian = [c for c in configs if c.noise == "gaussian"]
        if gaussian:
            check_label = gaussian[0].label
            model = result.models[(check_label, seeds[0])]
            roi = Grid.box(ROI[0], ROI[1], preset.roi_nodes)
            print(f"Kolmogorov check on {check_label}: Monte Carlo vs finite differences ...", flush=True)
            check = kolmogorov_check(
                model.flow,
                model.phi,
                roi,
                steps=preset.mc_steps,
                paths=preset.paths,
                refine=preset.refine,
                seed=seeds[0],
            )
            best = check["mc"][-1]
            own = next((m for m in check["mc"] if m["steps"] == model.flow.steps), None)
            print(
                f"  v(0,x) = E[sigmoid(readout(X_T)) | X_0 = x] on {roi.shape[1]}x{roi.shape[0]} points: "
                f"max |MC - PDE| = {best['agreement']['max_abs_diff']:.4f} at h = {best['h']:.3g} "
                f"(max MC s.e. {best['agreement']['max_se']:.4f}, rms z {best['agreement']['rms_z']:.2f})"
            )
            if (
                own is not None
                and own is not best
                and model.flow.scheme.name == "euler"
                and model.flow.noise is not None
            ):
                print(
                    f"  at the network's own step h = {own['h']:.3g}: max |MC - PDE| = "
                    f"{own['agreement']['max_abs_diff']:.4f} (weak error O(h))"
                )

    from ..toy.plots import experiment_figure  # matplotlib only when writing the figure

    shown = [(c.label, result.models[(c.label, seeds[0])]) for c in configs]
    fig = experiment_figure(shown, result.data[seeds[0]], check, kolmogorov_label=check_label or "")
    png, js = out / "demo.png", out / "demo.json"
    try:
        save_figure(fig, png, dpi=110)
    except OSError as err:  # a full disk, say
        raise CommandError(f"cannot write {png}: {os_error_message(err, filename=False)}", code=1) from err
    seconds = time.perf_counter() - start
    record = {
        "provenance": provenance(_command(args), args.seed),
        "dataset": {**data_options, "summary": result.data[seeds[0]].summary()},
        "train": train.to_dict(),
        "configs": [c.to_dict() for c in configs],
        "seeds": seeds,
        "summary": rows,
        "runs": [vars(r) for r in result.runs],
        "kolmogorov": None if check is None else {"model": check_label, **kolmogorov_summary(check)},
        "seconds": seconds,
        "figure": png.name,
    }
    try:
        js.write_text(json.dumps(record, indent=2))
    except OSError as err:
        raise CommandError(f"cannot write {js}: {os_error_message(err, filename=False)}", code=1) from err
    print(f"wrote {png.resolve()} and {js.resolve()} ({seconds:.0f} s)")
    return 0


def _command(args: argparse.Namespace) -> list[str]:
    """The command line that reproduces this run (from the parsed options, so it works under tests)."""
    cmd = ["contdepth", "demo"]
    for name in ("scheme", "noise", "steps"):
        if getattr(args, name) is not None:
            cmd += [f"--{name}", str(getattr(args, name))]
    cmd += ["--seed", str(args.seed), "--seeds", str(args.seeds), "--dataset", args.dataset, "--out", str(args.out)]
    return cmd + (["--fast"] if args.fast else [])


COMMAND = Command(
    "demo", "the stochastic-training toy of Sun, Tao and Du on built-in 2-D data (CPU, ~1 min)", configure, run
)
