"""Calibration: how fast each training mode runs here (``benchmarks/throughput.py``), and the fastest that passed.

Sized for a short lease: each mode is one process timing resnet56 against its hand-written twin in a few
short repetitions (:data:`QUICK`), the modes cheapest first, each within what is left of one budget.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .procs import run_logged, stop_group


@dataclass(frozen=True)
class Mode:
    """A way to train: ``compile`` (None: eager) and bf16 autocast + channels_last or fp32."""

    name: str
    compile: str | None
    bf16_cl: bool
    throughput: str  # its name in benchmarks/throughput.py --modes

    @property
    def train_flags(self) -> list[str]:
        flags = ["--compile-mode", self.compile] if self.compile else []
        return flags + (["--amp", "bf16", "--channels-last"] if self.bf16_cl else [])


MODES: dict[str, Mode] = {
    m.name: m
    for m in (
        Mode("eager-fp32", None, False, "eager"),
        Mode("eager-bf16-cl", None, True, "eager+bf16+cl"),
        Mode("default-bf16-cl", "default", True, "compile+bf16+cl"),
        Mode("reduce-overhead-bf16-cl", "reduce-overhead", True, "reduce-overhead+bf16+cl"),
    )
}
CALIBRATED = ("eager-fp32", "eager-bf16-cl", "reduce-overhead-bf16-cl")  # cheapest first: compiling comes last
SAFE = "eager-fp32"
MODELS = ("resnet56", "lm_resnet56")
# benchmarks/throughput.py's repetitions on a short lease (its CUDA defaults, 7 x 50 after 20, take minutes)
QUICK = ("--reps", "3", "--iters", "20", "--warmup", "5")
MIN_SECONDS = 15.0  # a mode with less time left than this is not started
EPOCH_TEST = "test_one_epoch_of_2048_images"
FAMILY_TEST = "test_every_family"


def check_modes(names: Sequence[str]) -> list[Mode]:
    unknown = [n for n in names if n not in MODES]
    if unknown:
        raise ValueError(f"unknown mode {unknown[0]!r}; choose from: {', '.join(MODES)}")
    return [MODES[n] for n in names]


def check_models(names: Sequence[str]) -> list[str]:
    unknown = [n for n in names if n not in MODELS]
    if unknown or not names:
        raise ValueError(f"--calibrate-models takes {' or '.join(MODELS)} (comma-separated), got {','.join(names)!r}")
    return list(names)


def excluded_by_tests(failed: Sequence[str]) -> dict[str, str]:
    """Modes a failed GPU-tier test rules out, each with the test that did.

    A compile-vs-eager test rules out its compile mode; the one-epoch run (CUDA graphs, bf16,
    channels_last) rules out reduce-overhead; a model family failing in either precision rules out
    bf16 + channels_last. Other failures (loader, reproduce, DDP) rule out no mode: ``start`` reports them.
    """
    out: dict[str, str] = {}
    for test in failed:
        params = test.partition("[")[2]
        for mode in MODES.values():
            compiled_fail = mode.compile is not None and f"-{mode.compile}-" in f"-{params}"
            epoch_fail = test.startswith(EPOCH_TEST) and mode.compile == "reduce-overhead"
            family_fail = test.startswith(FAMILY_TEST) and mode.bf16_cl
            if (compiled_fail or epoch_fail or family_fail) and mode.name not in out:
                out[mode.name] = test
    return out


@dataclass
class Measurement:
    """One mode's calibration: train images/s per model for contdepth and the hand-written net."""

    mode: str
    ok: bool
    images_per_s: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0
    note: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)
    pipeline: dict[str, Any] = field(default_factory=dict)  # conventional DataLoader pipeline vs contdepth's

    @property
    def speed(self) -> float:
        """Mean contdepth train images/s over the models measured (0 when none)."""
        values = [v["contdepth"] for v in self.images_per_s.values() if "contdepth" in v]
        return statistics.fmean(values) if values else 0.0


def train_rows(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The training rows of a throughput JSON (``phase == "train"``)."""
    rows = payload.get("comparisons", payload.get("rows", []))
    return [r for r in rows if isinstance(r, dict) and r.get("phase", "train") == "train"]


def read_measurement(mode: Mode, folder: Path) -> Measurement:
    rows: list[dict[str, Any]] = []
    pipeline: dict[str, Any] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            payload = json.loads(path.read_text())
            rows += train_rows(payload)
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(payload.get("pipeline"), dict):
            pipeline = payload["pipeline"]
    out = Measurement(mode.name, ok=False, rows=rows, pipeline=pipeline)
    for r in rows:
        ips = r.get("images_per_s")
        if isinstance(ips, dict) and r.get("model") in MODELS:
            out.images_per_s[r["model"]] = {k: float(v) for k, v in ips.items() if isinstance(v, (int, float))}
    out.ok = bool(out.images_per_s)
    return out


def throughput_command(
    repo: Path, mode: Mode, out: Path, models: Sequence[str], extra: Sequence[str], device: str = "cuda"
) -> list[str]:
    return [
        sys.executable,
        str(repo / "benchmarks" / "throughput.py"),
        "--device",
        device,
        "--modes",
        mode.throughput,
        "--models",
        *models,
        "--batch",
        "128",
        "--no-profile",
        "--out",
        str(out),
        *extra,
    ]


def pipeline_flags(mode: Mode, data_dir: Path, images: int = 10240) -> list[str]:
    """throughput.py flags that also time epochs of the conventional DataLoader pipeline against ``mode``."""
    return [
        "--pipeline",
        "--pipeline-mode",
        mode.throughput,
        "--data",
        str(data_dir),
        "--subset",
        str(images),
        "--pipeline-reps",
        "2",
    ]


def measure(
    repo: Path,
    mode: Mode,
    folder: Path,
    timeout_s: float,
    extra: Sequence[str] = (),
    device: str = "cuda",
    models: Sequence[str] = MODELS,
) -> Measurement:
    """Time ``mode`` with ``benchmarks/throughput.py`` (fresh process: a fresh compile state), JSON into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    code = run_logged(
        throughput_command(repo, mode, folder, models, extra, device), folder / "throughput.log", timeout_s, cwd=repo
    )
    result = read_measurement(mode, folder)
    result.seconds = time.monotonic() - t0
    if code != 0:
        result.ok = False
        result.note = f"stopped after {timeout_s:.0f} s" if code is None else f"exit code {code}"
    return result


def choose(measured: Sequence[Measurement], excluded: dict[str, str]) -> Measurement | None:
    """The fastest mode that ran and that no failed test ruled out."""
    usable = [m for m in measured if m.ok and m.mode not in excluded and m.speed > 0]
    return max(usable, key=lambda m: m.speed) if usable else None


def measure_concurrency(
    repo: Path,
    mode: Mode,
    folder: Path,
    counts: Sequence[int],
    timeout_s: float,
    extra: Sequence[str] = (),
    model: str = MODELS[0],
) -> dict[int, float]:
    """Aggregate training images/s of ``model`` with ``k`` throughput processes at once, for each k in ``counts``,
    all within ``timeout_s``."""
    out: dict[int, float] = {}
    deadline = time.monotonic() + timeout_s
    for k in counts:
        procs, folders = [], []
        for i in range(k):
            sub = folder / f"concurrent{k}-{i}"
            sub.mkdir(parents=True, exist_ok=True)
            log = open(sub / "throughput.log", "w")
            cmd = throughput_command(repo, mode, sub, [model], extra)
            procs.append(
                (
                    subprocess.Popen(
                        cmd,
                        cwd=repo,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                    ),
                    log,
                )
            )
            folders.append(sub)
        ok = True
        for proc, log in procs:
            try:
                ok &= proc.wait(timeout=max(1.0, deadline - time.monotonic())) == 0
            except subprocess.TimeoutExpired:
                stop_group(proc)
                ok = False
            log.close()
        if not ok:
            break
        rates = [read_measurement(mode, sub).images_per_s.get(model, {}).get("contdepth", 0.0) for sub in folders]
        if not all(rates):
            break
        out[k] = sum(rates)
    return out


def jobs_from(aggregate: dict[int, float], within: float = 1.1) -> int:
    """The fewest concurrent runs whose aggregate images/s is within a factor ``within`` of the best."""
    if not aggregate:
        return 1
    best = max(aggregate.values())
    return min(k for k, v in aggregate.items() if v * within >= best)


def table(
    measured: Sequence[Measurement], excluded: dict[str, str], aggregate: dict[int, float], model: str = MODELS[0]
) -> str:
    """The calibration as text lines: per mode and model, images/s of contdepth and the hand-written net."""
    lines = [f"{'mode':26s} {'model':12s} {'contdepth img/s':>16s} {'hand img/s':>11s} {'ratio':>6s}  note"]
    for m in measured:
        note = m.note or ("ruled out by " + excluded[m.mode] if m.mode in excluded else "")
        if not m.images_per_s:
            lines.append(f"{m.mode:26s} {'-':12s} {'-':>16s} {'-':>11s} {'-':>6s}  {note or 'no rows'}")
        for model, ips in m.images_per_s.items():
            cd_, hand = ips.get("contdepth", 0.0), ips.get("hand", 0.0)
            ratio = f"{cd_ / hand:.3f}" if hand else "-"
            lines.append(f"{m.mode:26s} {model:12s} {cd_:16.0f} {hand:11.0f} {ratio:>6s}  {note}")
    for m in measured:
        ips = m.pipeline.get("images_per_s", {})
        if ips.get("conventional") and ips.get("contdepth"):
            lines.append(
                f"pipeline ({m.pipeline.get('model', 'resnet56')}, epochs of {m.pipeline.get('images')} "
                f"images): conventional DataLoader + eager fp32 {ips['conventional']:.0f} img/s, contdepth "
                f"{m.mode} {ips['contdepth']:.0f} img/s, ratio {ips['contdepth'] / ips['conventional']:.2f}"
            )
    for k, total in sorted(aggregate.items()):
        lines.append(f"{k} concurrent run(s): {total:.0f} images/s in all ({model})")
    return "\n".join(lines)
