"""The run tables of the studies after the CPU one: ``results/depth-dial-cpu/`` and ``results/sde-cpu/``."""

from __future__ import annotations

from ..data import Results, source
from ..fmt import num, table
from ..registry import block

DIAL_SUMMARY = "results/depth-dial-cpu/summary.json"
SDE_SUMMARY = "results/sde-cpu/summary.json"


def runs_table(results: Results, path: str, study: str) -> str:
    """One line a run of the study (its recipe note, the error it reached and on which images), pending runs too."""
    body = []
    for r in results.json(path)["rows"]:
        where = r.get("evaluated_on") or []
        held_out = any(w.startswith("validation") for w in where)
        error = "not trained yet" if not r["runs"] else num(r["error_mean"]) + (" (validation)" if held_out else "")
        epochs = "/".join(map(str, r.get("epochs") or [])) or "-"
        body.append([f"`{r['name']}`", r.get("note") or "", epochs, error])
    cite = source(path, f"`rows[]`, written by `contdepth reproduce {study} --out {path.rsplit('/', 1)[0]} --summary`")
    head = ["run", "recipe", "epochs", "error % (test, or held-out training images)"]
    return f"{table(head, body)}\n\n{cite}"


@block("depth-dial-cpu-runs", DIAL_SUMMARY)
def depth_dial_runs(results: Results) -> str:
    return runs_table(results, DIAL_SUMMARY, "depth-dial-cpu")


@block("sde-cpu-runs", SDE_SUMMARY)
def sde_runs(results: Results) -> str:
    return runs_table(results, SDE_SUMMARY, "sde-cpu")
