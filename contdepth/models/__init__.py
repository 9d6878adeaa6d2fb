"""Model zoo: CIFAR and ImageNet residual networks built from fields, schemes and flows.

>>> import contdepth as cd
>>> model = cd.models.get("lm_resnet56", num_classes=10)           # doctest: +SKIP
>>> model = cd.models.resnet(110, noise="sd:0.5")                  # doctest: +SKIP
>>> model.rediscretise(scheme="rk4", steps_per_block=2)            # doctest: +SKIP
>>> trained = cd.models.get("lm_resnet20", pretrained=True)        # doctest: +SKIP
>>> cd.models.list_models(pretrained=True)                         # doctest: +SKIP
['preact_resnet20.cifar10_cpu_s0', ...]

A stage is a transition block (change of space, Euler step with projection shortcut) followed by
a :class:`~contdepth.Flow` over a :class:`~contdepth.Blocks` field of residual branches.
"""

from .batchnorm import clear_step_statistics, recalibrate_bn
from .cifar import resnet, resnext, shake_resnet
from .imagenet import imagenet_resnet
from .noise_spec import NoiseSpec, parse_noise
from .registry import available, describe, get, list_models, register_model
from .sampling import monte_carlo, noise_at_eval
from .stage import ResidualNet, Stage, StagePlan, noisy_schemes

__all__ = [
    "NoiseSpec",
    "ResidualNet",
    "Stage",
    "StagePlan",
    "available",
    "clear_step_statistics",
    "describe",
    "get",
    "imagenet_resnet",
    "list_models",
    "monte_carlo",
    "noise_at_eval",
    "noisy_schemes",
    "parse_noise",
    "recalibrate_bn",
    "register_model",
    "resnet",
    "resnext",
    "shake_resnet",
]
