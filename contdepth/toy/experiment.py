"""Several configurations x several seeds of the toy: accuracies (mean ± std), models for figures.

Seed ``s`` draws the data set, the initial weights and the noise, identically for every
configuration, so configurations are compared on the same draws.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from tqdm import tqdm

from .data import ToyData, make_data
from .model import ModelConfig, ToyModel, build_model
from .train import ToyTrainConfig, fit

# (scheme, noise): the deterministic integrators, then the three kinds of noise injection
DEFAULT_CONFIGS: tuple[tuple[str, str], ...] = (
    ("euler", "none"),
    ("lm2", "none"),
    ("rk4", "none"),
    ("euler", "gaussian"),
    ("euler", "stochastic_depth"),
    ("euler", "dropout"),
)


@dataclass
class Run:
    """One trained model: accuracies in [0, 1], training time in seconds."""

    label: str
    scheme: str
    noise: str
    steps: int
    seed: int
    train_acc: float
    test_acc: float
    seconds: float
    final_loss: float


@dataclass
class ExperimentResult:
    runs: list[Run]
    models: dict[tuple[str, int], ToyModel] = field(default_factory=dict)  # (label, seed) -> model
    data: dict[int, ToyData] = field(default_factory=dict)  # seed -> data

    def summary(self) -> list[dict]:
        """Per configuration: mean and (sample) std of the accuracies over seeds, mean seconds."""
        rows = []
        for label in dict.fromkeys(r.label for r in self.runs):
            runs = [r for r in self.runs if r.label == label]
            tr, te = [r.train_acc for r in runs], [r.test_acc for r in runs]
            rows.append(
                {
                    "label": label,
                    "scheme": runs[0].scheme,
                    "noise": runs[0].noise,
                    "steps": runs[0].steps,
                    "seeds": len(runs),
                    "train_mean": statistics.fmean(tr),
                    "train_std": statistics.stdev(tr) if len(tr) > 1 else 0.0,
                    "test_mean": statistics.fmean(te),
                    "test_std": statistics.stdev(te) if len(te) > 1 else 0.0,
                    "seconds": statistics.fmean(r.seconds for r in runs),
                }
            )
        return rows


def run_experiment(
    configs: Sequence[ModelConfig],
    seeds: Sequence[int],
    train: ToyTrainConfig = ToyTrainConfig(),
    data_options: dict | None = None,
    progress: bool = True,
    keep_models: bool = True,
) -> ExperimentResult:
    """Train every configuration on every seed; a tqdm bar on stderr shows progress."""
    data_options = dict(data_options or {})
    result = ExperimentResult(runs=[])
    jobs = [(cfg, seed) for seed in seeds for cfg in configs]
    bar = tqdm(
        total=len(jobs) * train.iters,
        disable=not progress,
        file=sys.stderr,
        unit="it",
        leave=False,
        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]",
    )
    for cfg, seed in jobs:
        if seed not in result.data:
            result.data[seed] = make_data(seed=seed, **data_options)
        data = result.data[seed]
        model = build_model(cfg, seed=seed)
        bar.set_description(f"{cfg.label} seed {seed}")

        def tick(it: int, loss: float) -> None:
            bar.update(1)
            if it % 50 == 0:
                bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

        fitted = fit(model, data, train, on_step=tick)
        result.runs.append(
            Run(
                cfg.label,
                cfg.scheme,
                cfg.noise,
                cfg.n_steps,
                seed,
                fitted.train_acc,
                fitted.test_acc,
                fitted.seconds,
                fitted.losses[-1],
            )
        )
        if keep_models:
            result.models[(cfg.label, seed)] = model
    bar.close()
    return result


def format_table(rows: Sequence[dict]) -> str:
    """A plain-text table: scheme, noise, steps, train/test accuracy (% mean ± std), seconds per model."""
    header = f"{'scheme':<7} {'noise':<16} {'steps':>5} {'train acc %':>13} {'test acc %':>13} {'seconds':>8}"
    lines = [header, "-" * len(header)]

    def pct(mean: float, std: float, seeds: int) -> str:
        return f"{100 * mean:5.1f}" + (f" ± {100 * std:4.1f}" if seeds > 1 else "       ")

    for r in rows:
        lines.append(
            f"{r['scheme']:<7} {r['noise']:<16} {r['steps']:>5} {pct(r['train_mean'], r['train_std'], r['seeds']):>13} "
            f"{pct(r['test_mean'], r['test_std'], r['seeds']):>13} {r['seconds']:8.1f}"
        )
    return "\n".join(lines)


def paired_gains(result: ExperimentResult, baseline: str = "euler/none") -> list[dict]:
    """Per configuration: test-accuracy gain over ``baseline`` on the same seeds (mean ± std, in [0, 1])."""
    base = {r.seed: r.test_acc for r in result.runs if r.label == baseline}
    rows = []
    for label in dict.fromkeys(r.label for r in result.runs if r.label != baseline):
        gains = [r.test_acc - base[r.seed] for r in result.runs if r.label == label and r.seed in base]
        if gains:
            rows.append(
                {
                    "label": label,
                    "baseline": baseline,
                    "seeds": len(gains),
                    "gain_mean": statistics.fmean(gains),
                    "gain_std": statistics.stdev(gains) if len(gains) > 1 else 0.0,
                }
            )
    return rows
