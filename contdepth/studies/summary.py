"""A study's results beside the paper: ``summary.md``, ``summary.json`` and ``summary.png`` in its folder.

One row per study row: mean ± std final test error over the complete runs (one per seed), the
paper's number, runs, epochs, parameters, median epoch time, device, and how many runs shared the
device (from results.json where the trainer records it, else from the study's ``launches.jsonl``).
A run's ``results.json`` that cannot be read, and lines of ``launches.jsonl`` that cannot, are named
in the summary and on stderr (their runs and lines are not counted). Paths are relative to the study folder.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..outputs import save_figure
from ..runs.files import METRICS, RESULTS
from ..runs.records import DamagedResults, read_metrics, read_results, write_json
from .catalog import RunSpec, Study
from .runner import LAUNCHES

NOTE = "Errors are final-epoch CIFAR-10 test errors (%)."
PAPER_NOTE = (
    "; the paper reports its own training of each network once, so the comparison that counts is "
    "LM-ResNet against ResNet of the same depth here."
)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _complete_runs(directory: Path, row: RunSpec, damaged: list[dict[str, str]]) -> list[tuple[Path, dict]]:
    """The row's run folders with a complete results.json; a results.json that cannot be read goes to ``damaged``."""
    pattern = re.compile(rf"^{re.escape(row.name)}-s(\d+)$")
    out = []
    for folder in sorted(directory.iterdir()) if directory.is_dir() else []:
        if not pattern.match(folder.name):
            continue
        try:
            results = read_results(folder, strict=True)
        except DamagedResults as err:
            damaged.append({"file": f"{folder.name}/{RESULTS}", "why": str(err)})
            continue
        if results is not None and results.get("complete") and "final_test_error" in results:
            out.append((folder, results))
    return out


def _find(obj: Any, key: str) -> list[Any]:
    """Every value stored under ``key`` anywhere in nested dicts/lists."""
    found = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            found += [v] if k == key else _find(v, key)
    elif isinstance(obj, list):
        for v in obj:
            found += _find(v, key)
    return found


def device_sharing(entries: list[dict]) -> dict[str, int]:
    """Most runs alive at once during each run's life, from launches.jsonl start/end entries (a run
    without an end counts as alive from its start on)."""
    spans: list[tuple[str, float, float]] = []
    open_runs: dict[str, float] = {}
    for e in entries:
        run, t = e.get("run"), e.get("time")
        if not isinstance(run, str) or not isinstance(t, (int, float)):
            continue
        if e.get("event") == "start":
            open_runs[run] = float(t)
        elif e.get("event") == "end" and run in open_runs:
            spans.append((run, open_runs.pop(run), float(t)))
    spans += [(run, t, float("inf")) for run, t in open_runs.items()]
    out: dict[str, int] = {}
    for run, start, end in spans:
        # the number alive peaks at some span's start inside [start, end)
        moments = [start, *(s for _, s, _ in spans if start <= s < end)]
        peak = max(sum(1 for _, s, e in spans if s <= t < e) for t in moments)
        out[run] = max(out.get(run, 0), peak)
    return out


def read_launches(path: Path) -> tuple[list[dict], list[int]]:
    """The entries of a study's ``launches.jsonl`` and the numbers (from 1) of its lines that are not one
    (cut short by a killed study, or garbage); a missing file has none."""
    try:
        data = path.read_bytes()
    except OSError:
        return [], []
    entries, bad = [], []
    for number, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw.decode())
        except ValueError:
            entry = None
        if isinstance(entry, dict):
            entries.append(entry)
        else:
            bad.append(number)
    return entries, bad


def _params(row: RunSpec) -> int | None:
    from ..models import describe  # builds the model once to count

    try:
        return int(describe(row.model)["params"])
    except ValueError:
        return None


def _data_copies(runs: list[tuple[Path, dict]]) -> list[dict[str, Any]]:
    """The copies of the data the runs trained on (results.json's ``data``): fingerprint and whether official."""
    found: dict[str, bool] = {}
    for _, r in runs:
        data = r.get("data")
        if isinstance(data, dict) and isinstance(data.get("fingerprint"), str):
            found[data["fingerprint"]] = bool(data.get("official"))
    return [{"fingerprint": f, "official": o} for f, o in sorted(found.items())]


def summarize(study: Study, directory: Path, warn: Callable[[str], None] = _stderr) -> dict[str, Any]:
    """The summary as a dict: ``{"study", "title", "rows": [...], "damaged": [...], "launches_skipped": [...]}``
    (errors in %, times in seconds); ``warn`` gets one line per damaged file."""
    entries, skipped = read_launches(directory / LAUNCHES)
    launches = device_sharing(entries)
    damaged: list[dict[str, str]] = []
    rows = []
    for row in study.rows:
        runs = _complete_runs(directory, row, damaged)
        errors = [float(r["final_test_error"]) for _, r in runs]
        epoch_seconds: list[float] = []
        for folder, _ in runs:
            try:
                epoch_seconds += [float(m["seconds"]) for m in read_metrics(folder / METRICS) if "seconds" in m]
            except (OSError, ValueError):
                pass
        shared = [int(v) for _, r in runs for v in _find(r, "concurrent_runs") if isinstance(v, int)]
        shared += [launches[f.name] for f, _ in runs if f.name in launches]
        devices = sorted({str(r.get("provenance", {}).get("device", "?")) for _, r in runs})
        params = runs[0][1].get("params") if runs else _params(row)
        rows.append(
            {
                "name": row.name,
                "model": row.model,
                "noise": row.noise,
                "scheme": row.scheme,
                "family": row.family,
                "priority": row.priority,
                "paper_error": row.paper_error,
                "note": row.note,
                "runs": len(runs),
                "seeds": [int(f.name.rsplit("-s", 1)[1]) for f, _ in runs],
                "error_mean": statistics.mean(errors) if errors else None,
                "error_std": statistics.stdev(errors) if len(errors) > 1 else None,
                "errors": errors,
                # "test", or the held-out training images a -val row is measured on (--validation)
                "evaluated_on": sorted({str(r.get("evaluated_on", "test")) for _, r in runs}),
                "momentum_k": {f.name: r["momentum_k"] for f, r in runs if isinstance(r.get("momentum_k"), list)},
                "epochs": sorted({int(r["epochs"]) for _, r in runs}),
                "params": params,
                "median_epoch_seconds": statistics.median(epoch_seconds) if epoch_seconds else None,
                "devices": devices,
                "max_concurrent_runs": max(shared) if shared else None,
                "data": _data_copies(runs),
            }
        )
    for d in damaged:
        warn(f"warning: {d['file']} is damaged ({d['why']}): its run is not counted in the summary")
    if skipped:
        warn(f"warning: {LAUNCHES}: lines {', '.join(map(str, skipped))} are not entries and were skipped")
    return {
        "study": study.name,
        "title": study.title,
        # a study that compares with a paper says how to read that column
        "note": NOTE[:-1] + PAPER_NOTE if any(r.paper_error is not None for r in study.rows) else NOTE,
        "study_notes": list(study.notes),
        "rows": rows,
        "damaged": damaged,
        "launches_skipped": skipped,
    }


def _cell(value: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if value is None else fmt.format(value)


def _k_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The learned k_n of each LM run, per stage, with the modified equation's leading coefficient 1 + k."""
    lines = []
    for r in rows:
        for run, stages in sorted(r.get("momentum_k", {}).items()):
            ks = [k for stage in stages for k in stage]
            if not ks:
                continue
            per_stage = "; ".join("[" + ", ".join(f"{k:+.2f}" for k in stage) + "]" for stage in stages)
            lines.append(
                f"- {run}: k_n per stage {per_stage}; 1 + k_n from {1 + min(ks):.2f} to {1 + max(ks):.2f} "
                f"(mean {1 + statistics.mean(ks):.2f})"
            )
    if not lines:
        return []
    return [
        "",
        "Learned k_n of the LM runs (the modified equation is (1 + k_n) u' + (1 - k_n)/2 h u'' = f(u): 1 + k_n < 1 "
        "speeds the flow up, > 1 slows it down):",
        "",
        *lines,
    ]


def unofficial_data_line(fingerprints: list[str]) -> str:
    """The summary's sentence on data copies that differ from the official files (fingerprints: md5 hex)."""
    shown = ", ".join(f[:12] for f in fingerprints)
    if len(fingerprints) == 1:
        head = f"Data: the copy of the data these runs used differs from the official files (fingerprint {shown}"
    else:
        head = (
            f"Data: {len(fingerprints)} of the copies of the data these runs used differ from the official files "
            f"(fingerprints {shown}"
        )
    return head + "; a re-encoded copy, a JPEG round-trip say, differs too)."


def _validation(row: dict[str, Any]) -> bool:
    """Whether a row's errors are measured on held-out training images (a -val row), not on the test set."""
    return any(e.startswith("validation") for e in row.get("evaluated_on", []))


def markdown(summary: dict[str, Any]) -> str:
    header = (
        "| run | runs | epochs | our error % | each run's error % | paper error % | params (M) | median epoch s "
        "| device | runs sharing it |"
    )
    lines = [f"# {summary['title']}", "", summary["note"], *[f"\n{n}" for n in summary.get("study_notes", [])]]
    lines += ["", header, "|---|---|---|---|---|---|---|---|---|---|"]
    notes: list[str] = []
    for r in summary["rows"]:
        ours = _cell(r["error_mean"]) + (f" ± {r['error_std']:.2f}" if r["error_std"] is not None else "")
        if _validation(r):
            ours += " (validation)"
        each = ", ".join(f"{e:.2f} (s{s})" for e, s in zip(r["errors"], r["seeds"], strict=True)) or "-"
        name = r["name"]
        if r["note"]:
            notes.append(f"{len(notes) + 1}. {r['name']}: {r['note']}")
            name += f" ({len(notes)})"
        lines.append(
            f"| {name} | {r['runs']} | {','.join(map(str, r['epochs'])) or '-'} | {ours} | {each} | "
            f"{_cell(r['paper_error'])} | {_cell(r['params'] and r['params'] / 1e6)} | "
            f"{_cell(r['median_epoch_seconds'], '{:.1f}')} | {'; '.join(r['devices']) or '-'} | "
            f"{r['max_concurrent_runs'] or '-'} |"
        )
    if any(_validation(r) for r in summary["rows"]):
        lines += ["", "(validation): the error on the training images the run held out, not on the test set."]
    if notes:
        lines += ["", "Notes:", "", *notes]
    lines += _k_lines(summary["rows"])
    copies = [c for r in summary["rows"] for c in r.get("data", [])]
    unofficial = sorted({c["fingerprint"] for c in copies if not c["official"]})
    if unofficial:
        lines += ["", unofficial_data_line(unofficial)]
    if len({c["fingerprint"] for c in copies}) > 1:
        lines += ["", "Data: the runs used different copies of the data (see summary.json, rows[].data)."]
    if summary.get("damaged"):
        lines += ["", "Damaged, not counted:", ""]
        lines += [f"- {d['file']}: {d['why']}" for d in summary["damaged"]]
    if summary.get("launches_skipped"):
        lines += ["", f"{LAUNCHES}: lines {', '.join(map(str, summary['launches_skipped']))} skipped (not entries)."]
    return "\n".join(lines) + "\n"


def plot(summary: dict[str, Any], path: Path) -> None:
    """Test error against parameters: ResNet and LM-ResNet, ours (mean ± std) and the paper's."""
    from matplotlib.figure import Figure  # needs no backend: the user's matplotlib set-up is left alone

    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    styles = {"resnet": ("ResNet", "tab:blue"), "lm": ("LM-ResNet", "tab:red"), "other": ("other", "tab:gray")}
    for family, (label, colour) in styles.items():
        rows = sorted(
            (r for r in summary["rows"] if r["family"] == family and r["params"] and not _validation(r)),
            key=lambda r: r["params"],
        )
        ours = [r for r in rows if r["error_mean"] is not None]
        paper = [r for r in rows if r["paper_error"] is not None]
        if ours:
            ax.errorbar(
                [r["params"] / 1e6 for r in ours],
                [r["error_mean"] for r in ours],
                yerr=[r["error_std"] or 0.0 for r in ours],
                fmt="o",
                color=colour,
                capsize=3,
                label=f"{label}, ours",
            )
        if paper:
            ax.plot(
                [r["params"] / 1e6 for r in paper],
                [r["paper_error"] for r in paper],
                "x--",
                color=colour,
                markersize=8,
                linewidth=0.8,
                label=f"{label}, paper",
            )
    ax.set_xlabel("parameters (millions)")
    ax.set_ylabel("CIFAR-10 test error (%)")
    epochs = sorted({e for r in summary["rows"] for e in r["epochs"]})
    runs = f"\nours: {', '.join(map(str, epochs))} epochs" if epochs else "\nno complete runs of ours yet"
    ax.set_title(summary["title"] + runs, fontsize=9)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def write_summary(study: Study, directory: Path, warn: Callable[[str], None] = _stderr) -> tuple[Path, Path, Path]:
    """Write summary.md, summary.json and summary.png into ``directory``; returns their paths."""
    summary = summarize(study, directory, warn)
    md, js, png = directory / "summary.md", directory / "summary.json", directory / "summary.png"
    md.write_text(markdown(summary))
    write_json(js, summary)
    plot(summary, png)
    return md, js, png
