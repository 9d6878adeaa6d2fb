"""The pretrained names: each shipped run as ``model.tag``, with the test error its ``results.json`` records,
and the trained net loaded or evaluated by name.

A run's name is its model (from its ``config.json``) and a tag made from its folder: the study, then what
the run's name adds to the model's, with ``-`` as ``_``. ``cifar10-cpu/preact_resnet20-s0`` is
``preact_resnet20.cifar10_cpu_s0``; ``cifar10-cpu/preact_resnet20-bf16-s0`` is
``preact_resnet20.cifar10_cpu_bf16_s0``. A model's plain name means its default: its first run in
:data:`~.shipped.SHIPPED`.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .._checks import close_matches
from ..models.stage import ResidualNet
from ..runs.files import RESULTS, WEIGHTS
from ..runs.records import read_results, saved_settings
from ..train.config import TrainConfig
from ..train.evaluate import evaluate_run
from ..train.loading import load_run, load_run_config
from .shipped import SHIPPED, shipped_root


@dataclass(frozen=True)
class Pretrained:
    """A trained net the project ships: its name ``model.tag``, the run it comes from and its recorded test error."""

    name: str
    model: str
    tag: str
    run: str
    """The run folder under ``results/``, ``<study>/<run>``."""
    folder: Path
    """Where the run folder is on this machine (:func:`~.shipped.shipped_root`)."""
    test_error: float
    """% of the test images, ``final_test_error`` of the run's ``results.json``: what the shipped weights score."""
    test_images: int
    dataset: str
    scheme: str
    noise: str | None
    epochs: int
    default: bool
    """Whether the plain model name means this net."""

    def row(self) -> dict[str, Any]:
        """The fields as a dict, ``folder`` as text (the row of ``contdepth models --pretrained --json``)."""
        return {**asdict(self), "folder": str(self.folder)}


def tag_of(run: str, model: str) -> str:
    """The tag of ``model``'s run folder ``<study>/<run>``: ``cifar10-cpu/preact_resnet20-s0`` -> ``cifar10_cpu_s0``."""
    study, _, folder = run.rpartition("/")
    rest = folder[len(model) + 1 :] if folder.startswith(f"{model}-") else folder
    return "_".join(part for part in (study, rest) if part).replace("-", "_").replace("/", "_").lower()


def _read(run: str, root: Path, seen: set[str]) -> Pretrained:
    folder = root / run
    settings = saved_settings(folder)
    results = read_results(folder, strict=True)
    if settings is None or results is None or not (folder / WEIGHTS).is_file():
        raise FileNotFoundError(
            f"shipped run {run!r} is incomplete: {folder} needs config.json, {RESULTS} and {WEIGHTS}"
        )
    if not results.get("complete"):
        raise ValueError(f"shipped run {run!r} did not finish ({folder / RESULTS} is not complete)")
    config = settings[0]
    model = str(config["model"])
    return Pretrained(
        name=f"{model}.{tag_of(run, model)}",
        model=model,
        tag=tag_of(run, model),
        run=run,
        folder=folder,
        test_error=float(results["final_test_error"]),
        test_images=int(results.get("test_images", 0)),
        dataset=str(config.get("dataset", "cifar10")),
        scheme=str(results.get("scheme") or config.get("scheme") or ""),
        noise=config.get("noise"),
        epochs=int(results.get("epochs_done", 0)),
        default=model not in seen,
    )


@functools.cache
def pretrained_runs() -> tuple[Pretrained, ...]:
    """Every shipped net, grouped by model (in the order of :data:`~.shipped.SHIPPED`), each model's default first."""
    root, seen = shipped_root(), set[str]()
    runs = []
    for run in SHIPPED:
        entry = _read(run, root, seen)
        seen.add(entry.model)
        runs.append(entry)
    order = list(dict.fromkeys(r.model for r in runs))
    return tuple(sorted(runs, key=lambda r: order.index(r.model)))


def pretrained_names() -> list[str]:
    """Every pretrained name, ``model.tag``, as :func:`pretrained_runs` orders them."""
    return [r.name for r in pretrained_runs()]


def find(name: str) -> Pretrained:
    """The shipped net called ``name``: ``model.tag``, or a plain model name for its default.

    ``ValueError`` names the pretrained names (and the closest) for any other name."""
    runs = pretrained_runs()
    key = name.lower() if isinstance(name, str) else name
    for entry in runs:
        if key == entry.name or (key == entry.model and entry.default):
            return entry
    names = [r.name for r in runs]
    close = close_matches(str(name), names)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"no trained weights named {name!r}{hint}; pretrained: {', '.join(names)}")


def load_pretrained(
    name: str,
    *,
    scheme: str | None = None,
    steps_per_block: int | None = None,
    num_classes: int | None = None,
    noise: str | None = None,
    **kw: Any,
) -> ResidualNet:
    """The shipped net ``name`` (:func:`find`), on the CPU in eval mode, in float32, with the weights of its run's
    ``weights.fp16.pt``; ``scheme`` and ``steps_per_block`` re-discretise it (default: as trained).

    ``num_classes`` may only repeat the trained net's; ``noise`` and the build options of
    :func:`contdepth.models.get` do not apply to trained weights (``TypeError``)."""
    entry = find(name)
    given = sorted(k for k, v in {"noise": noise, **kw}.items() if v is not None)
    if given:
        raise TypeError(
            f"get({name!r}, pretrained=True) takes scheme and steps_per_block (re-discretising the trained net), "
            f"not {given[0]!r}: the net is built as its run {entry.run} was trained"
        )
    classes = load_run_config(entry.folder).num_classes
    if num_classes is not None and num_classes != classes:
        raise ValueError(f"{entry.name} was trained for {classes} classes, not {num_classes}")
    net = load_run(entry.folder, scheme=scheme, steps_per_block=steps_per_block)
    if not isinstance(net, ResidualNet):
        raise TypeError(f"{entry.run} holds a {type(net).__name__}, not a net of the model zoo")
    return net


DEFAULT_DATA_DIR: str = TrainConfig.data_dir
"""Where ``contdepth eval --pretrained`` looks for the data set unless told (``contdepth train``'s default)."""


def evaluate_pretrained(
    name: str,
    scheme: str | None = None,
    steps_per_block: float | None = None,
    *,
    data_dir: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """:func:`~contdepth.train.evaluate.evaluate_run` of the shipped net ``name`` (same options), on the data set
    in ``data_dir`` (default ``data``, not the folder the run was trained from), with ``pretrained`` (its name),
    ``recorded_test_error`` and ``recorded_test_images`` (its ``results.json``) added to the result."""
    entry = find(name)
    result = evaluate_run(entry.folder, scheme, steps_per_block, data_dir=data_dir or DEFAULT_DATA_DIR, **options)
    return {
        **result,
        "pretrained": entry.name,
        "recorded_test_error": entry.test_error,
        "recorded_test_images": entry.test_images,
    }
