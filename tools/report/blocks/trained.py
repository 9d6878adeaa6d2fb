"""Trained nets under refinement: accuracy and distance to the continuous limit, and their blocks' spectra."""

from __future__ import annotations

from typing import Any

from ..data import Results, source
from ..fmt import fraction_text, minutes, pct, pm, span, table, thousands
from ..registry import block

REFINEMENT = ("benchmarks/results/refinement.json", "benchmarks/results/refinement_seed1.json")
STABILITY = ("benchmarks/results/stability.json", "benchmarks/results/stability_seed1.json")
STABILITY_SPEED = "benchmarks/results/stability_speed.json"


def models(results: Results, paths: tuple[str, ...]) -> list[dict[str, Any]]:
    """The nets of the given files, preact before LM, seed 0 before seed 1."""
    found = [m for path in paths for m in results.json(path)["models"]]
    return sorted(found, key=lambda m: (m["model"].startswith("lm_"), m["run"]))


def dopri5_row(m: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in m["rows"] if r["scheme"] == "dopri5")


def trained_row(m: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in m["rows"] if r["scheme"] == m["scheme"] and r["steps_per_block"] == 1)


def finest_row(m: dict[str, Any], scheme: str) -> dict[str, Any]:
    return max((r for r in m["rows"] if r["scheme"] == scheme), key=lambda r: r["steps_per_block"])


def _label_rank(label: str) -> int:
    """Rows by scheme: Euler, LM, rk4, then the adaptive limit (labels start with the scheme's name)."""
    order = ("euler", "lm2", "rk4", "dopri5")
    scheme = label.replace(",", " ").split()[0]
    return order.index(scheme) if scheme in order else len(order)


@block("refinement", *REFINEMENT)
def refinement(results: Results) -> str:
    acc, cites = refinement_table(results)
    return f"{acc}\n\n{refinement_reading(results)}\n\nOrders fitted over 1 to 8 steps per block. {cites}"


def refinement_table(results: Results) -> tuple[str, str]:
    """The accuracy and distance table of every net, and the captions of its files."""
    nets = models(results, REFINEMENT)
    labels: list[str] = []
    for m in nets:
        labels += [r["label"] for r in m["rows"] if r["label"] not in labels]
    labels.sort(key=_label_rank)
    cells = {
        (m["run"], r["label"]): f"{pct(r['test_acc'], 2)} / {r['logit_distance_to_dopri5']:.3f}"
        for m in nets
        for r in m["rows"]
    }
    head = ["discretisation", *(f"{m['run']} (trained: {m['scheme']}): acc % / dist." for m in nets)]
    acc = table(head, [[label, *(cells.get((m["run"], label)) for m in nets)] for label in labels])
    cites = " ".join(
        source(
            path,
            "`models[].rows[].test_acc`, `logit_distance_to_dopri5`, `models[].orders_to_dopri5`",
            results.json(path)["provenance"],
        )
        for path in REFINEMENT
    )
    return acc, cites


def refinement_summary(results: Results) -> list[dict[str, Any]]:
    """Per net: trained accuracy, accuracy at the finest step of its scheme and of Euler, rk4, dopri5, orders."""
    out = []
    for m in models(results, REFINEMENT):
        out.append(
            {
                "run": m["run"],
                "model": m["model"],
                "scheme": m["scheme"],
                "trained": trained_row(m)["test_acc"],
                "finest": finest_row(m, m["scheme"]),
                "finest_euler": finest_row(m, "euler"),
                "rk4": finest_row(m, "rk4")["test_acc"],
                "dopri5": dopri5_row(m)["test_acc"],
                "distance": trained_row(m)["logit_distance_to_dopri5"],
                "orders": [f["order"] for f in m["orders_to_dopri5"].values()],
                "fits": {scheme: pm(f["order"], f["stderr"]) for scheme, f in m["orders_to_dopri5"].items()},
            }
        )
    return out


def refinement_reading(results: Results) -> str:
    lines = []
    for s in refinement_summary(results):
        f = s["finest"]
        fits = ", ".join(f"{scheme} {fit}" for scheme, fit in s["fits"].items())
        lines.append(
            f"- `{s['run']}`: {pct(s['trained'])}% at its trained step, {pct(f['test_acc'])}% at "
            f"{f['steps_per_block']} {s['scheme']} steps per block, rk4 {pct(s['rk4'])}%, dopri5 {pct(s['dopri5'])}%; "
            f"logit distance to dopri5 {s['distance']:.2f} at the trained step, falling at order {fits}."
        )
    return "\n".join(lines)


def _step_stats(m: dict[str, Any]) -> dict[str, Any]:
    steps = m["spectra"]["steps"]
    return {
        "first": [s["max_real"]["mean"] for s in steps[:-1]],
        "last": steps[-1]["max_real"]["mean"],
        "radius": max(s["spectral_radius"]["max"] for s in steps),
    }


@block("stability", *STABILITY)
def stability(results: Results) -> str:
    nets = models(results, STABILITY)
    steps = [r["steps_per_block"] for r in nets[0]["refinement"]]
    rows = []
    for m in nets:
        refine = m["refinement"]
        rows.append(
            [
                m["run"],
                *(pct(r["inside_euler"]) for r in refine),
                span([100 * r["inside_rk4"] for r in refine], 1),
                span([100 * r["steps_all_inside_rk4"] for r in refine], 1),
            ]
        )
    head = [
        "net",
        *(f"% in euler's region, h = {fraction_text(1 / s)}" for s in steps),
        "% in rk4's, every h",
        "% steps all in rk4's",
    ]
    reading = []
    for m in nets:
        st = _step_stats(m)
        reading.append(
            f"- `{m['run']}`: rightmost eigenvalue of h ∂f/∂u at h = 1, batch mean {span(st['first'], 1)} in the first "
            f"{len(st['first'])} flow steps and {st['last']:.1f} in the last; spectral radius up to {st['radius']:.1f}."
        )
    first = results.json(STABILITY[0])
    cites = " ".join(
        source(
            path,
            "`models[].refinement`, `models[].spectra.steps[].max_real`, `spectral_radius`",
            results.json(path)["provenance"],
        )
        for path in STABILITY
    )
    n = first["n_eigs"]
    intro = (
        f"{first['images']} test images per net, {n} largest-modulus and {n} rightmost eigenvalues per image and step."
    )
    return f"{table(head, rows)}\n\n" + "\n".join(reading) + f"\n\n{intro} {cites}"


@block("stability-speed", STABILITY_SPEED)
def stability_speed(results: Results) -> str:
    data = results.json(STABILITY_SPEED)
    s = data["speed"]
    return (
        f"An untrained ResNet-56 ({s['blocks']} flow steps, {s['n_eigs']} largest-modulus and {s['n_eigs']} rightmost "
        f"eigenvalues per image and step, tol {s['tol']:g}, {s['torch_threads']} threads): {s['images']} images took "
        f"{s['seconds']:.0f} s wall ({minutes(s['seconds'])}) and {s['cpu_seconds']:.0f} s of CPU time, "
        f"{s['matvecs_per_sample_and_block_mean']:.0f} Jacobian-vector products per image and step on average "
        f"(at most {thousands(s['matvecs_per_sample_and_block_max'])}). "
        + source(STABILITY_SPEED, "`speed`", data["provenance"], command=False)
    )
