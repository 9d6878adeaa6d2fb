"""Depth as a dial (benchmarks/depth_dial.py) and the networks' SDE (benchmarks/sde_networks.py)."""

from __future__ import annotations

from typing import Any

from ..data import Results, commit_text, source
from ..fmt import num, pct, signed, span, table
from ..registry import block

DIAL = "benchmarks/results/depth_dial.json"
SDE = "benchmarks/results/sde_networks.json"


def _row(net: dict[str, Any], scheme: str, steps: float | None) -> dict[str, Any] | None:
    return next(
        (r for r in net["rows"] if r["scheme"] == scheme and (steps is None or r["steps_per_block"] == steps)), None
    )


def _pair(row: dict[str, Any] | None) -> str:
    """``as trained / recalibrated`` accuracy (%), or ``…`` while it is not measured."""
    if row is None:
        return "…"
    recal = row.get("recalibrated")
    return f"{pct(row['as_trained']['test_acc'])} / " + ("…" if recal is None else pct(recal["test_acc"]))


def _summary(net: dict[str, Any]) -> dict[str, Any] | None:
    """The benchmark's verdict on a net, once the rows in settle it (a net measured before verdicts were written
    as it goes: once every row of it is in)."""
    s = net.get("summary")
    return s if s and s.get("decided", net.get("complete")) else None


_WHERE = {"dopri5": "under dopri5", "0.5x": "compressed to ½x"}


def _worst(s: dict[str, Any]) -> str:
    """The largest drop in points and where it is (``so far`` while some of the judged rows are missing)."""
    drops = {k: d for k, d in s["drop_points"].items() if d is not None}
    where = max(drops, key=lambda k: drops[k])
    partial = len(drops) < len(s["drop_points"])
    place = _WHERE.get(where, f"at {where} steps")
    return f"worst {s['worst_drop_points']:+.1f} {place}" + (" so far" if partial else "")


def _verdict(net: dict[str, Any]) -> str:
    s = _summary(net)
    if s is None:
        return "measuring"
    return f"{'**yes**' if s['dial'] else 'no'} ({_worst(s)})"


def _commits(nets: list[dict[str, Any]]) -> str:
    seen: list[str] = []
    for net in nets:
        prov = net.get("provenance") or {}
        text = f"{commit_text(str(prov.get('git_commit') or ''))} ({str(prov.get('date', ''))[:10]})"
        if text not in seen:
            seen.append(text)
    return ", ".join(seen)


def _recalibration_gain(row: dict[str, Any] | None) -> str:
    """Recalibrated minus as-trained accuracy in points: how much of a net's drop is its BatchNorm statistics."""
    if row is None or "recalibrated" not in row:
        return "…"
    return signed(100 * (row["recalibrated"]["test_acc"] - row["as_trained"]["test_acc"]), 1)


@block("depth-dial", DIAL)
def depth_dial(results: Results) -> str:
    data = results.json(DIAL)
    nets, multiples = data["models"], data["multiples"]  # the step counts a net is judged at, in trained steps
    head = ["net", "recipe", "trained step: acc %"]
    head += [f"{m}x steps" for m in multiples] + ["dopri5", "½x (compressed)", "a dial? (worst drop, points)"]
    rows = []
    for net in nets:
        k = net["trained_steps_per_block"]
        linear = net["depth_basis"] == "linear"
        trained = _row(net, "euler", k)
        rows.append(
            [
                f"`{net['run']}`",
                net["recipe"],
                "…" if trained is None else pct(trained["as_trained"]["test_acc"], 2),
                *(_pair(_row(net, "euler", k * m)) for m in multiples),
                _pair(_row(net, "dopri5", None)),
                _pair(_row(net, "euler", k * 0.5)) if linear else "-",
                _verdict(net),
            ]
        )
    diag = table(
        [
            "net",
            "training cost (mean steps per block)",
            "fixed steps in",
            "BatchNorm: recalibration's gain at 8x steps (points)",
            "roughness across depth, per stage",
            "largest ρ(h ∂f/∂u) at the trained step, per stage",
        ],
        [
            [
                f"`{net['run']}`",
                "…" if "training_steps_per_block" not in net else f"{net['training_steps_per_block']:.2f}",
                {"bf16": "bf16 autocast", "none": "float32"}.get(net["fixed_step_amp"], net["fixed_step_amp"]),
                _recalibration_gain(_row(net, "euler", 8 * net["trained_steps_per_block"])),
                ", ".join(num(r) for r in (net.get("diagnostics") or {}).get("roughness", [])),
                ", ".join(num(r, 1) for r in (net.get("diagnostics") or {}).get("max_abs_h_lambda", [])),
            ]
            for net in nets
        ],
    )
    cite = source(
        DIAL,
        "`models[].rows[].as_trained.test_acc`, `recalibrated.test_acc`, `models[].summary`, `models[].diagnostics`",
        data["provenance"],
        command=False,
    )
    return (
        f"Accuracy (%) with BatchNorm as trained / recalibrated, {data['setting']}. A net is a dial when the better of "
        "the two stays within 1 point of its trained accuracy at every column; `…`: not measured yet.\n\n"
        f"{table(head, rows)}\n\n{diag}\n\n{cite} Nets measured at commits {_commits(nets)}; each net's command is "
        "its `provenance`."
    )


def _ci(r: dict[str, Any], key: str) -> str:
    lo, hi = r[f"{key}_ci95"]
    return f"{num(r[key])} [{num(lo)}, {num(hi)}]"


@block("sde-networks", SDE)
def sde_networks(results: Results) -> str:
    data = results.json(SDE)
    rows = []
    for net in data["models"]:
        for law, r in net["laws"].items():
            if r.get("same_as"):
                continue
            name = f"{net['trained_law']} (trained)" if law == "trained" else law
            local = r.get("local_orders_successive") or []
            rows.append(
                [
                    f"`{net['run']}`",
                    name,
                    ", ".join(f"{d:.1e}" for d in r["successive_differences"]),
                    _ci(r, "order_successive"),
                    ", ".join("-" if x is None else num(x) for x in local),
                    _ci(r, "order"),
                ]
            )
    head = [
        "net",
        "law of ξ",
        "E φ_h − E φ_h/2, h = trained step, its ½, ¼, ...",
        "weak order [95% CI]",
        "local orders, coarsest first",
        "order against the finest level",
    ]
    cost = []
    for net in data["models"]:
        trained = net["laws"].get("trained")
        if trained is None:
            continue
        passes = trained["ensemble_acc_by_passes"]
        mean_field = net["mean_field_acc"]
        cost.append(
            f"- `{net['run']}`: ensemble of "
            + ", ".join(f"{n} ({pct(passes[n])}%)" for n in sorted(passes, key=int))
            + " passes; mean-field net at "
            + ", ".join(f"{f}x steps ({pct(mean_field[f])}%)" for f in sorted(mean_field, key=int))
            + "."
        )
    gaps = [
        [
            f"`{net['run']}`",
            law,
            ", ".join(
                f"{1e3 * g:+.1f} ± {1e3 * e:.1f}"
                for g, e in zip(r["gap_to_trained"]["gaps"], r["gap_to_trained"]["gap_stderr"], strict=True)
            ),
            _ci(r["gap_to_trained"], "order"),
        ]
        for net in data["models"]
        for law, r in net["laws"].items()
        if "gap_to_trained" in r
    ]
    gap_table = (
        ""
        if not gaps
        else "Do the laws share their limit? The gap between a law and the trained one, per level (10⁻³, ± its "
        "standard error; the last level is the reference), and the order at which it closes:\n\n"
        + table(["net", "law of ξ", "E φ^law − E φ^trained, h = trained step, its ½, ¼, ...", "order [95% CI]"], gaps)
        + "\n\n"
    )
    cite = source(
        SDE,
        "`models[].laws.*.successive_differences`, `order_successive`, `order_successive_ci95`, "
        "`local_orders_successive`, `order_ci95`, `gap_to_trained`, `ensemble_acc_by_passes`, "
        "`models[].mean_field_acc`",
        data["provenance"],
        command=False,
    )
    return (
        f"{data['setting']}.\n\n{table(head, rows)}\n\n{gap_table}Accuracy at equal cost (one pass at the trained "
        f"step costs as much as the mean-field net at 1x):\n\n" + "\n".join(cost) + f"\n\n{cite}"
    )


def dial_headline(results: Results) -> str:
    """The README's bullet: which nets are dials, at what training cost, and which are not."""
    data = results.json(DIAL)
    dials: list[str] = []
    others: list[str] = []
    measuring: list[str] = []
    for net in data["models"]:
        s = _summary(net)
        if s is None:
            measuring.append(f"`{net['run']}`")
            continue
        cost = net.get("training_steps_per_block")
        text = (
            f"`{net['run']}` ({net['recipe']}; training cost {'…' if cost is None else num(cost)} steps per block): "
            f"{pct(s['trained_acc'])}% at its trained step, {_worst(s)}"
        )
        (dials if s["dial"] else others).append(text)
    parts = ["Dials: " + "; ".join(dials) if dials else "No net measured so far is a dial"]
    if others:
        parts.append("Not dials: " + "; ".join(others))
    if measuring:
        parts.append("Being measured: " + ", ".join(measuring))
    return (
        "**Depth as a dial** (a net within 1 point of its trained accuracy at 2x, 4x and 8x its trained steps and "
        "under dopri5, and compressed to ½x when its weights are continuous in depth, with the better of BatchNorm "
        "as trained and recalibrated): "
        + ". ".join(parts)
        + " (`depth_dial.json`: `models[].summary`, `models[].training_steps_per_block`)."
    )


RESOLVED_GAP = 3.0
"""A law's coupled gap to the trained law counts as measured from this many standard errors up."""


def sde_headline(results: Results) -> str:
    """The README's bullet: the weak orders measured on trained nets, law by law."""
    data = results.json(SDE)
    parts = []
    for net in data["models"]:
        laws = [
            f"{net['trained_law'] + ' (trained)' if law == 'trained' else law} {_ci(r, 'order_successive')}"
            for law, r in net["laws"].items()
            if not r.get("same_as")
        ]
        gap_fits = [r["gap_to_trained"] for r in net["laws"].values() if "gap_to_trained" in r]
        finest = [r["local_orders_successive"][-1] for r in net["laws"].values() if not r.get("same_as")]
        notes = [] if None in finest else [f"local orders at the finest pair {span(finest)}"]
        z = [abs(g / e) for fit in gap_fits for g, e in zip(fit["gaps"], fit["gap_stderr"], strict=True) if e > 0]
        if gap_fits and max(z, default=0.0) < RESOLVED_GAP:  # gaps lost in the noise have no order to fit
            notes.append(f"no law's gap to the trained law reaches {RESOLVED_GAP:g} standard errors at any level")
        elif gap_fits:
            orders = [fit["order"] for fit in gap_fits]
            top = num(max(fit["order_ci95"][1] for fit in gap_fits))
            notes.append(f"the gap to the trained law closes at order {span(orders)}, upper bounds up to {top}")
        parts.append(f"`{net['run']}`" + (f" ({'; '.join(notes)})" if notes else "") + ": " + ", ".join(laws))
    return (
        "**Weak order on trained noisy nets** (E of the true-class probability, paths coupled across step counts "
        "and laws, 95% intervals): "
        + "; ".join(parts)
        + " (`sde_networks.json`: `models[].laws.*.order_successive`, `order_successive_ci95`, `gap_to_trained`)."
    )


RECALIBRATION = "benchmarks/results/recalibration.json"


def _images_seen(row: dict | None) -> str:
    """The images a recalibration ran on (augmentation drops a last partial batch), "-" without one."""
    if row is None:
        return "…"
    n = row.get("images_seen")
    return "-" if n is None else f"{n:,}"


@block("recalibration", RECALIBRATION)
def recalibration(results: Results) -> str:
    data = results.json(RECALIBRATION)
    parts = []
    for net in data["models"]:
        k = net["trained_steps_per_block"]
        fine = max(r["steps_per_block"] for r in net["rows"])
        by = {(r["variant"], r["steps_per_block"]): r for r in net["rows"]}
        variants = list(dict.fromkeys(r["variant"] for r in net["rows"]))
        rows = [
            [
                name,
                *("…" if (name, s) not in by else pct(by[(name, s)]["test_acc"], 2) for s in (k, fine)),
                "…" if (name, fine) not in by else f"{by[(name, fine)]['recalibration_seconds']:.0f}",
                _images_seen(by.get((name, fine))),
            ]
            for name in variants
        ]
        head = ["recalibration", f"{k:g} step/block (trained) %", f"{fine:g} steps/block %", f"seconds at {fine:g}"]
        head += ["images seen"]
        parts.append(f"`{net['run']}`:\n\n{table(head, rows)}")
    cite = source(
        RECALIBRATION, "`models[].rows[].test_acc`, `recalibration_seconds`, `images_seen`", data["provenance"]
    )
    return f"{data['setting']}.\n\n" + "\n\n".join(parts) + f"\n\n{cite}"


SDE_SUMMARY = "results/sde-cpu/summary.json"
CPU_SUMMARY = "results/cifar10-cpu/summary.json"


def lm_with_stochastic_depth(results: Results) -> str:
    """LM-ResNet-20 with stochastic depth against LM-ResNet-20's seeds: does the difference exceed their spread?"""
    rows = {r["name"]: r for r in results.json(SDE_SUMMARY)["rows"]}
    base = {r["name"]: r for r in results.json(CPU_SUMMARY)["rows"]}["lm_resnet20"]
    sd = rows["lm_resnet20-sd0.8"]
    seeds = f"{num(base['error_mean'])} ± {num(base['error_std'])}% over {base['runs']} seeds ({span(base['errors'])})"
    if not sd["runs"]:
        return f"LM-ResNet-20 with stochastic depth: not trained yet; LM-ResNet-20 alone: {seeds}"
    diff = sd["error_mean"] - base["error_mean"]
    inside = min(base["errors"]) <= sd["error_mean"] <= max(base["errors"])
    return (
        f"LM-ResNet-20 with stochastic depth (sd:0.8, {sd['runs']} seed): {num(sd['error_mean'])}% test error against "
        f"{seeds} without it: {signed(diff)} points, {abs(diff) / base['error_std']:.1f} seed standard deviations, "
        f"{'inside' if inside else 'outside'} the seeds' range"
    )


@block("lm-stochastic-depth", SDE_SUMMARY, CPU_SUMMARY)
def lm_stochastic_depth(results: Results) -> str:
    return (
        f"{lm_with_stochastic_depth(results)}. "
        + source(SDE_SUMMARY, "`rows[].error_mean` of `lm_resnet20-sd0.8`")
        + " "
        + source(CPU_SUMMARY, "`rows[].errors` of `lm_resnet20`")
    )
