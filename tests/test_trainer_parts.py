"""A Trainer is built whole: its parts come from one function as a frozen record; its settings are resolved."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest
import torch

from contdepth.train import TrainConfig, Trainer
from contdepth.train.config import ResolvedConfig
from contdepth.train.parts import TrainerParts, build_parts

TRAIN = Path(__file__).resolve().parents[1] / "contdepth" / "train"

pytestmark = pytest.mark.usefixtures("one_thread")


def _config(data_dir, out, **changes):
    settings = dict(
        model="resnet20",
        data_dir=str(data_dir),
        out=str(out),
        epochs=1,
        batch_size=16,
        subset=32,
        test_subset=16,
        eval_batch_size=16,
        device="cpu",
        progress=False,
    )
    return TrainConfig(**{**settings, **changes})


# ------------------------------------------------------------------------- the Trainer
def _self_attributes(fn: ast.FunctionDef) -> set[str]:
    """The attributes ``fn`` assigns on ``self`` (plain, annotated, augmented and tuple assignments)."""
    names = set()
    for node in ast.walk(fn):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        while targets:
            target = targets.pop()
            if isinstance(target, (ast.Tuple, ast.List)):
                targets.extend(target.elts)
            elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
                names.add(target.attr)
    return names


def test_every_attribute_of_the_trainer_is_first_set_in_init():
    tree = ast.parse((TRAIN / "trainer.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Trainer")
    methods = [n for n in cls.body if isinstance(n, ast.FunctionDef)]
    init = _self_attributes(next(m for m in methods if m.name == "__init__"))
    assert {"model", "net", "optimizer", "state", "saver", "progress", "stopped"} <= init
    for method in methods:
        if method.name != "__init__":
            assert _self_attributes(method) <= init, f"Trainer.{method.name} sets attributes __init__ does not"


def test_a_trainer_has_the_same_attributes_before_and_after_it_trains(fake_cifar10, tmp_path):
    trainer = Trainer(_config(fake_cifar10, tmp_path / "run"))
    before = dict(vars(trainer))
    trainer.fit()
    assert sorted(vars(trainer)) == sorted(before) and trainer.epoch == 1
    assert all(vars(trainer)[name] is before[name] for name in ("model", "optimizer", "state", "saver", "parts"))


def test_a_trainer_from_built_parts_trains_as_one_built_from_its_config(fake_cifar10, tmp_path):
    by_config = Trainer(_config(fake_cifar10, tmp_path / "a"))
    by_config.fit()
    parts = build_parts(_config(fake_cifar10, tmp_path / "b"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        parts.model = torch.nn.Identity()  # type: ignore[misc]
    with pytest.raises(TypeError, match="build_parts"):
        Trainer(parts, resume=True)
    trainer = Trainer(parts)
    assert trainer.parts is parts and trainer.model is parts.model and trainer.saver is parts.saver
    trainer.fit()
    assert trainer.history[0]["train_loss"] == by_config.history[0]["train_loss"]
    for a, b in zip(by_config.model.state_dict().values(), trainer.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert {f.name for f in dataclasses.fields(TrainerParts)} >= {"model", "train_loader", "optimizer", "progress"}


def test_a_failed_start_up_builds_no_parts_and_leaves_no_folder(tmp_path):
    out = tmp_path / "runs" / "run"
    with pytest.raises(Exception, match="does not exist"):
        build_parts(_config(tmp_path / "no_data", out))
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- the resolved settings
def test_resolved_config_has_train_configs_fields_in_order_with_no_optional_epochs():
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    assert [f.name for f in dataclasses.fields(ResolvedConfig)] == names
    types = {f.name: f.type for f in dataclasses.fields(ResolvedConfig)}
    assert types["epochs"] == "int" and types["milestones"] == "list[int]"


@pytest.mark.parametrize(
    "given, epochs, milestones, compile_mode",
    [
        ({}, 160, [80, 120], None),
        ({"dataset": "CIFAR-100"}, 300, [150, 225], None),
        ({"epochs": 3, "milestones": [3, 1], "compile": True}, 3, [1, 3], "default"),
        ({"compile_mode": "max-autotune"}, 160, [80, 120], "max-autotune"),
    ],
)
def test_resolve_fills_the_defaults_and_keeps_the_saved_form(given, epochs, milestones, compile_mode):
    cfg = TrainConfig(**given)
    run = cfg.resolve()
    assert (run.epochs, run.milestones, run.compile_mode) == (epochs, milestones, compile_mode)
    assert run.compile == (compile_mode is not None)
    assert run.to_dict() == cfg.to_dict() and run.resolve() is run
    assert run.trained_steps_per_block == cfg.trained_steps_per_block and run.num_classes == cfg.num_classes
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.epochs = 1  # type: ignore[misc]


def test_resolve_validates_what_was_changed_after_construction():
    cfg = TrainConfig()
    cfg.epochs, cfg.milestones = None, None
    assert cfg.resolve().epochs == 160  # a default again, not None
    cfg.lr = -1.0
    with pytest.raises(ValueError, match="lr must be a positive number, got -1.0"):
        cfg.resolve()
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        TrainConfig(epochs=0)


def test_no_module_of_train_asserts_that_epochs_were_filled_in():
    pattern = re.compile(r"assert .*\b(epochs|milestones) is not None")
    for path in TRAIN.glob("*.py"):
        assert not pattern.search(path.read_text()), path.name
