"""``contdepth eval``: test accuracy of a trained run, optionally under another scheme / step count."""

from __future__ import annotations

import argparse
import functools
import json

from .._checks import DEPTH_BASES
from ..pretrained import evaluate_pretrained
from ..train.amp import AMP_CHOICES
from ..train.backends import apply_backend_flags, backend_flags
from ..train.compiling import COMPILE_MODES
from ..train.distributed import resolve_device
from ..train.evaluate import evaluate_run
from .argtypes import positive_float, positive_int
from .command import Command


def configure(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", help="run directory written by `contdepth train`")
    which.add_argument(
        "--pretrained",
        metavar="NAME",
        help="a trained net the project ships, by name: a model's default (lm_resnet20) or model.tag "
        "(`contdepth models --pretrained`); the data set from --data-dir (default data)",
    )
    a("--scheme", help="evaluate under this scheme (euler, lm2, rk4, heun, ...; default: as trained)")
    a(
        "--steps-per-block",
        type=positive_float,
        help="steps per residual block (default: as trained); a fraction such as 0.5 for depth-continuous nets",
    )
    a(
        "--depth-basis",
        choices=DEPTH_BASES,
        help="linear: evaluate a blockwise-trained net as weights continuous in depth (default: as trained)",
    )
    a(
        "--knots-per-block",
        type=positive_float,
        metavar="K",
        help="project a depth-continuous net's weights onto K knots per block first (2: refine, 0.5: compress)",
    )
    a(
        "--recalibrate-bn",
        type=positive_int,
        metavar="N",
        help="re-estimate BatchNorm statistics at the new scheme and step count from N augmented training images "
        "(e.g. 5000), one set per block evaluation",
    )
    a(
        "--samples",
        type=positive_int,
        metavar="N",
        help="Monte Carlo: also run the net N times with its noise on; ensemble, mean-field and single-draw accuracy",
    )
    a("--seed", type=int, default=0, help="seeds the Monte Carlo draws and the recalibration images (default 0)")
    a("--data-dir", help="data folder (default: the run's)")
    a("--device", help="cuda or cpu (default: cuda when available)")
    a("--batch-size", type=positive_int, help="evaluation batch size (default: the run's, 500)")
    a(
        "--test-subset",
        type=positive_int,
        metavar="N",
        help="N test images evenly spaced through the split (default: the run's, all)",
    )
    a(
        "--compile-mode",
        choices=COMPILE_MODES,
        help="torch.compile the model: default, reduce-overhead (CUDA graphs, CUDA only), max-autotune "
        "(worth it for large test sets only: compiling takes longer than evaluating 10,000 images)",
    )
    a("--amp", choices=AMP_CHOICES, help="bf16 autocast: auto (default: on a CPU with bf16 units), bf16 or none")
    a("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the result (a missing run or data, a bad option: raised, exit code 2)."""
    apply_backend_flags(backend_flags(resolve_device(args.device).type, deterministic=False))
    by_name = args.pretrained is not None
    evaluate = (
        functools.partial(evaluate_pretrained, args.pretrained)
        if by_name
        else functools.partial(evaluate_run, args.run)
    )
    result = evaluate(
        args.scheme,
        args.steps_per_block,
        data_dir=args.data_dir,
        device=args.device,
        batch_size=args.batch_size,
        test_subset=args.test_subset,
        compile_mode=args.compile_mode,
        amp=args.amp,
        depth_basis=args.depth_basis,
        knots_per_block=args.knots_per_block,
        recalibrate_bn=args.recalibrate_bn,
        samples=args.samples,
        seed=args.seed,
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{result['model']} (trained: {result['trained_scheme']}, {result['trained_steps_per_block']} step/block, "
            f"{result['epochs_done']} epochs) under {result['scheme']} with {result['steps_per_block']} step/block: "
            f"test acc {100 * result['test_acc']:.2f}% (error {result['test_error']:.2f}%), "
            f"loss {result['test_loss']:.4f}, {result['images']} images, {result['seconds']:.1f}s"
            + (f"; BatchNorm recalibrated on {result['recalibrated_images']} images" if args.recalibrate_bn else "")
        )
        if by_name:
            recorded = f"{result['recorded_test_error']:.2f}% on {result['recorded_test_images']} images"
            print(f"{result['pretrained']}: test error recorded when it was trained {recorded}")
        mc = result.get("monte_carlo")
        if mc is not None:
            print(
                f"Monte Carlo, {mc['samples']} draws: ensemble acc {100 * mc['ensemble_acc']:.2f}%, mean field "
                f"{100 * mc['mean_field_acc']:.2f}%, one draw {100 * mc['single_draw_acc']:.2f}%, "
                f"predictive entropy {mc['predictive_entropy']:.3f} nats"
            )
    return 0


COMMAND = Command("eval", "test accuracy of a trained run under another scheme / step count", configure, run)
