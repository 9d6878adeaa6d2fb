"""Shared by the timing scripts (throughput, op_profile, step_overhead, pipeline): modes, device set-up, the timed step.

Modes (``MODES``): ``eager``, ``compile`` (torch.compile, mode default), ``reduce-overhead`` (compile +
CUDA graphs), each also with ``+cl`` (channels_last) and/or ``+bf16`` (bf16 autocast); ``skip_reason``
says which of them a device cannot run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_nets import HAND, copy_weights

import contdepth as cd
from contdepth.train.backends import apply_backend_flags, backend_flags
from contdepth.train.compiling import compile_module, mark_step
from contdepth.train.optim import sgd_options

# mode -> (torch.compile mode or None for eager, bf16 autocast, channels_last)
MODES: dict[str, tuple[str | None, bool, bool]] = {
    "eager": (None, False, False),
    "eager+cl": (None, False, True),
    "eager+bf16+cl": (None, True, True),
    "compile": ("default", False, False),
    "compile+cl": ("default", False, True),  # what `contdepth train` picks for long CPU runs
    "compile+bf16+cl": ("default", True, True),
    "reduce-overhead": ("reduce-overhead", False, False),
    "reduce-overhead+bf16+cl": ("reduce-overhead", True, True),
}


def skip_reason(mode: str, device: torch.device) -> str | None:
    """Why ``mode`` is not measured on ``device`` (None: it is)."""
    compile_mode, bf16, _ = MODES[mode]
    if device.type != "cuda" and compile_mode == "reduce-overhead":
        return "CUDA graphs exist on CUDA only"
    if device.type != "cuda" and bf16:
        return "bf16 autocast + channels_last is a GPU setting (on a CPU without bf16 units bf16 is emulated)"
    return None


def compiled_graphs() -> int:
    """Graphs dynamo has compiled since the last ``torch._dynamo.reset()``."""
    return int(torch._dynamo.utils.counters["stats"]["unique_graphs"])


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    """``--device``, ``--threads`` and ``--seed``, as every timing script takes them."""
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads (default 1 on CPU: the ratio is steadier on a shared machine; 0 = torch's default)",
    )
    parser.add_argument("--seed", type=int, default=0)


def set_up(args: argparse.Namespace) -> torch.device:
    """The device of ``args.device`` with ``--threads`` applied and the backend flags ``contdepth train`` sets."""
    device = torch.device(args.device)
    threads = args.threads if args.threads is not None else (0 if device.type == "cuda" else 1)
    if threads:
        torch.set_num_threads(threads)
    apply_backend_flags(backend_flags(device.type, deterministic=False))
    return device


def stem(name: str, device: torch.device) -> str:
    """Output file stem: ``name`` on a CPU, ``name_cuda`` on CUDA (the committed CPU results stay apart)."""
    return name if device.type != "cuda" else f"{name}_cuda"


def twin_nets(name: str, seed: int, device: torch.device | None = None) -> tuple[nn.Module, nn.Module]:
    """contdepth's ``name`` and its hand-written twin (``reference_nets.HAND``) with the same weights."""
    torch.manual_seed(seed)
    model, hand = cd.models.get(name), HAND[name]()
    copy_weights(model, hand)
    if device is not None:
        model, hand = model.to(device), hand.to(device)
    return model, hand


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Runner:
    """A model with its optimiser and options; ``step()`` does one training or inference iteration.

    ``compile_mode``: None (eager) or a ``torch.compile`` mode; ``bf16``: autocast; ``channels_last``:
    memory format of the model and the input. SGD is fused on CUDA, as ``contdepth train`` has it.
    """

    def __init__(
        self,
        model: nn.Module,
        x: Tensor,
        y: Tensor,
        *,
        train: bool,
        compile_mode: str | None = None,
        bf16: bool = False,
        channels_last: bool = False,
    ):
        self.model, self.train = model, train
        if channels_last:
            model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        self.x, self.y = x, y
        self.compile_mode = compile_mode
        self.fn = compile_module(model, compile_mode, x.device)
        self.bf16 = bf16
        self.opt = (
            torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4, **sgd_options(x.device))
            if train
            else None
        )

    def _autocast(self):
        return torch.autocast(self.x.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def step(self) -> None:
        mark_step(self.compile_mode, self.x.device)
        if self.train:
            self.model.train()
            with self._autocast():
                loss = F.cross_entropy(self.fn(self.x), self.y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
        else:
            self.model.eval()
            no_grad = torch.inference_mode() if self.compile_mode is None else torch.no_grad()
            with no_grad, self._autocast():
                self.fn(self.x)

    def timed(self, iters: int) -> float:
        """Seconds for ``iters`` iterations: wall time on CUDA; process CPU time on CPU, which a
        shared machine's other processes do not inflate (the CPU runs use one thread by default)."""
        clock = time.perf_counter if self.x.device.type == "cuda" else time.process_time
        sync(self.x.device)
        start = clock()
        for _ in range(iters):
            self.step()
        sync(self.x.device)
        return clock() - start
