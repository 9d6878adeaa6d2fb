"""Studies: a paper's tables as data. Each row is one run spec with the paper's number beside it.

A :class:`Study` is a list of :class:`RunSpec` rows; ``contdepth reproduce STUDY`` trains every row
once per seed in ``DIR/<row name>-s<seed>/``. Row names are ``<model>[-<noise tag>]`` and use only
letters, digits, ``.``, ``_`` and ``-`` (safe in every file system and shell).

Priorities: 1 = the paper's claims (the 56 and 110 pairs, LM-ResNet-56 against ResNet-110),
2 = depth 20, 3 = the rest. Runs go in order of priority, then seed, then row.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from .._checks import close_matches

# Recipe name -> `contdepth train` flags. "lu2018" is the train defaults, which are the paper's
# recipe: SGD momentum 0.9, weight decay 1e-4, batch 128, lr 0.1 divided by 10 at epochs 80 and 120
# of 160. It adds no flags, so flags given after `--` (e.g. `--epochs 1`) keep their usual meaning.
# "cpu-budget" is the same optimiser on a budget of 30 epochs: one epoch of linear warm-up, then
# linear decay to zero at the last step, the most robust schedule for a fixed budget in Li, Yumer
# and Ramanan (ICLR 2020); the paper's step schedule compressed to a few tens of epochs stops far
# from convergence.
RECIPES: dict[str, tuple[str, ...]] = {
    "lu2018": (),
    "cpu-budget": ("--epochs", "30", "--schedule", "linear", "--warmup", "1"),
}

SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


class UnknownName(ValueError):
    """A study or run name that is not in the table (the message lists the choices)."""


def noise_tag(noise: str | None) -> str:
    """``"sd:0.8"`` -> ``"sd0.8"``, ``"gaussian:0.001"`` -> ``"gaussian0.001"``, ``None`` -> ``""``."""
    if not noise:
        return ""
    tag = noise.replace(":", "")
    if not SAFE_NAME.match(tag):
        raise ValueError(f"noise {noise!r} gives a run name with characters other than letters, digits, '.', '_', '-'")
    return tag


def basic_blocks(depth: int) -> int:
    """Residual blocks of a CIFAR ResNet of depth ``6n + 2`` with basic blocks: ``3n``."""
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"a basic-block CIFAR ResNet has depth 6n + 2, got {depth}")
    return (depth - 2) // 2


def matching_gaussian_level(blocks: int, final_survival: float) -> float:
    """The ``gaussian:S`` level whose noise matches stochastic depth ``sd:P`` over ``blocks`` blocks.

    Stochastic depth ``sd:P`` makes block ``l`` of ``L`` the step ``x + η F``, ``η ~ Bernoulli(p_l)``,
    ``p_l = 1 - l/L (1 - P)``: mean ``p_l F`` and variance ``p_l (1 - p_l) F²``. Written in its own
    mean ``G = p_l F`` (a rescaling of the branch's last convolution, which training absorbs), this is
    ``x + G + s_l G ξ`` with ``s_l² = (1 - p_l) / p_l``: the same first two moments per block as
    ``gaussian:s_l`` (``x + F + S F ξ``). Weak equivalence needs only those moments.

    ``gaussian:S`` has one ``S`` for every block, so a per-block ``s_l`` is not expressible; the closest
    expressible form matches the variance summed over the net (the SDE's integrated diffusion):
    ``S² = mean_l (1 - p_l) / p_l``. For LM-ResNet-56 (``L = 27``) and ``P = 0.8``, ``S ≈ 0.347``
    (``s_l`` runs from 0.086 to 0.5).
    """
    if blocks < 1 or not 0.0 < final_survival <= 1.0:
        raise ValueError(f"need blocks >= 1 and a final survival in (0, 1], got {blocks}, {final_survival}")
    survival = [1.0 - block / blocks * (1.0 - final_survival) for block in range(1, blocks + 1)]
    return math.sqrt(sum((1.0 - p) / p for p in survival) / blocks)


@dataclass(frozen=True)
class RunSpec:
    """One row: ``model`` trained with ``noise``/``scheme`` (None: the model's own) under ``recipe``.

    ``paper_error`` is the CIFAR-10 test error (%) the paper reports for it (None: not reported) and
    ``paper_source`` where the paper reports it (the paper and its table).
    ``seeds`` limits the row to these seeds (None: every seed the study is run with).
    ``flags`` are further `contdepth train` flags of the row and ``tag`` names them in the row's name
    (``<model>[-<noise tag>][-<tag>]``), so two rows of one model differ in name.
    """

    model: str
    noise: str | None = None
    scheme: str | None = None
    recipe: str = "lu2018"
    paper_error: float | None = None
    priority: int = 3
    paper_source: str = ""
    note: str = ""
    seeds: tuple[int, ...] | None = None
    flags: tuple[str, ...] = ()
    tag: str = ""

    def __post_init__(self) -> None:
        if self.tag and not SAFE_NAME.match(self.tag):
            raise ValueError(f"tag {self.tag!r} has characters other than letters, digits, '.', '_', '-'")

    @property
    def name(self) -> str:
        return "-".join(part for part in (self.model, noise_tag(self.noise), self.tag) if part)

    @property
    def family(self) -> str:
        """``lm`` for LM-ResNets (a scheme that learns a momentum k, lm2: the row's, else the model's own),
        ``resnet`` for the Euler ResNets, ``other`` otherwise."""
        from ..models.registry import default_scheme  # the model zoo, only when asked
        from ..schemes import scheme_class

        if scheme_class(self.scheme or default_scheme(self.model)).has_momentum:
            return "lm"
        if self.model.startswith(("resnet", "preact_resnet")):
            return "resnet"
        return "other"

    def train_flags(self) -> list[str]:
        """The `contdepth train` flags that make this row (without seed and folder)."""
        flags = ["--model", self.model]
        if self.noise:
            flags += ["--noise", self.noise]
        if self.scheme:
            flags += ["--scheme", self.scheme]
        return flags + list(RECIPES[self.recipe]) + list(self.flags)

    def run_name(self, seed: int) -> str:
        return f"{self.name}-s{seed}"


@dataclass(frozen=True)
class Study:
    """A named table of run specs, run with ``seeds`` unless told otherwise."""

    name: str
    title: str
    rows: tuple[RunSpec, ...]
    notes: tuple[str, ...] = field(default=())
    seeds: tuple[int, ...] = (0,)

    def row(self, name: str) -> RunSpec:
        for r in self.rows:
            if r.name == name:
                return r
        raise UnknownName(_unknown("run", name, [r.name for r in self.rows], f"in study {self.name}"))

    def select(self, names: Sequence[str] | None) -> list[RunSpec]:
        """The rows named (all when ``names`` is None), in table order; unknown names raise UnknownName."""
        if not names:
            return list(self.rows)
        wanted = {self.row(n.strip()).name for n in names if n.strip()}
        return [r for r in self.rows if r.name in wanted]


def _unknown(what: str, name: str, choices: Sequence[str], where: str = "") -> str:
    close = close_matches(name, choices, n=3)
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    return f"unknown {what} {name!r}{' ' + where if where else ''}{hint}; choices: {', '.join(choices)}"


_LM56_SIGMA = matching_gaussian_level(basic_blocks(56), 0.8)
_R110_SIGMA = matching_gaussian_level(basic_blocks(110), 0.5)
# Where Lu et al. 2018 report each number: Table 1 compares ResNets and LM-ResNets by depth on CIFAR, Table 2
# their stochastic training on CIFAR-10.
_T1 = "Lu et al. 2018, Table 1"
_T2 = "Lu et al. 2018, Table 2"
_FP32 = ("--amp", "none")
#: Gaussian levels S (x + F + S F ξ) tried on held-out images; sd:0.8 at depth 20 matches S ≈ 0.34 in variance
GAUSSIAN_LEVELS = (0.1, 0.3, 1.0)
#: The level sde-cpu's -val rows chose: the lowest error on the 5,000 held-out training images after 10 epochs
#: (results/sde-cpu/preact_resnet20-gaussian*-val-s0; a test checks the choice against them).
CHOSEN_GAUSSIAN_LEVEL = 0.1

# (noise, priority, flags, tag, note) of the depth-dial study's rows, all preact_resnet20 with the euler scheme
DEPTH_DIAL_ROWS: tuple[tuple[str | None, int, tuple[str, ...], str, str], ...] = (
    ("sd:0.8", 1, (), "", "stochastic depth: an Euler–Maruyama step per block; the SDE study uses it too"),
    (
        None,
        1,
        ("--train-steps", "1,2,4", "--depth-basis", "linear"),
        "linear-steps1.2.4",
        "weights linear in depth between knots at the blocks, each batch at 1, 2 or 4 steps per block",
    ),
    (None, 1, ("--train-steps", "1,2,4"), "steps1.2.4", "blockwise weights, each batch at 1, 2 or 4 steps per block"),
    (None, 2, ("--refine-at", "10,20"), "refine1.2.4", "1 step per block, doubled after epochs 10 and 20 (to 4)"),
    (None, 3, ("--steps-per-block", "4"), "k4", "four Euler steps per block (h = 1/4) throughout"),
)

STUDIES: dict[str, Study] = {
    s.name: s
    for s in (
        Study(
            "lu2018-cifar10",
            "Lu et al. 2018, CIFAR-10: ResNet vs LM-ResNet by depth (160 epochs)",
            (
                RunSpec("resnet56", paper_error=6.97, priority=1, paper_source=_T1),
                RunSpec("lm_resnet56", paper_error=6.31, priority=1, paper_source=_T1),
                RunSpec(
                    "resnet110",
                    paper_error=6.61,
                    priority=1,
                    paper_source=f"{_T2}; He et al. 2015's post-activation ResNet-110",
                    note="Table 1's ResNet at depth 110 is the pre-activation one (preact_resnet110)",
                ),
                RunSpec("preact_resnet110", paper_error=6.37, priority=1, paper_source=_T1),
                RunSpec("lm_resnet110", paper_error=6.16, priority=1, paper_source=_T1),
                RunSpec("resnet20", paper_error=8.75, priority=2, paper_source=_T1),
                RunSpec("lm_resnet20", paper_error=8.33, priority=2, paper_source=_T1),
                RunSpec(
                    "resnet32",
                    paper_error=7.51,
                    paper_source=f"{_T1}; He et al. 2015's number",
                    note="the paper also quotes 7.57 for ResNet-32 outside Table 1; the row keeps Table 1's 7.51",
                ),
                RunSpec("lm_resnet32", paper_error=7.18, paper_source=_T1),
                RunSpec("resnet44", paper_error=7.17, paper_source=_T1),
                RunSpec("lm_resnet44", paper_error=6.66, paper_source=_T1),
                RunSpec("preact_resnet164", paper_error=5.46, paper_source=_T1),
                RunSpec("lm_resnet164", paper_error=5.27, paper_source=_T1),
            ),
            ("ResNets at depths 20-56 are post-activation (He et al. 2015); LM-ResNets use pre-activation blocks.",),
        ),
        Study(
            "lu2018-stochastic",
            "Lu et al. 2018, CIFAR-10: stochastic training (stochastic depth, Gaussian noise, shake-shake)",
            (
                RunSpec("lm_resnet56", "sd:0.8", paper_error=5.14, priority=1, paper_source=_T2),
                RunSpec(
                    "resnet110",
                    "sd:0.5",
                    paper_error=5.25,
                    priority=1,
                    paper_source=f"{_T2}; Huang et al. 2016's number",
                ),
                RunSpec("lm_resnet110", "sd:0.5", paper_error=4.80, priority=1, paper_source=_T2),
                RunSpec(
                    "preact_resnet56",
                    "sd:0.8",
                    paper_error=5.55,
                    priority=1,
                    paper_source=f"{_T2}; the authors' pre-activation ResNet-56",
                    note="the pair of lm_resnet56-sd0.8: the same blocks with the Euler scheme",
                ),
                RunSpec(
                    "lm_resnet56",
                    f"gaussian:{_LM56_SIGMA:.3g}",
                    priority=1,
                    note=f"Gaussian noise matching sd:0.8 in total variance (S² = mean (1-p_l)/p_l, "
                    f"S = {_LM56_SIGMA:.3g}); gaussian:S has one S for all blocks, so the per-block "
                    "s_l = sqrt((1-p_l)/p_l) of exact per-block matching is not expressible",
                ),
                RunSpec(
                    "resnet110",
                    f"gaussian:{_R110_SIGMA:.3g}",
                    paper_error=5.52,
                    priority=2,
                    paper_source=f"{_T2}; noise level given as 0.001",
                    note="the paper gives the level 0.001 without defining it (a standard deviation or a "
                    "variance, of what); as the relative level S of x + F + S F ξ it would change each step by "
                    f"0.1%, close to no noise, so the row trains S = {_R110_SIGMA:.3g}, which matches "
                    "resnet110-sd0.5 in total variance",
                ),
                RunSpec(
                    "shake_resnet26_2x32d",
                    priority=3,
                    note="shake-shake as an SDE; the 160-epoch recipe here, not shake-shake's own 1800 epochs",
                ),
            ),
        ),
        Study(
            "lu2018-cifar10-cpu",
            "CIFAR-10 on a CPU budget: pre-activation ResNet-20 vs LM-ResNet-20 (30 epochs, linear decay)",
            (
                RunSpec(
                    "preact_resnet20",
                    scheme="euler",
                    recipe="cpu-budget",
                    priority=1,
                    note="LM-ResNet-20's architecture with the Euler scheme: only the scheme differs",
                    flags=_FP32,
                ),
                RunSpec(
                    "lm_resnet20", recipe="cpu-budget", paper_error=8.33, paper_source=_T1, priority=1, flags=_FP32
                ),
                RunSpec(
                    "resnet20",
                    recipe="cpu-budget",
                    paper_error=8.75,
                    paper_source=_T1,
                    priority=2,
                    seeds=(0,),
                    flags=_FP32,
                ),
                RunSpec(
                    "preact_resnet20",
                    scheme="euler",
                    recipe="cpu-budget",
                    priority=2,
                    seeds=(0,),
                    flags=("--amp", "bf16"),
                    tag="bf16",
                    note="preact_resnet20 in bf16 autocast: its error against the float32 seeds' spread",
                ),
            ),
            (
                "The paper's numbers are 160 epochs of the step schedule on the original images; these runs "
                "are 30 epochs of linear decay to zero.",
                "Rows without a tag train in float32 (--amp none), as they were run; the bf16 row checks that "
                "bf16 autocast trains as accurately.",
            ),
            seeds=(0, 1, 2),
        ),
        Study(
            "depth-dial-cpu",
            "Depth as a dial: training recipes for pre-activation ResNet-20s that keep their accuracy at other "
            "step counts and schemes (30 epochs, linear decay)",
            tuple(
                RunSpec("preact_resnet20", noise, "euler", "cpu-budget", priority=p, flags=flags, tag=tag, note=note)
                for noise, p, flags, tag, note in DEPTH_DIAL_ROWS
            ),
            (
                "The negative control is the CPU study's preact_resnet20 (one Euler step per block, h = 1).",
                "benchmarks/depth_dial.py measures every run at other step counts and schemes.",
            ),
        ),
        Study(
            "sde-cpu",
            "Stochastic training as an SDE on a CPU budget: stochastic depth, Gaussian noise and shake-shake at "
            "depth 20 (30 epochs, linear decay)",
            (
                RunSpec(
                    "lm_resnet20",
                    "sd:0.8",
                    recipe="cpu-budget",
                    priority=2,
                    note="LM-ResNet + stochastic depth, the paper's combination, at depth 20",
                ),
                RunSpec(
                    "shake_resnet20_2x16d",
                    recipe="cpu-budget",
                    priority=2,
                    note="shake-shake (uniform law, independent backward draw) at depth 20, 2 x 16 channels",
                ),
                *(
                    RunSpec(
                        "preact_resnet20",
                        f"gaussian:{level}",
                        "euler",
                        "cpu-budget",
                        priority=1,  # first: the 30-epoch run at the chosen level waits for them
                        flags=("--epochs", "10", "--validation", "5000"),
                        tag="val",
                        note="choosing the Gaussian level: 10 epochs, evaluated on 5,000 held-out training images",
                    )
                    for level in GAUSSIAN_LEVELS
                ),
                RunSpec(
                    "preact_resnet20",
                    f"gaussian:{CHOSEN_GAUSSIAN_LEVEL}",
                    "euler",
                    "cpu-budget",
                    priority=1,
                    note="Gaussian noise injection at the level the -val rows chose on held-out training images",
                ),
            ),
            (
                "preact_resnet20 with stochastic depth (sd:0.8) is the depth-dial study's run of that name.",
                "The -val rows choose the Gaussian level on held-out training images, never on the test set; "
                "the 30-epoch run at the chosen level (the lowest validation error) follows them.",
            ),
        ),
    )
}


def get_study(name: str) -> Study:
    """The study called ``name``; UnknownName lists the choices (closest first)."""
    if name not in STUDIES:
        raise UnknownName(_unknown("study", name, list(STUDIES)))
    return STUDIES[name]
