"""torch.compile: one graph for training and one for eval, whole (no graph break), never recompiled."""

from __future__ import annotations

import pytest
import torch
import torch._dynamo
from torch._dynamo.utils import counters

import contdepth as cd

CASES = [
    ("resnet20", "sd:0.8"),
    ("resnet20", "gaussian:0.001"),
    ("lm_resnet20", "sd:0.8"),
    ("lm_resnet20", "gaussian:0.001"),
    ("preact_resnet20", "sd:0.8"),
    ("preact_resnet20", "gaussian:0.001"),
    ("shake_resnet26_2x32d", None),
]


@pytest.mark.parametrize("name,noise", CASES)
def test_training_and_eval_compile_to_two_graphs(name, noise):
    torch.manual_seed(0)
    torch._dynamo.reset()
    counters.clear()
    model = cd.models.get(name, noise=noise)
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(2, 3, 8, 8), torch.tensor([1, 3])

    def train_steps(n: int) -> None:
        model.train()
        for _ in range(n):
            loss = torch.nn.functional.cross_entropy(compiled(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

    def eval_steps(n: int) -> None:
        model.eval()
        with torch.no_grad():
            for _ in range(n):
                compiled(x)

    train_steps(3)
    eval_steps(2)
    train_steps(2)
    assert counters["stats"]["unique_graphs"] == 2
    assert not counters["graph_break"]
    assert counters["stats"]["calls_captured"] >= 2
    recompiles = {k: v for k, v in counters["recompiles"].items()} if "recompiles" in counters else {}
    assert not recompiles


def test_models_draw_noise_from_the_global_rng():
    """A seeded source (a private torch.Generator) is a graph break; the models never use one."""
    for name, noise in CASES:
        model = cd.models.get(name, noise=noise)
        sources = [m for m in model.modules() if isinstance(m, cd.Noise)]
        assert sources and all(s.seed is None for s in sources)
