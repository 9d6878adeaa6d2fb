"""save_figure: a 256-colour PNG that looks like matplotlib's own and is smaller."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402

from contdepth.outputs import save_figure  # noqa: E402


def _figure() -> Figure:
    fig = Figure(figsize=(4, 3))
    ax = fig.add_subplot()
    x = np.linspace(0, 6, 200)
    for shift in range(5):
        ax.plot(x, np.sin(x + shift), label=f"shift {shift}")
    ax.imshow(np.outer(np.linspace(0, 1, 50), np.linspace(0, 1, 50)), extent=(0, 6, -1, 1), alpha=0.5)
    ax.legend()
    return fig


def test_the_figure_is_paletted_smaller_and_looks_the_same(tmp_path):
    fig = _figure()
    fig.savefig(tmp_path / "plain.png", dpi=100)
    save_figure(fig, tmp_path / "small.png", dpi=100)
    with Image.open(tmp_path / "plain.png") as plain, Image.open(tmp_path / "small.png") as small:
        assert small.mode == "P" and small.size == plain.size
        difference = np.abs(np.asarray(small.convert("RGB"), float) - np.asarray(plain.convert("RGB"), float))
    assert difference.mean() < 2.0  # of 255
    assert (tmp_path / "small.png").stat().st_size < 0.7 * (tmp_path / "plain.png").stat().st_size


def test_transparent_parts_are_laid_on_white(tmp_path):
    save_figure(Figure(figsize=(1, 1)), tmp_path / "empty.png", dpi=20, transparent=True)
    with Image.open(tmp_path / "empty.png") as image:
        assert np.asarray(image.convert("RGB")).min() == 255


def test_an_unwritable_path_raises_oserror(tmp_path):
    with pytest.raises(OSError):
        save_figure(_figure(), tmp_path / "missing" / "figure.png")
