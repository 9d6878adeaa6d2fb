"""The stochastic-training toy (``results/toy/``): accuracy over seeds, Monte Carlo against the Kolmogorov PDE."""

from __future__ import annotations

from typing import Any

from ..data import Results, measured, source
from ..fmt import fraction_text, minutes, pct, slope, span, table
from ..registry import block

TOY = "results/toy/kolmogorov_toy.json"


def summary(results: Results, dataset: str) -> dict[str, dict[str, Any]]:
    """label (``scheme/noise``) -> its summary row (test_mean, test_std, ...) on ``dataset``."""
    return {s["label"]: s for s in results.json(TOY)[dataset]["summary"]}


@block("toy-accuracy", TOY)
def accuracy(results: Results) -> str:
    data = results.json(TOY)
    moons, spirals = summary(results, "moons"), summary(results, "spirals")
    best = {
        name: max(rows.values(), key=lambda s: s["test_mean"])["label"]
        for name, rows in (("moons", moons), ("spirals", spirals))
    }

    def cell(rows: dict[str, dict[str, Any]], label: str, name: str) -> str | None:
        if label not in rows:
            return None
        text = f"{pct(rows[label]['test_mean'])} ± {pct(rows[label]['test_std'])}"
        return f"**{text}**" if best[name] == label else text

    labels = [label for label in moons if label in spirals]
    body = [
        [label.replace("/", " / "), cell(moons, label, "moons"), cell(spirals, label, "spirals")] for label in labels
    ]
    head = ["config", f"moons, test acc % ({len(data['seeds'])} seeds)", "spirals"]
    fields = f"`moons.summary`, `spirals.summary`: `test_mean`, `test_std`; {minutes(data['seconds'])} in all"
    return f"{table(head, body)}\n\n" + source(TOY, fields, data["provenance"])


def kolmogorov_rows(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return list(entry["monte_carlo"])


def slopes_above_floor(mc: list[dict[str, Any]], key: str) -> list[float]:
    """Log-log slopes of ``key`` between successive step sizes while the finer one is above the Monte Carlo
    floor (its rms z-score over 1: differences larger than their standard errors on average)."""
    out = []
    for coarse, fine in zip(mc[:-1], mc[1:], strict=True):
        if fine["rms_z"] <= 1.0:
            break
        out.append(slope(coarse[key], fine[key], coarse["h"], fine["h"]))
    return out


@block("toy-kolmogorov", TOY)
def kolmogorov(results: Results) -> str:
    data = results.json(TOY)
    body = []
    for entry in data["kolmogorov"]:
        for r in kolmogorov_rows(entry):
            body.append(
                [
                    entry["model"],
                    fraction_text(r["h"]),
                    f"{r['max_abs_diff']:.4f}",
                    f"{r['mean_abs_diff']:.4f}",
                    f"{r['max_se']:.4f}",
                    f"{r['rms_z']:.2f}",
                    f"{pct(r['frac_within_3se'])}%",
                ]
            )
    head = [
        "trained net",
        "step h",
        "max abs(MC − PDE)",
        "mean abs(MC − PDE)",
        "max MC s.e.",
        "rms z",
        "points within 3 s.e.",
    ]
    main = data["kolmogorov"][0]
    mc = kolmogorov_rows(main)
    slopes = slopes_above_floor(mc, "max_abs_diff") + slopes_above_floor(mc, "mean_abs_diff")
    finest = mc[-1]
    h0, h1 = fraction_text(mc[0]["h"]), fraction_text(finest["h"])
    text = (
        f"For `{main['model']}` (trained at h = {h0}), the differences shrink with h at log-log slopes "
        f"{span(slopes)} (max and mean, between successive h while above the Monte Carlo floor): weak "
        f"convergence, below order 1 over these step sizes. At h = {h1} the two agree within Monte Carlo error: "
        f"max difference {finest['max_abs_diff']:.4f} against a standard error of up to {finest['max_se']:.4f}, "
        f"rms z {finest['rms_z']:.2f}, {pct(finest['frac_within_3se'])}% of the {finest['points']} grid points "
        "within 3 standard errors."
    )
    cite = source(
        TOY, "`kolmogorov[].monte_carlo[]`: `max_abs_diff`, `mean_abs_diff`, `max_se`, `rms_z`, `frac_within_3se`"
    )
    return f"{table(head, body)}\n\n{text}\n\n{cite}"


def toy_slopes(results: Results) -> list[float]:
    mc = kolmogorov_rows(results.json(TOY)["kolmogorov"][0])
    return slopes_above_floor(mc, "max_abs_diff") + slopes_above_floor(mc, "mean_abs_diff")


@block("toy-source", TOY)
def toy_source(results: Results) -> str:
    data = results.json(TOY)
    prov = data["provenance"]
    return (
        f"`toy/` holds the results of `{prov['command']}` ({measured(prov)}; {len(data['seeds'])} seeds, "
        f"{minutes(data['seconds'])} in all): test accuracy of every scheme and noise on two moons and two spirals, "
        "and the Monte Carlo of the trained Gaussian net against the Kolmogorov equation. "
        + source(TOY, "`provenance`, `seeds`, `seconds`")
    )
