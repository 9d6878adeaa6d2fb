"""Train an LM-ResNet on CIFAR-10 through the Python API, then test it under other schemes and step counts.

    python examples/cifar_classifier.py --data-dir data                  # paper recipe (160 epochs; a GPU)
    python examples/cifar_classifier.py --data-dir data --smoke          # 2 epochs on 512 images (CPU, a few minutes)

DATA: ``data/cifar-10-batches-py/`` in the standard python layout (see ``contdepth train --help``).
"""

import argparse
import sys

import torch

import contdepth as cd
from contdepth.data import DataError
from contdepth.runs import CheckpointError, RunFolderError
from contdepth.train import TrainConfig, Trainer, evaluate_run

p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
p.add_argument("--data-dir", default="data", help="folder holding cifar-10-batches-py/")
p.add_argument("--out", default="runs/example_lm20", help="run directory (checkpoint, metrics, plots)")
p.add_argument("--model", default="lm_resnet20", help="model name (see `contdepth models`)")
p.add_argument("--scheme", default="lm2", help="scheme to train with (lm2 = LM-ResNet, euler = ResNet, ...)")
p.add_argument("--steps-per-block", type=int, default=1, help="scheme steps per residual block")
p.add_argument("--smoke", action="store_true", help="2 epochs, 512 train / 500 test images")
p.add_argument("--resume", action="store_true", help="continue the run in --out (after Ctrl-C, or a finished run)")
args = p.parse_args()

smoke = dict(epochs=2, subset=512, test_subset=500) if args.smoke else {}
cfg = TrainConfig(
    model=args.model,
    scheme=args.scheme,
    steps_per_block=args.steps_per_block,
    data_dir=args.data_dir,
    out=args.out,
    **smoke,
)  # everything else: the paper's recipe

torch.manual_seed(cfg.seed)  # the weights (and LM's k, drawn from (-0.1, 0)) depend on it
model = cd.models.get(cfg.model, num_classes=cfg.num_classes, scheme=cfg.scheme, steps_per_block=cfg.steps_per_block)
print([f"{type(f.scheme).__name__}: {f.steps} steps" for f in model.flows()])

try:
    results = Trainer(cfg, model=model, resume=args.resume).fit()  # checkpoints every epoch; Ctrl-C saves
except (RunFolderError, CheckpointError, DataError) as err:  # another run or a damaged one in --out, or no data
    print(f"cifar_classifier.py: error: {err}", file=sys.stderr)
    raise SystemExit(2) from None
print(
    f"test error {results['final_test_error']:.2f}% (best {results['best_test_error']:.2f}%), "
    f"{results['mean_images_per_s']:.0f} images/s; outputs in {cfg.out}"
)

# The trained field, integrated by other schemes / finer steps (weights shared, no retraining).
for scheme, steps in [(None, None), (args.scheme, 2), ("rk4", 1)]:
    r = evaluate_run(cfg.out, scheme=scheme, steps_per_block=steps)
    print(f"  {r['scheme']:>6} x{r['steps_per_block']} steps/block: test error {r['test_error']:.2f}%")
