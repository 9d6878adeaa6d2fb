"""Convergence orders: the deterministic schemes, LM's modified equation, Euler–Maruyama's weak order."""

from __future__ import annotations

from typing import Any

from ..data import Results, source
from ..fmt import num, pm, signed, table
from ..registry import block

CONVERGENCE = "benchmarks/results/convergence.json"
WEAK = "benchmarks/results/weak_convergence.json"
THEORY = {0: "0", 1: "1", 2: "2", 4: "4"}


def _fit(x: dict[str, Any]) -> str:
    return pm(x["order"], x["stderr"])


@block("convergence", CONVERGENCE)
def convergence(results: Results) -> str:
    data = results.json(CONVERGENCE)
    a, b = data["problems"]["scalar"], data["problems"]["conv"]
    k = data["k"]
    rows = [
        [s, a["schemes"][s]["theory"], _fit(a["schemes"][s]), b["schemes"][s]["theory"], _fit(b["schemes"][s])]
        for s in a["schemes"]
    ]
    rows.append([f"lm2 vs (1+k)u' = f, k = {k:g}", 1, _fit(a["lm2"]["limit_fit"]), 1, _fit(b["lm2"]["limit_fit"])])
    rows.append([f"lm2 vs u' = f, k = {k:g}", 0, _fit(a["lm2"]["plain_fit"]), 0, _fit(b["lm2"]["plain_fit"])])
    orders = table(
        ["scheme", "(a) scalar: theory", "(a) fitted order", "(b) conv 8x8: theory", "(b) fitted order"], rows
    )
    rescale = table(
        ["problem", "k", "1 + k", "fitted c (finest h)", "Richardson c", "order of c → 1+k"],
        [
            [
                r["problem"],
                signed(r["k"], 1),
                num(r["one_plus_k"], 4),
                num(r["c_fit"][-1], 4),
                num(r["c_richardson"], 5),
                num(r["deviation_order"]),
            ]
            for r in data["rescaling"]
        ],
    )
    cite = source(CONVERGENCE, "`problems.*.schemes.*.order`, `problems.*.lm2`, `rescaling`", data["provenance"])
    return f"{orders}\n\n{rescale}\n\n{cite}"


def weak_rows(data: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(law, E ξ³, GBM fit, nonlinear fit) for every law of weak_convergence.json."""
    gbm, nonlinear = data["problems"]["gbm"]["laws"], data["problems"]["nonlinear"]["laws"]
    return [(law, data["third_moments"][law], gbm[law], nonlinear[law]) for law in gbm]


def weak_theory(law: str) -> str:
    return "1/2" if law.startswith("two-point, p") else "1"


@block("weak-orders", WEAK)
def weak_orders(results: Results) -> str:
    data = results.json(WEAK)
    exact = data["gbm_exact_discrete"]["laws"]
    rows = [
        [law, third, weak_theory(law), _fit(g), _fit(n), num(exact[law]["order"]) if law in exact else ""]
        for law, third, g, n in weak_rows(data)
    ]
    strong = [data["problems"][p]["strong_gaussian"] for p in ("gbm", "nonlinear")]
    rows.append(["gaussian, strong error", "0", "1/2", _fit(strong[0]), _fit(strong[1]), ""])
    steps = data["problems"]["gbm"]["steps"]
    orders = table(
        [
            "noise law",
            "E ξ³",
            "theory",
            "(a) GBM, MC",
            "(b) nonlinear, MC",
            f"(a) GBM, exact E X_N³ (N = {steps[0]}..{steps[-1]})",
        ],
        rows,
    )
    checks = data["library_sampler_check"]
    sampler = (
        f"contdepth's own samplers, uncoupled, give GBM's exact `E X_N³` at N = {checks[0]['steps']} within "
        f"{max(abs(c['z']) for c in checks):.2f} standard errors (`library_sampler_check`)."
    )
    z = _exact_z(data)
    exact_steps = ", ".join(map(str, data["nonlinear_exact_discrete"]["steps"]))
    note = (
        f"{sampler} On the nonlinear SDE the Monte Carlo weak errors of the two-point laws and Rademacher agree "
        f"with the exact expectation over all 2^N noise paths (N = {exact_steps}) "
        f"within {max(abs(v) for v in z):.1f} standard errors."
    )
    cite = source(
        WEAK,
        "`problems.*.laws.*.order`, `gbm_exact_discrete`, `library_sampler_check`, `nonlinear_exact_discrete`",
        data["provenance"],
    )
    return f"{orders}\n\n{note}\n\n{cite}"


def _exact_z(data: dict[str, Any]) -> list[float]:
    exact = data["nonlinear_exact_discrete"]
    laws = data["problems"]["nonlinear"]["laws"]
    steps = data["problems"]["nonlinear"]["steps"]
    z = []
    for law, values in exact["laws"].items():
        for n, value in zip(exact["steps"], values, strict=True):
            i = steps.index(n)
            batches = laws[law]["batch_errors"]
            signed = sum(b[i] for b in batches) / len(batches)  # "errors" holds their absolute values
            z.append((signed - value) / laws[law]["error_stderr"][i])
    return z


@block("weak-orders-short", WEAK)
def weak_orders_short(results: Results) -> str:
    data = results.json(WEAK)
    rows = [[law, _fit(g), _fit(n)] for law, _, g, n in weak_rows(data)]
    cite = source(
        WEAK, "`problems.gbm.laws.*.order`, `problems.nonlinear.laws.*.order`", data["provenance"], command=False
    )
    return f"{table(['noise law', 'GBM', 'nonlinear SDE'], rows)}\n\n{cite}"
