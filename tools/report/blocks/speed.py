"""Speed: contdepth against the hand-written nets (time, aten ops, instructions), the pipeline, CPU training."""

from __future__ import annotations

from typing import Any

from .. import freshness
from ..data import Results, source
from ..fmt import millions, num, table, thousands
from ..registry import block

THROUGHPUT = "benchmarks/results/throughput.json"
OP_PROFILE = "benchmarks/results/op_profile.json"
STEP = "benchmarks/results/step_overhead.json"
INSTRUCTIONS = "benchmarks/results/instructions.json"
OP_COUNTS = "benchmarks/results/op_counts.json"
OP_COUNTS_BEFORE = "benchmarks/results/op_counts_before.json"
PIPELINE = "benchmarks/results/pipeline.json"
CPU_TRAINING = "benchmarks/results/cpu_training.json"
CPU_TRAINING_LOOP = "benchmarks/results/cpu_training_loop.json"
LOOP_PHASES = ("data", "forward_backward", "optimiser", "bookkeeping")


def _pair(x: dict[str, float], digits: int = 1) -> str:
    return f"{x['contdepth']:.{digits}f} / {x['hand']:.{digits}f}"


def _faults(x: dict[str, float]) -> str:
    return f"{round(x['contdepth'])} / {round(x['hand'])}"


def throughput(results: Results) -> str:
    data = results.json(THROUGHPUT)
    rows = [
        [
            c["model"],
            c["mode"],
            c["allocator"],
            c["phase"],
            num(c["images_per_s"]["contdepth"], 1),
            num(c["images_per_s"]["hand"], 1),
            f"{c['ratio_median']:.3f} [{c['ratio_q1']:.3f}, {c['ratio_q3']:.3f}]",
            f"{c['ratio_best']:.3f}",
            _faults(c["page_faults_per_iter"]),
            _pair(c["saved_activation_MB"]) if "saved_activation_MB" in c else None,
        ]
        for c in data["comparisons"]
    ]
    head = [
        "model",
        "mode",
        "malloc",
        "phase",
        "contdepth img/s",
        "hand-written img/s",
        "ratio, median [IQR]",
        "ratio, best-of",
        "page faults / iter (cd / hand)",
        "saved activations MB (cd / hand)",
    ]
    skipped = "; ".join(f"{s['mode']} ({s['reason']})" for s in data.get("skipped", []))
    lines = [table(head, rows)]
    if skipped:
        lines.append(f"Not measured on this device: {skipped}.")
    lines.append(
        source(
            THROUGHPUT,
            f"`comparisons[]`; batch {data['batch']}, {data['reps']} repetitions, {data['threads']} thread(s), "
            f"clock: {data['comparisons'][0]['clock']}",
            data["provenance"],
        )
    )
    return "\n\n".join(lines)


def throughput_summary(results: Results) -> dict[str, Any]:
    """The numbers the headline quotes: the median ratios' range and each model's saved activations."""
    data = results.json(THROUGHPUT)
    saved = {c["model"]: c["saved_activation_MB"] for c in data["comparisons"] if "saved_activation_MB" in c}
    return {"ratios": [c["ratio_median"] for c in data["comparisons"]], "saved": saved, "batch": data["batch"]}


def op_differences(results: Results, model: str, phase: str) -> dict[str, float]:
    """aten op -> calls of contdepth minus calls of the hand-written net, per iteration (ops that differ)."""
    diff = results.json(OP_PROFILE)["profile"][model][phase]["ops_with_different_counts"]
    return {op.removeprefix("aten::"): d["calls_contdepth"] - d["calls_hand"] for op, d in diff.items()}


def op_profile(results: Results) -> str:
    data = results.json(OP_PROFILE)
    rows = []
    for model, phases in data["profile"].items():
        for phase in ("inference", "train"):
            diff = op_differences(results, model, phase)
            text = ", ".join(f"{op} {d:+g}" for op, d in diff.items()) or "none"
            rows.append([model, phase, _pair(phases[phase]["self_ms_total"]), len(diff), text])
    head = [
        "model",
        "phase",
        "aten self ms per iteration (cd / hand)",
        "op kinds that differ",
        "calls, contdepth − hand-written, per iteration",
    ]
    cite = source(
        OP_PROFILE,
        f"`profile.*.*.ops_with_different_counts`, `self_ms_total`; batch {data['batch']}",
        data["provenance"],
    )
    return f"{table(head, rows)}\n\n{cite}"


def step_overhead(results: Results) -> str:
    data = results.json(STEP)
    s = data["step_overhead"]
    flow, loop = s["flow_us_per_step"], s["loop_us_per_step"]
    return (
        f"One Flow step (euler, identity blocks, a (2, 4) state) costs {flow:.1f} µs of Python against "
        f"{loop:.1f} µs for the bare loop `x = x + m(x)` ({flow / loop:.1f}x). "
        + source(STEP, "`step_overhead`", data["provenance"], command=False)
    )


def python_share(row: dict[str, Any]) -> float:
    """The share of contdepth's extra instructions that the Python interpreter executes."""
    lib = row["by_library"]
    return (lib["contdepth"]["python interpreter"] - lib["hand"]["python interpreter"]) / row[
        "extra_instructions_per_iter"
    ]


@block("instructions", INSTRUCTIONS)
def instructions(results: Results) -> str:
    data = results.json(INSTRUCTIONS)
    rows = []
    for r in data["rows"]:
        lib = r["by_library"]
        kernels = lib["contdepth"]["torch kernels"] - lib["hand"]["torch kernels"]
        rows.append(
            [
                r["model"],
                r["phase"],
                millions(r["instructions_per_iter"]["contdepth"]),
                millions(r["instructions_per_iter"]["hand"]),
                f"{r['ratio_contdepth_over_hand']:.4f}",
                f"+{millions(r['extra_instructions_per_iter'], 2)}",
                f"{100 * python_share(r):.0f}%",
                f"{kernels / 1e6:+.2f} M (of {lib['hand']['torch kernels'] / 1e6:.0f} M)",
            ]
        )
    head = [
        "model",
        "phase",
        "contdepth instr. / iter",
        "hand-written instr. / iter",
        "ratio",
        "extra / iter",
        "of the extra: Python interpreter",
        "torch kernels, cd − hand",
    ]
    pinned = freshness.pinned_caption(INSTRUCTIONS, data["provenance"])
    cite = source(
        INSTRUCTIONS,
        f"`rows[]`; batch {data['batch']}, median of {data['iters']} iterations, {data['threads']} thread",
        data["provenance"],
    )
    return f"{table(head, rows)}\n\n{pinned}\n\n{cite}"


@block("op-counts", OP_COUNTS, OP_COUNTS_BEFORE)
def op_counts(results: Results) -> str:
    before = {(r["model"], r["noise"]): r["ops_per_step"] for r in results.json(OP_COUNTS_BEFORE)["results"]}
    after = results.json(OP_COUNTS)
    rows = []
    for r in after["results"]:
        old, new = before[(r["model"], r["noise"])], r["ops_per_step"]
        change = "0" if new == old else f"{new - old:+d} ({100 * (new - old) / old:+.1f}%)"
        rows.append([r["model"], r["noise"], old, new, change])
    pinned = freshness.pinned_caption(OP_COUNTS_BEFORE, results.json(OP_COUNTS_BEFORE)["provenance"])
    cite = source(OP_COUNTS, "`results[].ops_per_step`", after["provenance"])
    return (
        f"{table(['model', 'noise', 'ops / step before', 'ops / step now', 'change'], rows)}\n\n"
        f'"Before" is `{OP_COUNTS_BEFORE}`. {pinned}\n\n{cite}'
    )


def pipeline(results: Results) -> str:
    data = results.json(PIPELINE)
    p = data["pipeline"]
    speed = table(
        [
            f"pipeline ({p['model']} training epochs of {p['images']} images, batch {p['batch']})",
            "images/s",
            "ratio to conventional, median [min, max]",
        ],
        [
            [p["conventional"], num(p["images_per_s"]["conventional"], 1), "1"],
            [
                p["contdepth"],
                num(p["images_per_s"]["contdepth"], 1),
                f"{p['ratio_median']:.2f} [{min(p['ratios']):.2f}, {max(p['ratios']):.2f}]",
            ],
        ],
    )
    parts = list(p["where_time_goes"]["contdepth"]["forward_backward_profiled_seconds_per_step"])
    steps = table(
        ["ms per step", "data", "forward+backward", "optimiser", *(f"profiled: {k}" for k in parts)],
        [
            [
                name,
                *(num(1000 * v, 1) for v in w["seconds_per_step"].values()),
                *(num(1000 * w["forward_backward_profiled_seconds_per_step"][k], 1) for k in parts),
            ]
            for name, w in p["where_time_goes"].items()
        ],
    )
    cite = source(
        PIPELINE, f"`pipeline`; {p['clock']} clock, torch threads {data['threads']} (`threads`)", data["provenance"]
    )
    return f"{speed}\n\n{steps}\n\n{cite}"


def compile_seconds(row: dict[str, Any]) -> float | None:
    """Seconds of compiling in a cpu_training.json row (the longest of its concurrent runs)."""
    if row.get("compile_seconds") is not None:
        return float(row["compile_seconds"])
    runs = [x["compile_seconds"] for x in row.get("per_run", []) if x.get("compile_seconds") is not None]
    return max(runs) if runs else None


def cpu_training(results: Results) -> str:
    data = results.json(CPU_TRAINING)
    rows = []
    for r in data["rows"]:
        seconds = compile_seconds(r)
        vs = r.get("vs_eager_preact_resnet20")
        cells = [
            r["model"],
            r["setting"],
            f"{r['runs']} x {r['threads']}",
            thousands(r["images_per_s"]),
            "-" if vs is None else num(vs),
            "-" if seconds is None else thousands(seconds),
        ]
        rows.append(cells)
    provs = freshness.provenances(results, CPU_TRAINING) + [
        x["provenance"] for r in data["rows"] for x in r.get("per_run", [])
    ]
    commits = sorted({str(p.get("git_commit", ""))[:7] for p in provs})
    dates = sorted({str(p.get("date", ""))[:10] for p in provs})
    cite = source(
        CPU_TRAINING, f"`rows[]`; {data['what']}; {data['cpu']}; commit {', '.join(commits)}, {', '.join(dates)}"
    )
    head = ["model", "setting", "runs x threads", "images/s (all runs)", "vs eager preact_resnet20", "compile s"]
    return f"{table(head, rows)}\n\n{cite}"


@block("hand-written", THROUGHPUT, OP_PROFILE, STEP)
def hand_written(results: Results) -> str:
    """Time, saved activations, aten ops and the Python of a step: contdepth against the hand-written nets."""
    return "\n\n".join((throughput(results), op_profile(results), step_overhead(results)))


@block("cpu-training", PIPELINE, CPU_TRAINING)
def training_speed(results: Results) -> str:
    """The training pipeline against a DataLoader, and `contdepth train`'s settings on a CPU."""
    return f"{pipeline(results)}\n\n{cpu_training(results)}"


@block("cpu-training-loop", CPU_TRAINING_LOOP)
def training_loop(results: Results) -> str:
    """`contdepth train` against the minimal compiled loop: the ratios, and where a step's time goes."""
    data = results.json(CPU_TRAINING_LOOP)
    ratios = table(
        ["amp", "contdepth / minimal loop, images/s", "repetitions", "images per CPU second", "repetitions"],
        [
            [
                r["amp"],
                f"{r['wall']:.3f}",
                ", ".join(f"{v:.3f}" for v in r["wall_reps"]),
                f"{r['cpu']:.3f}",
                ", ".join(f"{v:.3f}" for v in r["cpu_reps"]),
            ]
            for r in data["ratios"]
        ],
    )
    split = table(
        ["loop", "amp", "images/s", "images per CPU s", *(f"{p.replace('_', '+')} ms (CPU ms)" for p in LOOP_PHASES)],
        [
            [
                r["loop"],
                r["amp"],
                thousands(r["images_per_s"]),
                thousands(r["images_per_cpu_s"]),
                *(f"{num(r['ms_per_step'][p])} ({num(r['cpu_ms_per_step'][p])})" for p in LOOP_PHASES),
            ]
            for r in data["rows"]
        ],
    )
    cite = source(
        CPU_TRAINING_LOOP,
        f"`ratios[]`, `rows[].ms_per_step`, `rows[].cpu_ms_per_step`; {data['what']}; {data['setting']}",
        data["provenance"],
    )
    return f"{ratios}\n\n{split}\n\n{cite}"
