"""Trained weights by name: the shipped runs as ``model.tag``, their recorded errors, loading and evaluating them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import contdepth as cd
from contdepth.cli import main
from contdepth.models import registry
from contdepth.pretrained import SHIPPED, evaluate_pretrained, find, shipped_root
from contdepth.pretrained.catalog import tag_of
from contdepth.runs.files import RESULTS, WEIGHTS

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
needs_data = pytest.mark.skipif(
    not (DATA / "cifar-10-batches-py").is_dir(), reason="needs CIFAR-10 in data/cifar-10-batches-py"
)

pytestmark = pytest.mark.usefixtures("one_thread")


def recorded_error(run: str) -> float:
    return float(json.loads((REPO / "results" / run / RESULTS).read_text())["final_test_error"])


# ---------------------------------------------------------------------------------------- names
def test_every_shipped_run_is_listed_with_its_recorded_error():
    names = cd.models.list_models(pretrained=True)
    assert len(names) == len(set(names)) == len(SHIPPED)
    for run in SHIPPED:
        (entry,) = [find(n) for n in names if find(n).run == run]
        assert entry.test_error == recorded_error(run)
        assert entry.test_images == 10000 and entry.folder == shipped_root() / run
    assert "preact_resnet20.cifar10_cpu_s0" in names and "lm_resnet20.cifar10_cpu_s2" in names
    assert "preact_resnet20.cifar10_cpu_bf16_s0" in names and "preact_resnet20.depth_dial_cpu_sd0.8_s0" in names
    assert cd.models.list_models() == cd.models.available()  # without pretrained: every model name


def test_a_plain_name_is_seed_0_of_the_cpu_study():
    for model in ("preact_resnet20", "lm_resnet20", "resnet20"):
        assert find(model).run == f"cifar10-cpu/{model}-s0" and find(model).default
        assert find(model.upper()).name == f"{model}.cifar10_cpu_s0"
    defaults = [r.model for r in cd.pretrained.pretrained_runs() if r.default]
    assert sorted(defaults) == sorted({r.model for r in cd.pretrained.pretrained_runs()})


def test_tags_come_from_the_run_folder():
    assert tag_of("cifar10-cpu/preact_resnet20-s0", "preact_resnet20") == "cifar10_cpu_s0"
    assert tag_of("cifar10-cpu/preact_resnet20-bf16-s0", "preact_resnet20") == "cifar10_cpu_bf16_s0"
    assert tag_of("sde-cpu/shake-s1", "shake_resnet26_2x32d") == "sde_cpu_shake_s1"


def test_every_committed_run_with_weights_is_shipped():
    """A finished run committed under results/ gets a name: add its folder to contdepth/pretrained/shipped.py."""
    committed = sorted(str(p.parent.relative_to(REPO / "results")) for p in (REPO / "results").glob(f"*/*/{WEIGHTS}"))
    assert sorted(SHIPPED) == committed


# ------------------------------------------------------------------------------------- loading
def test_a_net_by_name_holds_exactly_the_weights_of_its_run():
    net = cd.models.get("lm_resnet20.cifar10_cpu_s1", pretrained=True)
    saved = torch.load(REPO / "results/cifar10-cpu/lm_resnet20-s1" / WEIGHTS, weights_only=True)["model"]
    state = net.state_dict()
    assert sorted(state) == sorted(saved) and not net.training
    for key, value in saved.items():
        assert state[key].dtype == (torch.float32 if value.is_floating_point() else value.dtype), key
        assert torch.equal(state[key].to(value.dtype), value), key
    plain = cd.models.get("lm_resnet20", pretrained=True)  # the default: seed 0, other weights
    first = next(k for k, v in saved.items() if v.is_floating_point())
    assert not torch.equal(plain.state_dict()[first], state[first])


def test_a_net_by_name_is_rediscretised_on_request():
    net = cd.models.get("preact_resnet20", pretrained=True, scheme="rk4", steps_per_block=2)
    assert (net.scheme, net.steps_per_block) == ("rk4", 2)
    same = cd.models.get("preact_resnet20.depth_dial_cpu_sd0.8_s0", pretrained=True)
    assert isinstance(same, cd.models.ResidualNet) and same.scheme == "euler"


def test_bad_pretrained_requests_say_what_exists():
    with pytest.raises(ValueError, match="pass pretrained=True"):
        cd.models.get("preact_resnet20.cifar10_cpu_s0")
    with pytest.raises(ValueError, match="no trained weights named 'preact_resnet56'.*preact_resnet20.cifar10_cpu_s0"):
        cd.models.get("preact_resnet56", pretrained=True)
    with pytest.raises(ValueError, match="did you mean 'lm_resnet20.cifar10_cpu_s2'"):
        cd.models.get("lm_resnet20.cifar10_cpu_s3", pretrained=True)
    with pytest.raises(TypeError, match="not 'noise'"):
        cd.models.get("preact_resnet20", pretrained=True, noise="sd:0.5")
    with pytest.raises(ValueError, match="trained for 10 classes"):
        cd.models.get("preact_resnet20", pretrained=True, num_classes=100)
    with pytest.raises(ValueError, match="unknown model"):  # the untrained zoo's error is unchanged
        cd.models.get("resnet21")


def test_register_model_names_a_builder(monkeypatch):
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))

    @registry.register_model(depth=8, family="preact_resnet", scheme="heun")
    def Tiny_ResNet8(**kw):  # noqa: N802 - the name is looked up in lower case
        return cd.models.resnet(8, **kw)

    assert "tiny_resnet8" in cd.models.available()
    assert cd.models.get("tiny_resnet8").scheme == "heun"
    assert cd.models.describe("tiny_resnet8")["depth"] == 8
    with pytest.raises(ValueError, match="already registered"):
        registry.register_model(depth=8, family="x", scheme="euler")(Tiny_ResNet8)


def test_models_command_lists_the_pretrained_nets(capsys):
    assert main(["models", "--pretrained", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["resnet20.cifar10_cpu_s0"]["test_error"] == recorded_error("cifar10-cpu/resnet20-s0")
    assert rows["resnet20.cifar10_cpu_s0"]["default"] and not rows["lm_resnet20.cifar10_cpu_s1"]["default"]
    assert main(["models", "--pretrained"]) == 0
    table = capsys.readouterr().out
    assert "lm_resnet20.cifar10_cpu_s0 *" in table and "14.02" in table


# ----------------------------------------------------------------------------------- with data
@needs_data
def test_a_net_by_name_scores_its_recorded_error_on_a_subset(monkeypatch):
    monkeypatch.chdir(REPO)  # the data set is read from data/ by default
    result = evaluate_pretrained("preact_resnet20", test_subset=1000, device="cpu", amp="none")
    assert result["images"] == 1000 and result["pretrained"] == "preact_resnet20.cifar10_cpu_s0"
    # 1,000 of the 10,000 images: three standard deviations of a 14% error is about 3.3 points (untrained: 90%)
    assert abs(result["test_error"] - result["recorded_test_error"]) < 3.5, result


@needs_data
def test_eval_command_takes_a_pretrained_name(capsys):
    argv = ["eval", "--pretrained", "lm_resnet20.cifar10_cpu_s1", "--data-dir", str(DATA), "--test-subset", "500"]
    assert main([*argv, "--device", "cpu", "--amp", "none", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["pretrained"] == "lm_resnet20.cifar10_cpu_s1" and result["images"] == 500
    assert abs(result["test_error"] - recorded_error("cifar10-cpu/lm_resnet20-s1")) < 5.0, result
    assert main(["eval", "--pretrained", "lm_resnet20.nope", "--data-dir", str(DATA)]) == 2
    assert "no trained weights named" in capsys.readouterr().err


@pytest.mark.slow
@needs_data
@pytest.mark.parametrize("name", ["preact_resnet20", "lm_resnet20"])
def test_a_net_by_name_scores_its_recorded_error_on_the_full_test_set(name):
    result = evaluate_pretrained(name, data_dir=str(DATA), device="cpu", amp="none")
    assert result["images"] == result["recorded_test_images"] == 10000
    assert abs(result["test_error"] - result["recorded_test_error"]) <= 0.1, result  # fp16 weights, float32 run
