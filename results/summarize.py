"""Turn committed runs into results/README.md: our CIFAR-10 errors beside the LM-ResNet paper's.

Reads ``results/<study>/<model>[-<noise>]-s<seed>/results.json`` (written by ``contdepth train``),
groups runs by (model, noise), and writes mean ± std test error, parameters, epoch and wall time,
a plot of error against parameters for both families, and the learned k_n of LM runs.

Run: python results/summarize.py [--root results] [--out DIR]   (``--out results`` refreshes the committed README)
"""
from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

# CIFAR-10 test error (%) reported by Lu, Zhong, Li, Dong (2018), pre-activation, 160 epochs.
PAPER = {
    ("preact_resnet20", None): 8.75, ("preact_resnet32", None): 7.51, ("preact_resnet44", None): 7.17,
    ("preact_resnet56", None): 6.97, ("preact_resnet110", None): 6.37, ("preact_resnet164", None): 5.46,
    ("lm_resnet20", None): 8.33, ("lm_resnet32", None): 7.18, ("lm_resnet44", None): 6.66,
    ("lm_resnet56", None): 6.31, ("lm_resnet110", None): 6.16, ("lm_resnet164", None): 5.27,
    ("preact_resnet110", "sd:0.5"): 5.25, ("lm_resnet56", "sd:0.8"): 5.14, ("lm_resnet110", "sd:0.5"): 4.80,
    ("preact_resnet110", "gaussian:0.001"): 5.52, ("preact_resnet56", "sd:0.8"): 5.55,
}

NOTE = (
    "Our CIFAR-10 copy is JPEG-compressed (quality 75), so absolute errors sit above the paper's; "
    "the comparison that counts is LM-ResNet against ResNet of the same depth on the same data."
)


def load_runs(root: Path) -> dict[tuple[str, str, str | None], list[dict]]:
    """Complete runs grouped by (study, model, noise)."""
    groups: dict[tuple[str, str, str | None], list[dict]] = defaultdict(list)
    for path in sorted(root.glob("*/*/results.json")):
        run = json.loads(path.read_text())
        if not run.get("complete"):
            continue
        groups[(path.parent.parent.name, run["model"], run.get("noise"))].append(run)
    return groups


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def table(groups) -> list[str]:
    lines = [
        "| study | model | noise | runs | our error % | paper error % | params (M) | epoch s | wall h | device |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (study, model, noise), runs in sorted(groups.items()):
        errors = [r["final_test_error"] for r in runs]
        paper = PAPER.get((model, noise))
        epoch_s = statistics.mean(r["mean_epoch_seconds"] for r in runs)
        wall_h = statistics.mean(r["mean_epoch_seconds"] * r["epochs"] for r in runs) / 3600
        device = runs[0].get("provenance", {}).get("device", "?")
        lines.append(
            f"| {study} | {model} | {noise or '-'} | {len(runs)} | {mean_std(errors)} | "
            f"{'-' if paper is None else f'{paper:.2f}'} | {runs[0]['params'] / 1e6:.2f} | {epoch_s:.1f} | {wall_h:.2f} | {device} |"
        )
    return lines


def plot(groups, out: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    drew = False
    for family, prefix in [("ResNet (pre-act)", "preact_resnet"), ("LM-ResNet", "lm_resnet")]:
        points = sorted(
            (runs[0]["params"] / 1e6, statistics.mean(r["final_test_error"] for r in runs))
            for (study, model, noise), runs in groups.items()
            if study == "cifar10" and noise is None and model.startswith(prefix)
        )
        if points:
            ax.plot(*zip(*points), "o-", label=f"{family}, ours")
            drew = True
        paper = sorted((runs[0]["params"] / 1e6, PAPER[(m, None)]) for (s, m, n), runs in groups.items()
                       if s == "cifar10" and n is None and m.startswith(prefix) and (m, None) in PAPER)
        if paper:
            ax.plot(*zip(*paper), "x--", label=f"{family}, paper")
    if not drew:
        plt.close(fig)
        return False
    ax.set_xlabel("parameters (millions)")
    ax.set_ylabel("CIFAR-10 test error (%)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(Path(__file__).parent), help="folder holding <study>/<run>/results.json")
    parser.add_argument("--out", default=str(Path(__file__).parent.parent / "runs" / "summary"),
                        help="where README.md and the plot go (default runs/summary, git-ignored; "
                             "results refreshes the committed README)")
    args = parser.parse_args()
    root, out = Path(args.root), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    groups = load_runs(root)
    lines = ["# Results", "", NOTE, ""]
    if groups:
        lines += table(groups)
        if plot(groups, out / "error_vs_params.png"):
            lines += ["", "![error versus parameters](error_vs_params.png)"]
    else:
        lines.append("No complete GPU runs are committed yet (see `scripts/gpu_cifar_runs.sh`).")
    (out / "README.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'README.md'} ({sum(len(r) for r in groups.values())} runs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
