"""Whether a committed result file describes the code it is published for.

A benchmark's numbers change when certain code changes (the flow's step, the noise source, LM's update).
:data:`CHANGES` lists those changes with their commit and date, and :data:`MEASURES` says which of them
each result file must have been measured after. A file measured before a change it depends on is stale,
unless :data:`PINNED` says it describes the code before that change on purpose; the block that shows a
pinned file then says so in its caption (:func:`pinned_caption`).

Older or newer is read from git when the checkout has both commits, else from the UTC dates (the file's
provenance date against the change's commit date), so a shallow clone or a copy without ``.git`` checks too.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from .data import Results, commit_text


@dataclass(frozen=True)
class Change:
    """A change to the code that alters what a benchmark measures."""

    commit: str
    date: str  # the commit's author date (when the change was made), ISO 8601 with offset
    what: str


FUSED_UPDATE = Change("fb5b62e", "2026-11-23T14:36:56+00:00", "schemes add the step with one fused torch.add")
LM_SEED = Change("360afdc", "2026-11-23T14:47:56+00:00", "a refined LM flow seeds its history one step back")
LESS_PYTHON = Change("0fbd6d8", "2026-11-23T17:40:28+00:00", "less Python per flow step")
NOISE_SOURCE = Change(
    "a216587", "2026-11-24T12:45:13+00:00", "the noise source moved into the flow and LM's update became one lerp"
)
CPU_STEP = Change(
    "3f101ab", "2026-12-06T13:31:36+00:00", "the training crops became one indexing operator and SGD foreach on a CPU"
)
CHANGES = (FUSED_UPDATE, LM_SEED, LESS_PYTHON, NOISE_SOURCE, CPU_STEP)

_SPEED = (FUSED_UPDATE, LESS_PYTHON, NOISE_SOURCE)
#: result file -> the changes it must have been measured after
MEASURES: dict[str, tuple[Change, ...]] = {
    "benchmarks/results/convergence.json": (FUSED_UPDATE, NOISE_SOURCE),
    "benchmarks/results/weak_convergence.json": (NOISE_SOURCE,),
    "benchmarks/results/throughput.json": _SPEED,
    "benchmarks/results/op_profile.json": _SPEED,
    "benchmarks/results/step_overhead.json": _SPEED,
    "benchmarks/results/op_counts.json": (NOISE_SOURCE,),
    "benchmarks/results/instructions.json": (FUSED_UPDATE, LESS_PYTHON),
    "benchmarks/results/refinement.json": (LM_SEED,),
    "benchmarks/results/refinement_seed1.json": (LM_SEED,),
    "results/toy/kolmogorov_toy.json": (NOISE_SOURCE,),
    "benchmarks/results/cpu_training_loop.json": (CPU_STEP,),
}
#: result file -> the change whose earlier code it describes on purpose
PINNED: dict[str, Change] = {
    "benchmarks/results/op_counts_before.json": NOISE_SOURCE,
    "benchmarks/results/instructions.json": NOISE_SOURCE,
}


def pinned_note(path: str, prov: dict[str, Any]) -> str:
    """What a block showing a pinned file must say: when it was measured, before which change."""
    change = PINNED[path]
    return f"measured at {commit_text(str(prov.get('git_commit') or ''))}, before {change.what} ({change.commit})"


def pinned_caption(path: str, prov: dict[str, Any]) -> str:
    """The sentence under a table of a pinned file: which code the numbers describe."""
    note = pinned_note(path, prov)
    return f"{note[0].upper()}{note[1:]}: these numbers describe the code before that change."


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None


@cache
def _known(root: Path, commit: str) -> bool:
    done = _git(root, "cat-file", "-e", f"{commit}^{{commit}}")
    return done is not None and done.returncode == 0


def measured_after(root: Path, prov: dict[str, Any], change: Change) -> bool:
    """Whether the code a result was measured on already had ``change``."""
    commit = str(prov.get("git_commit") or "").removesuffix("+dirty")
    if commit and (root / ".git").exists() and _known(root, commit) and _known(root, change.commit):
        done = _git(root, "merge-base", "--is-ancestor", change.commit, commit)
        if done is not None and done.returncode in (0, 1):
            return done.returncode == 0
    return datetime.fromisoformat(str(prov["date"])) >= datetime.fromisoformat(change.date)


def provenances(results: Results, path: str) -> list[dict[str, Any]]:
    """The provenance records of a result file: its own, or each row's (cpu_training.json keeps one per row)."""
    data = results.json(path)
    if "provenance" in data:
        return [data["provenance"]]
    return [row["provenance"] for row in data.get("rows", []) if "provenance" in row]


def stale(results: Results) -> list[str]:
    """One line per result file older than a change it depends on, or pinned but newer than its pin."""
    problems = []
    for path, changes in MEASURES.items():
        if not (results.root / path).exists():
            continue
        for prov in provenances(results, path):
            for change in changes:
                if not measured_after(results.root, prov, change):
                    problems.append(
                        f"{path}: measured at {commit_text(str(prov.get('git_commit') or ''))} "
                        f"({str(prov.get('date'))[:10]}), before {change.what} ({change.commit}); rerun it"
                    )
    for path, change in PINNED.items():
        if not (results.root / path).exists():
            continue
        for prov in provenances(results, path):
            if measured_after(results.root, prov, change):
                problems.append(f"{path}: pinned to the code before {change.commit} but measured after it")
    return problems
