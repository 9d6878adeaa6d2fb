"""The headline numbers of the README and the docs, and the README's scheme table with measured orders."""

from __future__ import annotations

from .. import freshness
from ..data import Results
from ..fmt import num, pct, pm, span, table
from ..registry import block
from . import dial, orders, speed, toy, trained

# name, update, order in theory, network
SCHEMES = (
    ("euler", "`x + h f_n`", "1", "ResNet (h = 1 per block)"),
    ("heun", "`x + h (k1 + k2)/2`, `k1 = f_n`, `k2 = f(t+h, x + h k1)`", "2", ""),
    ("midpoint", "`x + h f(t+h/2, x + (h/2) f_n)`", "2", ""),
    ("kutta3", "Kutta's third-order Runge–Kutta", "3", ""),
    ("rk4", "classical Runge–Kutta", "4", "FractalNet-like"),
    ("ab2", "`x + h (3/2 f_n - 1/2 f_{n-1})`", "2", ""),
    ("lm2", "`(1-k_n) x_n + k_n x_{n-1} + h f_n`, learnable `k_n`", "1, to `(1+k) u' = f(u)`", "LM-ResNet"),
    ("polynet", "`x + h f(x) + h f(h f(x))`", "1 where `f(t, 0) = 0`", "PolyNet ≈ backward Euler"),
    (
        "euler_maruyama",
        "`x + h f_n + sqrt(h) g_n ξ_n`",
        "weak 1 for ξ with `E ξ³ = 0` (Gaussian, Rademacher, uniform); weak 1/2 for stochastic depth's two-point "
        "ξ at fixed p (1 if `1 − 2p = O(√h)`)",
        "noise injection, shake-shake; stochastic depth",
    ),
    ("revnet", "`x' = x + h f1(y)`, `y' = y + h f2(x')`", "1", "RevNet"),
    ("leapfrog", "Störmer–Verlet on `(x, y)`", "2", ""),
)


@block("schemes", orders.CONVERGENCE, orders.WEAK)
def schemes(results: Results) -> str:
    conv = results.json(orders.CONVERGENCE)["problems"]["conv"]
    weak = orders.weak_rows(results.json(orders.WEAK))
    sym = [o for law, _, g, n in weak if not law.startswith("two-point") for o in (g["order"], n["order"])]
    fixed = [o for law, _, g, n in weak if law.startswith("two-point, p") for o in (g["order"], n["order"])]
    measured = {name: pm(s["order"], s["stderr"]) for name, s in conv["schemes"].items()}
    measured["lm2"] = f"{pm(conv['lm2']['limit_fit']['order'], conv['lm2']['limit_fit']['stderr'])} (to `(1+k) u' = f`)"
    measured["euler_maruyama"] = f"weak {span(sym)}; two-point at fixed p: {span(fixed)}"
    body = [[f"`{name}`", update, order, measured.get(name, "-"), network] for name, update, order, network in SCHEMES]
    head = ["name", "update", "order", "measured order", "network"]
    return (
        f"{table(head, body)}\n\n*Measured: `benchmarks/results/convergence.json` (`problems.conv.schemes.*.order`, "
        "a convolutional field, float64) and `weak_convergence.json` (`problems.*.laws.*.order`, φ = x³); "
        f"{_tests_only(measured)} are checked by the tests only.*"
    )


def _tests_only(measured: dict[str, str]) -> str:
    """The schemes of the table without a measured order, as ``"`a`, `b` and `c`"``."""
    names = [f"`{name}`" for name, *_ in SCHEMES if name not in measured]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


@block(
    "headline",
    orders.CONVERGENCE,
    orders.WEAK,
    speed.THROUGHPUT,
    speed.OP_PROFILE,
    speed.INSTRUCTIONS,
    *trained.REFINEMENT,
    toy.TOY,
    dial.DIAL,
    dial.SDE,
)
def headline(results: Results) -> str:
    conv = results.json(orders.CONVERGENCE)["problems"]["conv"]
    fitted = ", ".join(f"{name} {num(s['order'])}" for name, s in conv["schemes"].items() if s["theory"] > 0)
    weak = orders.weak_rows(results.json(orders.WEAK))
    sym = [o for law, _, g, n in weak if not law.startswith("two-point") for o in (g["order"], n["order"])]
    fixed = [o for law, _, g, n in weak if law.startswith("two-point, p") for o in (g["order"], n["order"])]
    scaled = [o for law, _, g, n in weak if law.startswith("two-point, 1-2p") for o in (g["order"], n["order"])]

    tp = speed.throughput_summary(results)
    saved = tp["saved"]
    lerps = speed.op_differences(results, "lm_resnet56", "inference").get("lerp", 0)
    lm_train = len(speed.op_differences(results, "lm_resnet56", "train"))
    resnet_ops = (
        "the same" if not any(speed.op_differences(results, "resnet56", p) for p in ("inference", "train")) else "other"
    )
    instr = results.json(speed.INSTRUCTIONS)["rows"]
    instr_prov = results.json(speed.INSTRUCTIONS)["provenance"]
    ratios = [r["ratio_contdepth_over_hand"] - 1 for r in instr]
    shares = [speed.python_share(r) for r in instr]

    nets = trained.refinement_summary(results)
    pre = next(s for s in nets if s["run"] == "preact_resnet20-s0")
    lm = next(s for s in nets if s["run"] == "lm_resnet20-s0")
    all_orders = [o for s in nets for o in s["orders"]]

    moons = toy.summary(results, "moons")
    mc = toy.kolmogorov_rows(results.json(toy.TOY)["kolmogorov"][0])[-1]

    bullets = [
        f"**Orders** (ODE, float64, a convolutional field): {fitted}; LM-ResNet's scheme with fixed k converges at "
        f"order {num(conv['lm2']['limit_fit']['order'])} to the rescaled `(1+k) u' = f(u)` and not to `u' = f(u)` "
        "(`convergence.json`: `problems.conv`).",
        f"**Weak order of Euler–Maruyama** on scalar SDEs with a smooth test function: {span(sym)} under Gaussian, "
        f"Rademacher and uniform (shake-shake) noise; {span(fixed)} under stochastic depth's two-point law at fixed "
        f"p, and {span(scaled)} once `1 − 2p = O(√h)` (`weak_convergence.json`: `problems.*.laws.*.order`); on trained "
        "nets, see *Weak order on trained noisy nets* below.",
        f"**Speed against hand-written nets** (batch {tp['batch']}, CPU): contdepth's resnet56 runs {resnet_ops} aten "
        f"operations as the hand-written net and saves as much for backward ({saved['resnet56']['contdepth']:.1f} MB); "
        f"lm_resnet56 runs {lerps:g} `lerp` in place of as many `sub`, `mul` and `add` in inference, {lm_train} op "
        f"kinds differ in training, and it saves {saved['lm_resnet56']['contdepth']:.1f} MB of activations against "
        f"{saved['lm_resnet56']['hand']:.1f} MB. Median throughput ratios {span(tp['ratios'], 3)} "
        "(`throughput.json`: `comparisons[].ratio_median`; `op_profile.json`). Counted in instructions, contdepth "
        f"executes {span([100 * r for r in ratios], 1)}% more, {span([100 * s for s in shares], 0)}% of it in the "
        f"Python interpreter (`instructions.json`: {freshness.pinned_note(speed.INSTRUCTIONS, instr_prov)}).",
        f"**Trained nets are not their continuous limits**: the CPU-trained pre-activation ResNet-20 "
        f"({pct(pre['trained'])}%) falls to {pct(pre['finest_euler']['test_acc'])}% at "
        f"{pre['finest_euler']['steps_per_block']} Euler steps per block and {pct(pre['dopri5'])}% under dopri5; "
        f"LM-ResNet-20 ({pct(lm['trained'])}%) to {pct(lm['dopri5'])}%; the distance to the limit shrinks at order "
        f"{span(all_orders)} (`refinement.json`, `refinement_seed1.json`: `models[].rows[].test_acc`, "
        "`orders_to_dopri5`).",
        dial.dial_headline(results),
        dial.sde_headline(results),
        f"**Noise as optimal control** (the toy, {len(results.json(toy.TOY)['seeds'])} seeds): on two moons with noisy "
        f"labels, Gaussian noise in training gives {pct(moons['euler/gaussian']['test_mean'])} ± "
        f"{pct(moons['euler/gaussian']['test_std'])}% test accuracy against {pct(moons['euler/none']['test_mean'])} ± "
        f"{pct(moons['euler/none']['test_std'])}% for the deterministic flow; refined to h = 1/{round(1 / mc['h'])}, "
        f"the net's Monte Carlo agrees with the Kolmogorov equation (rms z {mc['rms_z']:.2f}) "
        "(`results/toy/kolmogorov_toy.json`: `moons.summary`, `kolmogorov[].monte_carlo`).",
    ]
    return "\n".join(f"- {b}" for b in bullets)


@block("compile-cost", speed.CPU_TRAINING)
def compile_cost(results: Results) -> str:
    data = results.json(speed.CPU_TRAINING)
    single = [r for r in data["rows"] if r["runs"] == 1 and speed.compile_seconds(r)]
    models = " and ".join(f"`{m}`" for m in dict.fromkeys(r["model"] for r in single))
    threads = " or ".join(str(t) for t in sorted({r["threads"] for r in single}))
    seconds = span([speed.compile_seconds(r) or 0.0 for r in single], 0)
    return (
        f"Compiling {models} for training took {seconds} s with {threads} threads on the CPU of "
        f"`benchmarks/results/cpu_training.json` ({data['cpu']}; `rows[].compile_seconds`)."
    )
