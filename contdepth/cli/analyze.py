"""``contdepth analyze``: where a network's blocks sit in its scheme's stability region (figure + JSON).

contdepth analyze --run runs/lm56 --images 64
contdepth analyze --model resnet20 --scheme rk4 --steps-per-block 2 --images 8
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch import Tensor, nn

from ..outputs import unwritable
from .argtypes import positive_int
from .command import Command
from .errors import CommandError, os_error_message


def configure(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="run directory written by `contdepth train` (its latest weights)")
    src.add_argument("--model", help="a named model, untrained (see `contdepth models`)")
    a("--scheme", help="analyse under this scheme (euler, rk4, lm2, ...; default: as trained / the model's)")
    a("--steps-per-block", type=positive_int, help="steps per residual block (default: as trained, 1)")
    a("--images", type=positive_int, default=16, help="inputs to follow through the net (default 16)")
    a("--n-eigs", type=positive_int, default=8, help="eigenvalues per sample, step and kind (default 8)")
    a("--tol", type=float, help="ARPACK relative tolerance (default 1e-3 in float32, 1e-10 in float64)")
    a("--data-dir", help="CIFAR folder for the inputs (default: the run's; --model without it: Gaussian images)")
    a("--out", help="output folder (default: runs/analyze/<run folder name>, or runs/analyze/MODEL)")
    a("--seed", type=int, default=0, help="seed of the weights of --model, the Gaussian inputs and ARPACK (default 0)")
    a("--threads", type=positive_int, help="torch CPU threads (1 is fastest for a few small images on a busy machine)")


def _images(data_dir: str | None, dataset: str, n: int, seed: int) -> tuple[Tensor, str]:
    if data_dir is None:
        gen = torch.Generator().manual_seed(seed)
        return torch.randn(n, 3, 32, 32, generator=gen), f"{n} standard-normal 32x32 images (seed {seed})"
    from ..data import DeviceLoader, load_cifar

    data = load_cifar(dataset, data_dir, train=False)
    loader = DeviceLoader(data.test.spread(n), n, train=False, mean=data.mean, std=data.std)
    x = torch.cat([xb for xb, _ in loader.batches()])
    return x, f"{x.shape[0]} {dataset} test images, evenly spaced, from {data_dir}"


def _load(args: argparse.Namespace) -> tuple[nn.Module, dict, Tensor, str]:
    from ..runs.weights import load_weights_into, read_trained_state
    from ..train.build import build_model, model_from_config
    from ..train.loading import load_run_config

    if args.run is not None:
        run = Path(args.run)
        cfg = load_run_config(run)
        trained = read_trained_state(run)
        model = model_from_config(cfg, trained=True)
        load_weights_into(model, trained, cfg.model)
        info = {"run": str(run), "model": cfg.model, "epochs_done": trained.epoch, "weights": trained.source.name}
        x, what = _images(args.data_dir or cfg.data_dir, cfg.dataset, args.images, args.seed)
    else:
        torch.manual_seed(args.seed)
        model = build_model(args.model, num_classes=10)
        info = {"model": args.model.lower(), "untrained": True}
        x, what = _images(args.data_dir, "cifar10", args.images, args.seed)
    info["trained_scheme"], info["trained_steps_per_block"] = model.scheme, model.steps_per_block
    if args.scheme is not None or args.steps_per_block is not None:
        model.rediscretise(scheme=args.scheme, steps_per_block=args.steps_per_block)
    info["scheme"], info["steps_per_block"] = model.scheme, model.steps_per_block
    return model.eval(), info, x, what


def run(args: argparse.Namespace) -> int:
    """Compute the spectra, write the figure and the JSON, print a summary; failures raise (a usage error: exit
    code 2; a failed write: 1)."""
    from ..analysis.spectra import block_spectra
    from ..analysis.spectra_plots import plot_spectra
    from ..provenance import provenance

    if args.tol is not None and not (0 <= args.tol < 1):
        raise CommandError(f"--tol must be in [0, 1), got {args.tol}")
    if args.threads:
        torch.set_num_threads(args.threads)
    # not inside the run folder: a committed run (results/...) stays as it was checked out
    default = Path("runs") / "analyze" / (Path(args.run).resolve().name if args.run else args.model.lower())
    out = Path(args.out) if args.out else default
    problem = unwritable(out)  # before the work, not after it
    if problem is not None:
        raise CommandError(f"--out: {problem}; choose another --out")
    try:
        model, info, x, inputs = _load(args)
        start, cpu = time.perf_counter(), time.process_time()
        spectra = block_spectra(model, x, args.n_eigs, tol=args.tol, seed=args.seed)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    except KeyError as err:  # a weight the net does not have: its name
        raise CommandError(str(err).strip() or type(err).__name__) from err
    title = (
        f"{info['model']} under {info['scheme']}, {info['steps_per_block']} step/block: eigenvalues of h ∂f/∂u "
        f"({args.n_eigs} largest-modulus + {args.n_eigs} rightmost per input and step), {inputs}"
    )
    result = {
        "provenance": {
            **provenance(["contdepth", *sys.argv[1:]], args.seed),
            "device": "cpu",
            "torch_threads": torch.get_num_threads(),
        },
        **info,
        "inputs": inputs,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "spectra": spectra.to_dict(),
    }
    try:  # a full disk, say: the spectra are lost either way, but the user gets one line
        out.mkdir(parents=True, exist_ok=True)
        plot_spectra(spectra, out / "stability.png", title=title)
        (out / "stability.json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    except OSError as err:  # not a usage error
        raise CommandError(f"cannot write {err.filename or out}: {os_error_message(err, filename=False)}", 1) from err
    inside = [s.summary()["inside_fraction"]["mean"] for s in spectra.steps]
    outside_steps = sum(1 for v in inside if v < 1.0)
    print(
        f"{info['model']} under {info['scheme']} ({info['steps_per_block']} step/block): {len(spectra.steps)} steps, "
        f"{x.shape[0]} inputs, {seconds:.1f}s; max spectral radius "
        f"{max(s.summary()['spectral_radius']['max'] for s in spectra.steps):.3g}, "
        f"{outside_steps} steps with eigenvalues outside the region; wrote {out / 'stability.png'} and "
        f"{out / 'stability.json'}"
    )
    return 0


COMMAND = Command(
    "analyze", "where a network's blocks sit in its scheme's stability region (figure + JSON)", configure, run
)
