"""The CIFAR-10 CPU study (``results/cifar10-cpu/``): errors beside the paper, the last epochs, LM's k_n."""

from __future__ import annotations

import math
import statistics
from typing import Any

from ..data import Results, source
from ..fmt import num, signed, span, table
from ..registry import block

FOLDER = "results/cifar10-cpu"
SUMMARY = f"{FOLDER}/summary.json"
RUNS = (f"{FOLDER}/*/results.json", f"{FOLDER}/*/metrics.jsonl")
LAST = 4  # the last epochs shown


def rows(results: Results) -> list[dict[str, Any]]:
    """The summary's rows that have runs."""
    return [r for r in results.json(SUMMARY)["rows"] if r["runs"]]


def _scheme(row: dict[str, Any]) -> str:
    return row["scheme"] or ("lm2" if row["family"] == "lm" else "euler")


def _error(row: dict[str, Any]) -> str:
    errors = ", ".join(num(e) for e in row["errors"])
    if row["runs"] == 1:
        return f"{num(row['error_mean'])} (one seed)"
    return f"{num(row['error_mean'])} ± {num(row['error_std'])} ({errors})"


@block("cifar10-cpu-models", SUMMARY)
def models(results: Results) -> str:
    body = []
    for r in rows(results):
        kind = "post-activation, " if r["model"].startswith("resnet") else ""
        paper = "-" if r["paper_error"] is None else num(r["paper_error"])
        body.append([f"`{r['name']}` ({kind}scheme {_scheme(r)})", _error(r), paper])
    head = ["model", "test error %, mean ± std (seeds)", "paper (Lu et al. 2018, Table 1: 160 epochs, original images)"]
    cite = source(SUMMARY, "`rows[].error_mean`, `error_std`, `errors`, `paper_error`")
    return f"{table(head, body)}\n\n{cite}"


@block("cifar10-cpu-table", SUMMARY)
def study_table(results: Results) -> str:
    body = []
    for r in rows(results):
        each = ", ".join(f"{num(e)} (s{s})" for e, s in zip(r["errors"], r["seeds"], strict=True))
        mean = num(r["error_mean"]) if r["runs"] == 1 else f"{num(r['error_mean'])} ± {num(r['error_std'])}"
        paper = "-" if r["paper_error"] is None else num(r["paper_error"])
        body.append([r["name"], _scheme(r), r["runs"], "/".join(map(str, r["epochs"])), mean, each, paper])
    head = [
        "run",
        "scheme",
        "runs",
        "epochs",
        "test error %",
        "each run's error %",
        "paper error % (Lu et al. 2018, Table 1)",
    ]
    cite = source(
        SUMMARY, "`rows[]`, written by `contdepth reproduce lu2018-cifar10-cpu --out results/cifar10-cpu --summary`"
    )
    return f"{table(head, body)}\n\nMean ± sample standard deviation over the seeds. {cite}"


def runs(results: Results) -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    """(run name, results.json, metrics rows) of every run folder of the study."""
    out = []
    for path in results.glob(f"{FOLDER}/*/results.json"):
        folder = path.rsplit("/", 1)[0]
        out.append((folder.rsplit("/", 1)[1], results.json(path), results.jsonl(f"{folder}/metrics.jsonl")))
    return out


def _test_error(row: dict[str, Any]) -> float:
    return 100.0 * (1.0 - row["test_acc"])


@block("cifar10-cpu-training", *RUNS)
def training(results: Results) -> str:
    body, changes, rose, train_acc, epoch_s = [], [], [], [], []
    for name, res, metrics in runs(results):
        last = metrics[-LAST:]
        errs = [_test_error(m) for m in last]
        changes.append(errs[0] - errs[-1])
        if errs[-1] > errs[-2]:
            rose.append(f"{name} ({num(errs[-2])} → {num(errs[-1])})")
        train_acc.append(100 * res["final_train_acc"])
        epoch_s.append(res["mean_epoch_seconds"])
        hours = res["mean_epoch_seconds"] * res["epochs_done"] / 3600
        body.append(
            [
                name,
                *(num(e) for e in errs),
                signed(errs[-1] - errs[0]),
                num(100 * res["final_train_acc"], 1),
                f"{res['mean_epoch_seconds']:.0f}",
                f"{hours:.1f}",
            ]
        )
    epochs = [m["epoch"] for m in runs(results)[0][2][-LAST:]]
    head = [
        "run",
        *(f"error % at epoch {e}" for e in epochs),
        f"change {epochs[0]} → {epochs[-1]}",
        "final train acc %",
        "mean epoch s",
        "hours in all",
    ]
    text = (
        f"From epoch {epochs[0]} to {epochs[-1]} the test error fell by {span(changes)} points"
        + (f"; it rose over the last epoch in {' and '.join(rose)}" if rose else "")
        + f". Training accuracy (with augmentation) ended at {span(train_acc, 1)}%."
    )
    cite = source(
        f"{FOLDER}/*/metrics.jsonl",
        "`test_acc` per epoch; `results.json`: `final_train_acc`, `mean_epoch_seconds`, `epochs_done`",
    )
    return f"{table(head, body)}\n\n{text}\n\n{cite}"


def welch(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Welch's t, its degrees of freedom and the two-sided p-value."""
    from scipy.special import betainc

    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    t = (statistics.mean(a) - statistics.mean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return t, df, float(betainc(df / 2, 0.5, df / (df + t * t)))


@block("cifar10-cpu-comparison", SUMMARY)
def comparison(results: Results) -> str:
    by = {r["name"]: r for r in rows(results)}
    lm, pre = by["lm_resnet20"], by["preact_resnet20"]
    t, _, p = welch(pre["errors"], lm["errors"])
    gap = pre["error_mean"] - lm["error_mean"]
    paper = by["resnet20"]["paper_error"] - lm["paper_error"] if "resnet20" in by else None
    paper_text = (
        f" (the paper: {num(paper)} points, LM-ResNet-20 against its post-activation ResNet-20)"
        if paper is not None
        else ""
    )
    return (
        f"LM-ResNet-20 {num(lm['error_mean'])} ± {num(lm['error_std'])}% against the pre-activation ResNet-20's "
        f"{num(pre['error_mean'])} ± {num(pre['error_std'])}% ({lm['runs']} and {pre['runs']} seeds): LM is {num(gap)} "
        f"points lower on average{paper_text}. The seeds spread over {span(pre['errors'])}% (pre-activation) and "
        f"{span(lm['errors'])}% (LM); Welch's t = {t:.1f}, p = {p:.2f}. " + source(SUMMARY, "`rows[].errors`")
    )


@block("cifar10-cpu-k", SUMMARY)
def momentum(results: Results) -> str:
    ks = next(r for r in rows(results) if r["family"] == "lm")["momentum_k"]
    body = [
        [run.rsplit("-", 1)[1], *(", ".join(f"{k:+.2f}" for k in stage) for stage in stages)]
        for run, stages in ks.items()
    ]
    n = len(next(iter(ks.values())))
    head = ["seed", *(f"stage {i + 1}" for i in range(n))]
    first_last = [stages[-1][0] for stages in ks.values()]
    coeff = [(1 - k) / 2 for k in first_last]
    text = (
        f"In the last stage the first flow block learns k = {span(first_last)} in every seed: 1 + k = "
        f"{span([1 + k for k in first_last])}, with a second-order coefficient (1 − k)/2 of {span(coeff)}."
    )
    return f"{table(head, body)}\n\n{text}\n\n" + source(SUMMARY, "`rows[].momentum_k`")


REFINEMENT_FILES = ("benchmarks/results/refinement.json", "benchmarks/results/refinement_seed1.json")


@block("cifar10-cpu-fp16", *REFINEMENT_FILES, f"{FOLDER}/*/results.json")
def fp16(results: Results) -> str:
    """The fp16 weights' accuracy (refinement.py loads them) against the float32 accuracy the run recorded."""
    pairs = []
    for path in REFINEMENT_FILES:
        for m in results.json(path)["models"]:
            trained = next(r for r in m["rows"] if r["scheme"] == m["scheme"] and r["steps_per_block"] == 1)
            recorded = results.json(f"{FOLDER}/{m['run']}/results.json")["final_test_acc"]
            pairs.append((m["run"], 100 * trained["test_acc"], 100 * recorded))
    worst = max(abs(a - b) for _, a, b in pairs)
    shown = ", ".join(f"{run} {a:.2f}% against {b:.2f}%" for run, a, b in pairs)
    return f"The fp16 weights give the float32 accuracy to within {worst:.2f} points ({shown}). " + source(
        "benchmarks/results/refinement*.json",
        "the trained scheme at 1 step per block, against `results.json`'s `final_test_acc`",
    )
