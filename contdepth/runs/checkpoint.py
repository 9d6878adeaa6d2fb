"""Checkpoints: what training keeps, RNG states captured and restored, files written atomically, read with
``weights_only``."""

from __future__ import annotations

import errno
import os
import random
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from ..data import DeviceLoader


class LoopState(Protocol):
    """The training loop's own state (:class:`contdepth.train.state.TrainState`): what a checkpoint keeps of
    it, as plain types and tensors (``epoch``, ``batch``, ``partial``, ``history``, ``sessions``)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def rng_state() -> dict[str, Any]:
    """This process's python, numpy, torch CPU and CUDA generator states (tensors and plain types)."""
    np_state = np.random.get_state(legacy=False)
    return {
        "python": random.getstate(),
        "numpy": {
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured (CUDA states only for the devices present)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": np_state["pos"]},
            "has_gauss": np_state["has_gauss"],
            "gauss": np_state["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available():
        for i, s in enumerate(cuda[: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(s, i)


def module_generator_states(model: nn.Module) -> dict[str, dict[str, torch.Tensor]]:
    """States of seeded generators owned by modules (noise schemes built with ``seed=``)."""
    out = {}
    for name, module in model.named_modules():
        gens = getattr(module, "_generators", None)
        if isinstance(gens, dict) and gens:
            out[name] = {str(dev): g.get_state() for dev, g in gens.items()}
    return out


def set_module_generator_states(model: nn.Module, states: dict[str, dict[str, torch.Tensor]]) -> None:
    modules = dict(model.named_modules())
    for name, per_device in states.items():
        module = modules.get(name)
        if module is None or not hasattr(module, "_generator"):
            continue
        for dev, state in per_device.items():
            gen = module._generator(torch.device(dev))  # creates and seeds it, then we overwrite
            if gen is not None:
                gen.set_state(state)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read back: empty, truncated, corrupt or not a checkpoint."""


#: What every checkpoint written by training holds (``contdepth eval`` needs only some of it).
REQUIRED_KEYS = ("config", "model", "epoch", "batch")

#: The layout :func:`training_checkpoint` writes and :func:`restore_training` reads.
FORMAT = 1


def training_checkpoint(
    state: LoopState,
    config: dict[str, Any],
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    loader: DeviceLoader,
    rngs: list[dict[str, Any]],
) -> dict[str, Any]:
    """A training checkpoint: ``format``, ``config``, the loop's state (``epoch``, ``batch``, ``partial``: the
    epoch so far, ``history``, ``sessions``), the ``model``, ``optimizer``, ``scheduler`` and ``loader`` (data
    order) states, and ``rng``: the random generator states of each of the ``world`` processes."""
    return {
        "format": FORMAT,
        "config": config,
        **state.state_dict(),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "loader": loader.get_state(),
        "rng": rngs,
        "world": len(rngs),
    }


def restore_training(
    saved: dict[str, Any],
    state: LoopState,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    loader: DeviceLoader,
) -> bool:
    """Load a :func:`training_checkpoint` into ``state`` and the rest (the random streams are left to the caller).

    Returns False when the data order could not be restored (a generator state of another device type: it
    restarts). Raises ``KeyError``, ``ValueError``, ``RuntimeError``, ... when ``saved`` does not fit.
    """
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    try:
        loader.set_state(saved["loader"])
        order_kept = True
    except (RuntimeError, TypeError):
        order_kept = False
    state.load_state_dict(saved)
    if not isinstance(saved["rng"], list) or not saved["rng"]:
        raise ValueError("no random generator states")
    return order_kept


#: What torch's zip writer says when a write fails (the OSError behind it, if any, is only in the chain).
ZIP_WRITER_FAILURES = ("inline_container", "PytorchStreamWriter", "file write failed", "unexpected pos")


def write_error(err: BaseException, path: str | os.PathLike) -> OSError | None:
    """The ``OSError`` behind a failed write of ``path``, or None when ``err`` is not one.

    torch's zip writer reports a full disk as ``RuntimeError: [enforce fail at inline_container.cc] unexpected
    pos ...`` with ``ENOSPC`` only in the exception chain (or nowhere, when it wrote the file itself): this
    finds it there, or tells a full disk by the free space left, so that every save says it in one line.
    """
    if isinstance(err, OSError):
        return err
    if not isinstance(err, RuntimeError):
        return None
    seen: set[int] = set()
    link: BaseException | None = err
    while link is not None and id(link) not in seen:
        if isinstance(link, OSError):
            if link.filename is None:
                return OSError(link.errno, link.strerror or str(link), str(path))
            return link
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    text = str(err)
    if not any(marker in text for marker in ZIP_WRITER_FAILURES) and "No space left" not in text:
        return None
    try:
        full = shutil.disk_usage(Path(path).parent).free < 1 << 20
    except OSError:
        full = False
    code = errno.ENOSPC if full or "No space left" in text else errno.EIO
    return OSError(code, os.strerror(code), str(path))


def save_atomic(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file beside ``path``, flushed to disk, then renamed over it.

    On any failure (a full disk, say) the temporary file is removed and ``path`` is left as it was; a failed
    write raises ``OSError`` (ENOSPC for a full disk) however torch reported it (:func:`write_error`).
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        found = write_error(err, path)
        if found is None or found is err:
            raise
        raise found from err


RESTORE_OR_OVERWRITE = "restore a copy of it, or start the run again with --overwrite"


def damaged(path: Path, why: str, *, kind: str = "checkpoint", advice: str = RESTORE_OR_OVERWRITE) -> CheckpointError:
    return CheckpointError(f"{path} is damaged ({why}): it is not a complete {kind}; {advice}")


def load(
    path: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    required: tuple[str, ...] = REQUIRED_KEYS,
    *,
    kind: str = "checkpoint",
    advice: str = RESTORE_OR_OVERWRITE,
) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_atomic` (tensors and plain types only).

    Raises :class:`CheckpointError` naming the file when it is empty, truncated, not a checkpoint
    or lacks one of ``required`` (``kind`` and ``advice`` word that line); ``OSError`` when it cannot
    be read at all.
    """
    path = Path(path)

    def bad(why: str) -> CheckpointError:
        return damaged(path, why, kind=kind, advice=advice)

    if path.is_file() and path.stat().st_size == 0:
        raise bad("empty file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except OSError:
        raise
    except Exception as err:  # torch.load raises many kinds for a damaged file
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise bad(f"{type(err).__name__}: {first[:120]}") from None
    if not isinstance(state, dict):
        raise bad(f"holds a {type(state).__name__}, not a checkpoint dict")
    missing = [k for k in required if k not in state]
    if missing:
        raise bad(f"no {', '.join(missing)}")
    if not isinstance(state.get("config", {}), dict):
        raise bad("its config is not a dict")
    for key in ("epoch", "batch"):
        value = state.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad(f"its {key} is {value!r}, not a count")
    if not isinstance(state.get("model", {}), dict):
        raise bad("its weights are not a state dict")
    return state
