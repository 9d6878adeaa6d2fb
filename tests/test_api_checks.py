"""Bad arguments fail at once with one clear error: odeint/sdeint, field and model constructors, data files."""

import pickle

import numpy as np
import pytest
import torch
from torch import nn

import contdepth as cd
from contdepth import models
from contdepth.data import DataError, load_cifar, write_fake_cifar
from contdepth.models.cifar import resnet, resnext, shake_resnet
from contdepth.models.imagenet import imagenet_resnet


@pytest.fixture
def field():
    torch.manual_seed(0)
    return cd.Blocks([nn.Linear(3, 3) for _ in range(2)])


@pytest.fixture
def noisy_field():
    torch.manual_seed(0)
    return cd.Blocks([nn.Linear(3, 3) for _ in range(2)], diffusion_scale=[0.1, 0.1])


U0 = torch.randn(4, 3)
NAN, INF = float("nan"), float("inf")


# -------------------------------------------------------------------------- odeint / sdeint
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"t1": INF}, "finite"),
        ({"t1": NAN}, "finite"),
        ({"t0": -INF}, "finite"),
        ({"t1": "2"}, "t1 must be a number"),
        ({"times": [0.0, NAN, 2.0]}, "finite"),
        ({"times": [0.0, INF]}, "finite"),
        ({"times": [1.0, 0.5]}, "strictly increasing"),
        ({"times": [0.5, 0.5]}, "strictly increasing"),
        ({"times": []}, "empty"),
        ({"times": ["a"]}, "sequence of numbers"),
        ({"rtol": -1e-3}, "rtol must be a positive finite"),
        ({"rtol": NAN}, "rtol must be a positive finite"),
        ({"atol": 0.0}, "atol must be a positive finite"),
        ({"atol": INF}, "atol must be a positive finite"),
        ({"method": "rk4", "step_size": NAN}, "step_size must be a positive finite"),
        ({"method": "rk4", "step_size": -0.1}, "step_size must be a positive finite"),
        ({"method": "rk4", "step_size": 1e-300}, "choose a larger step_size"),
    ],
)
def test_odeint_refuses_bad_times_and_tolerances(field, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        cd.odeint(field, U0, **kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"dt": NAN}, "dt must be a positive finite"),
        ({"dt": 0.0}, "dt must be a positive finite"),
        ({"dt": -1.0}, "dt must be a positive finite"),
        ({"dt": INF}, "dt must be a positive finite"),
        ({"dt": 1e-300}, "choose a larger dt"),
        ({"t1": INF}, "finite"),
        ({"times": [0.0, NAN]}, "finite"),
    ],
)
def test_sdeint_refuses_bad_steps_and_times(noisy_field, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        cd.sdeint(noisy_field, U0, **kwargs)


@pytest.mark.parametrize("solve", ["odeint", "sdeint"])
@pytest.mark.parametrize(
    "u0, error, match",
    [
        (torch.ones(4, 3, dtype=torch.int64), TypeError, "floating point"),
        ([[1.0, 2.0, 3.0]], TypeError, "must be a tensor"),
        (torch.tensor(1.0), ValueError, "batch dimension"),
    ],
)
def test_states_must_be_floating_point_tensors_with_a_batch(field, noisy_field, solve, u0, error, match):
    with pytest.raises(error, match=match):
        if solve == "odeint":
            cd.odeint(field, u0)
        else:
            cd.sdeint(noisy_field, u0, dt=0.1)


def test_an_empty_batch_gives_an_empty_result(field, noisy_field):
    empty = torch.empty(0, 3)
    assert cd.odeint(field, empty).shape == (0, 3)
    out, stats = cd.odeint(field, empty, times=[0.0, 1.0, 2.0], return_stats=True)
    assert out.shape == (3, 0, 3) and stats["nfe"] == 0
    assert cd.sdeint(noisy_field, empty, dt=0.1).shape == (0, 3)
    assert cd.sdeint(noisy_field, empty, dt=0.1, times=[0.0, 2.0]).shape == (2, 0, 3)
    with pytest.raises(ValueError, match="strictly increasing"):  # an empty batch is still checked
        cd.odeint(field, empty, times=[1.0, 0.0])


def test_tolerances_too_tight_give_a_clear_error(field):
    with pytest.raises(RuntimeError, match="too tight"):
        cd.odeint(field, U0, rtol=1e-300, atol=1e-300)


def test_valid_calls_still_work(field, noisy_field):
    ref = cd.odeint(field, U0, rtol=1e-6, atol=1e-8)
    traj = cd.odeint(field, U0, times=np.array([0.0, 1.0, 2.0]), rtol=1e-6, atol=1e-8, t1=np.float32(2.0))
    assert torch.allclose(traj[-1], ref, atol=1e-5) and traj.shape == (3, 4, 3)
    assert torch.isfinite(cd.sdeint(noisy_field, U0, dt=0.25)).all()


# ------------------------------------------------------------------------------- fields
@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda: cd.Blocks([nn.Identity()], diffusion=3.0), TypeError, "diffusion must be callable"),
        (lambda: cd.Blocks([nn.Identity()], diffusion="sqrt"), TypeError, "diffusion must be callable"),
        (lambda: cd.Blocks([nn.Identity()], drift_scale="abc"), TypeError, "drift_scale must be a number"),
        (lambda: cd.Blocks([nn.Identity()], diffusion_scale=[NAN]), ValueError, "finite"),
        (lambda: cd.Blocks([nn.Identity()] * 2, drift_scale=[1.0, 2.0, 3.0]), ValueError, "2 blocks"),
        (lambda: cd.Blocks(nn.Linear(2, 2)), TypeError, "list of modules"),
        (lambda: cd.Blocks(3), TypeError, "list of modules"),
        (lambda: cd.Blocks([]), ValueError, "at least one"),
        (lambda: cd.Blocks([nn.Identity(), 3]), TypeError, "entry 1"),
    ],
)
def test_field_constructors_refuse_bad_arguments(build, error, match):
    with pytest.raises(error, match=match):
        build()


# ------------------------------------------------------------------------------- models
@pytest.mark.parametrize("value", [0, -1, 2.5, True, "10"])
@pytest.mark.parametrize(
    "builder",
    [
        lambda n: resnet(20, num_classes=n),
        lambda n: shake_resnet(26, 32, num_classes=n),
        lambda n: resnext(29, 8, 64, num_classes=n),
        lambda n: imagenet_resnet(50, num_classes=n),
        lambda n: models.get("lm_resnet20", num_classes=n),
        lambda n: models.get("lm_resnet50", num_classes=n),
    ],
)
def test_every_model_builder_refuses_num_classes_below_one(builder, value):
    with pytest.raises(ValueError, match="num_classes must be an integer >= 1"):
        with torch.device("meta"):  # the check comes before any weight is made
            builder(value)


@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda: resnet("20"), ValueError, "depth must be an integer"),
        (lambda: resnet(20.0), ValueError, "depth must be an integer"),
        (lambda: shake_resnet(26, 0), ValueError, "width must be an integer"),
        (lambda: resnext(29, 0, 64), ValueError, "cardinality must be an integer"),
        (lambda: resnext(29, 8, -4), ValueError, "base_width must be an integer"),
        (lambda: resnet(20, preact="no"), TypeError, "preact must be True or False"),
        (lambda: resnet(20, checkpoint="yes"), TypeError, "checkpoint must be True or False"),
        (lambda: resnet(20, scheme_options=[1]), TypeError, "scheme_options must be a dict"),
        (lambda: imagenet_resnet(34), ValueError, "one of \\[50, 101, 152\\]"),
    ],
)
def test_model_builders_refuse_bad_sizes_and_flags(build, error, match):
    with pytest.raises(error, match=match):
        with torch.device("meta"):
            build()


@pytest.mark.parametrize("name", ["resnet20", "shake_resnet26_2x32d", "resnet50"])
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"depht": 3}, r"get\('.*'\): unknown option 'depht' \(options: num_classes, scheme"),
        ({"checkpiont": True}, "did you mean 'checkpoint'"),
        ({"preact": True}, "unknown option 'preact'"),  # fixed by the name: preact_resnet20 is another model
    ],
)
def test_named_models_refuse_unknown_options_naming_the_valid_ones(name, kwargs, match):
    with pytest.raises(TypeError, match=match):
        cd.models.get(name, **kwargs)


# --------------------------------------------------------------------------- data files
def _rewrite(path, change):
    with open(path, "rb") as fh:
        obj = pickle.load(fh, encoding="latin1")
    change(obj)
    with open(path, "wb") as fh:
        pickle.dump(obj, fh)


@pytest.mark.parametrize(
    "file, change, match",
    [
        ("data_batch_2", lambda o: o.update(data=o["data"][:-1]), "truncated or corrupt"),  # an image short
        ("data_batch_2", lambda o: o.update(data=o["data"][:, :-5]), "truncated or corrupt"),  # short rows
        ("data_batch_2", lambda o: o.update(data=o["data"].astype(np.float32)), "float32"),
        ("data_batch_2", lambda o: o.update(data="garbage"), "truncated or corrupt"),
        ("test_batch", lambda o: o.update(labels=[1.5] * len(o["labels"])), "integer label"),
        ("test_batch", lambda o: o.update(labels=["cat"] * len(o["labels"])), "integer label"),
        ("test_batch", lambda o: o.update(labels=[[1, 2]] * len(o["labels"])), "integer label"),
        ("test_batch", lambda o: o.update(labels=[1, [2]] + o["labels"][2:]), "not an array|integer label"),
        ("test_batch", lambda o: o.update(labels=[10] * len(o["labels"])), "labels outside 0..9"),
        ("test_batch", lambda o: o.update(labels=[-1] * len(o["labels"])), "labels outside 0..9"),
        ("test_batch", lambda o: o.update(filenames=o["filenames"][:-3]), "filenames"),
        ("test_batch", lambda o: o.update(data=o["data"][:0], labels=[], filenames=[]), "no images"),
        ("batches.meta", lambda o: o.update(label_names=list(range(10))), "class names"),
    ],
)
def test_damaged_data_files_are_named(tmp_path, file, change, match):
    folder = write_fake_cifar(tmp_path, "cifar10", train=50, test=10)
    _rewrite(folder / file, change)
    with pytest.raises(DataError, match=match) as err:
        load_cifar("cifar10", tmp_path)
    assert file in str(err.value)


def test_an_empty_data_file_is_named(tmp_path):
    folder = write_fake_cifar(tmp_path, "cifar100", train=20, test=10)
    (folder / "train").write_bytes(b"")
    with pytest.raises(DataError, match="truncated or corrupt") as err:
        load_cifar("cifar100", tmp_path)
    assert "cifar-100-python/train" in str(err.value)
