"""Where do a trained network's blocks sit in its scheme's stability region, and does that predict refinement?

Takes the trained nets of ``refinement.py`` (by default the committed seed-0 ``preact_resnet20``, scheme
``euler``, and ``lm_resnet20``, scheme ``lm2``, of the CPU study in ``results/cifar10-cpu/``), follows
``--images`` CIFAR-10 test images through each and computes, at every flow step, the ``--n-eigs``
largest-modulus and rightmost eigenvalues of ``∂f/∂u`` (``cd.analysis.block_spectra``, at the trained
step h = 1). Refining to s steps per block scales ``z = hλ`` by ``1/s`` along (nearly) the same states,
so the fraction of eigenvalues in euler's / rk4's region at ``h = 1/s`` is read from the same spectra
(for the LM net: of its limit field ``f/(1+k)``, which euler and rk4 integrate after ``rediscretise``)
and set beside refinement.py's accuracies. Then times ``--speed-images`` images of an (untrained)
ResNet-56 with 8 eigenvalues per block, the speed target.

    python3 benchmarks/stability.py --data-dir data [--run DIR ...] [--images 64] [--speed-images 64] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import refinement
from _common import ROOT, add_out_argument, markdown_table, provenance, write_json

import contdepth as cd
from contdepth.analysis import block_spectra, stability_region
from contdepth.analysis.spectra_plots import plot_spectra

STEPS = [1, 2, 4, 8]


def all_z(spectra) -> list[np.ndarray]:
    """Per step: every eigenvalue found (all samples), as one complex array."""
    return [np.concatenate([s.largest.ravel(), s.rightmost.ravel()]) for s in spectra.steps]


def limit_scale(model, spectra) -> list[float]:
    """Per step: the factor ``1/(1+k)`` that turns an LM block's ``∂f/∂u`` into its limit field's (1 otherwise)."""
    flows = model.flows()
    out = []
    for s in spectra.steps:
        scheme = flows[s.stage].scheme
        out.append(1.0 / (1.0 + float(scheme.k.detach()[s.block])) if scheme.name == "lm2" else 1.0)
    return out


def refinement_table(model_name: str, spectra, scales: list[float], refine: dict) -> tuple[list, list[dict]]:
    rows, records = [], []
    euler, rk4 = stability_region("euler"), stability_region("rk4")
    acc = {(r["scheme"], r["steps_per_block"]): r for r in refine.get("rows", [])}
    for s in STEPS:
        zs = [z[np.isfinite(z)] * c / s for z, c in zip(all_z(spectra), scales, strict=True)]
        z = np.concatenate(zs)
        in_euler = float(np.mean(euler.contains(z, tol=1e-6)))
        in_rk4 = float(np.mean(rk4.contains(z, tol=1e-6)))
        steps_all_rk4 = float(np.mean([np.all(rk4.contains(v, tol=1e-6)) for v in zs]))
        rec = {
            "steps_per_block": s,
            "inside_euler": in_euler,
            "inside_rk4": in_rk4,
            "steps_all_inside_rk4": steps_all_rk4,
        }
        e = acc.get(("euler", s))
        if e is not None:
            rec["euler_acc"] = e["test_acc"]
            rec["euler_dist_to_dopri5"] = e.get("logit_distance_to_dopri5")
        r = acc.get(("rk4", s))
        if r is not None:
            rec["rk4_acc"] = r["test_acc"]
            rec["rk4_dist_to_dopri5"] = r.get("logit_distance_to_dopri5")
        records.append(rec)

        def pct(v):
            return "" if v is None else f"{100 * v:.1f}"

        def dist(v):
            return "" if v is None else f"{v:.3f}"

        rows.append(
            [
                model_name,
                s,
                pct(in_euler),
                pct(in_rk4),
                pct(steps_all_rk4),
                f"{pct(rec.get('euler_acc'))} / {dist(rec.get('euler_dist_to_dopri5'))}",
                f"{pct(rec.get('rk4_acc'))} / {dist(rec.get('rk4_dist_to_dopri5'))}" if "rk4_acc" in rec else "",
            ]
        )
    return rows, records


def speed(images: int, n_eigs: int, data_dir: Path, seed: int) -> dict:
    torch.manual_seed(seed)
    model = cd.models.get("resnet56").eval()
    batches, _ = refinement.test_batches(data_dir, images, images)
    x = batches[0][0]
    start, cpu = time.perf_counter(), time.process_time()
    spectra = block_spectra(model, x, n_eigs, seed=seed)
    wall, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    mv = np.concatenate([s.matvecs for s in spectra.steps])
    return {
        "model": "resnet56 (untrained, He-normal init)",
        "images": images,
        "n_eigs": n_eigs,
        "blocks": len(spectra.steps),
        "seconds": wall,
        "cpu_seconds": cpu_s,
        "torch_threads": torch.get_num_threads(),
        "batched_products": spectra.products,
        "matvecs_per_sample_and_block_mean": float(mv.mean()),
        "matvecs_per_sample_and_block_max": int(mv.max()),
        "tol": spectra.tol,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_out_argument(parser)
    parser.add_argument("--images", type=int, default=64, help="test images followed through each trained net")
    parser.add_argument("--n-eigs", type=int, default=8)
    parser.add_argument("--speed-images", type=int, default=64, help="images for the ResNet-56 timing (0: skip)")
    parser.add_argument(
        "--run", type=Path, nargs="*", default=refinement.DEFAULT_RUNS, help="trained run folders (none: timing only)"
    )
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data", help="folder holding cifar-10-batches-py/")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--refinement-json", type=Path, default=Path(__file__).resolve().parent / "results" / "refinement.json"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    refinement.check_runs(args.run, args.data_dir)
    results: dict = {"provenance": provenance(args.seed), "images": args.images, "n_eigs": args.n_eigs, "models": []}
    table = []
    nets = args.run
    measured = []
    for run in nets:
        model, info = refinement.load_run(run)
        name = info["model"]
        batches, _ = refinement.test_batches(args.data_dir, args.images, args.images)
        x = batches[0][0]
        start = time.perf_counter()
        spectra = block_spectra(model, x, args.n_eigs, seed=args.seed)
        seconds = time.perf_counter() - start
        print(f"{name}: {len(spectra.steps)} steps, {seconds:.0f} s", flush=True)
        plot_spectra(
            spectra,
            args.out / f"stability_{name}.png",
            title=f"{name} (trained: {info['scheme']}, {info['epochs']} epochs on {info['train_images']} images): "
            f"eigenvalues of h ∂f/∂u on {args.images} test images",
        )
        measured.append((name, model, info, spectra, seconds))
    # read only now: the spectra take minutes, and refinement.py may be writing its results meanwhile
    refine = json.loads(args.refinement_json.read_text()) if args.refinement_json.is_file() else {"models": []}
    for name, model, info, spectra, seconds in measured:
        ref = next((m for m in refine["models"] if m["model"] == name), {})
        rows, records = refinement_table(name, spectra, limit_scale(model, spectra), ref)
        table += rows
        results["models"].append(
            {**info, "seconds": seconds, "refinement": records, "spectra": spectra.to_dict(eigenvalues=False)}
        )
    header = [
        "net",
        "steps/block s",
        "% eigenvalues in euler region at h=1/s",
        "% in rk4 region",
        "% steps all in rk4",
        "euler: acc % / dist. to dopri5",
        "rk4: acc % / dist.",
    ]
    if nets:
        results["markdown"] = markdown_table(header, table)
        print(results["markdown"])
    if args.speed_images > 0:
        results["speed"] = speed(args.speed_images, 8, args.data_dir, args.seed)
        print(json.dumps(results["speed"], indent=1))
    # the timing alone (--run with no folder) goes beside the nets' results instead of replacing them
    write_json(args.out / ("stability.json" if nets else "stability_speed.json"), results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
