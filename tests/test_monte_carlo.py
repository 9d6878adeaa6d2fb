"""Monte Carlo evaluation of noisy nets: the mean field is the deterministic forward, draws reproduce
under a seed, and `contdepth eval --samples` reports the ensemble."""

import pytest
import torch

import contdepth as cd
from contdepth.models import monte_carlo, noise_at_eval

pytestmark = pytest.mark.usefixtures("one_thread")


def _batches(n: int = 2):
    torch.manual_seed(5)
    return [(torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))) for _ in range(n)]


@pytest.mark.parametrize("noise", ["sd:0.5", "gaussian:0.5"])
def test_mean_field_is_the_deterministic_forward_and_draws_reproduce(noise):
    torch.manual_seed(0)
    net = cd.models.resnet(14, noise=noise).eval()
    batches = _batches()
    with torch.no_grad():
        deterministic = [net(x).argmax(1) == y for x, y in batches]
    expected = float(torch.cat(deterministic).float().mean())
    a = monte_carlo(net, batches, 4, seed=3)
    b = monte_carlo(net, batches, 4, seed=3)
    assert a == b  # the same seed: the same ensemble
    assert a["mean_field_acc"] == pytest.approx(expected)
    assert a["images"] == 16 and a["samples"] == 4
    assert 0 <= a["predictive_entropy"] <= torch.log(torch.tensor(10.0)).item() + 1e-6
    assert a["expected_entropy"] <= a["predictive_entropy"] + 1e-6  # Jensen: the mixture is at least as uncertain
    with torch.no_grad(), noise_at_eval(net):
        torch.manual_seed(1)
        one = net(batches[0][0])
        torch.manual_seed(2)
        two = net(batches[0][0])
    assert not torch.equal(one, two)  # the noise is on inside the block ...
    with torch.no_grad():
        assert torch.equal(net(batches[0][0]), net(batches[0][0]))  # ... and off after it


def test_monte_carlo_keeps_the_global_random_stream_and_refines():
    torch.manual_seed(0)
    net = cd.models.resnet(14, noise="sd:0.5").rediscretise(steps_per_block=2)
    batches = _batches(1)
    torch.manual_seed(9)
    before = torch.rand(3)
    torch.manual_seed(9)
    monte_carlo(net, batches, 2)
    assert torch.equal(torch.rand(3), before)


def test_bad_samples_and_noiseless_nets_are_refused():
    net = cd.models.resnet(14)
    with pytest.raises(ValueError, match="injects no noise"):
        monte_carlo(net, _batches(1), 2)
    noisy = cd.models.resnet(14, noise="sd:0.5")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="samples must be"):
            monte_carlo(noisy, _batches(1), bad)
