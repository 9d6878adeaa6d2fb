"""Library figures are written without pyplot: the user's matplotlib backend and pyplot state stay as they were."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import sys
import matplotlib
matplotlib.use("svg")  # the user's choice, which no contdepth figure may change
import torch
import contdepth as cd
from contdepth.analysis import block_spectra
from contdepth.analysis.spectra_plots import plot_spectra
from contdepth.train.plots import plot_curves, plot_momentum

out = sys.argv[1]
rows = [{"epoch": e, "train_loss": 1.0 / e, "test_loss": 1.2 / e, "train_acc": 0.5, "test_acc": 0.4, "lr": 0.1}
        for e in (1, 2)]
plot_curves(rows, f"{out}/curves.png", title="t")
plot_momentum([[0.1, -0.2], [0.0]], f"{out}/momentum.png")
flow = cd.Flow(cd.Blocks([torch.nn.Linear(3, 3).double()]), "euler", steps=1)
plot_spectra(block_spectra(flow, torch.randn(2, 3, dtype=torch.float64), n_eigs=2), f"{out}/spectra.png")
assert matplotlib.get_backend().lower() == "svg", matplotlib.get_backend()
assert "matplotlib.pyplot" not in sys.modules, "a library figure imported pyplot"
print("ok")
"""


def test_library_figures_leave_the_backend_and_pyplot_alone(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": ""},
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
    assert all((tmp_path / f).stat().st_size > 1000 for f in ("curves.png", "momentum.png", "spectra.png"))
