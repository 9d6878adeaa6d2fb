"""One noise vocabulary: a spelling names the same law in the noise laws, the model specs and the toy."""

from __future__ import annotations

import pytest

import contdepth as cd
from contdepth.models.noise_spec import KIND_OF_LAW, parse_noise
from contdepth.noise import get_law, law_class
from contdepth.noise_names import LAW_ALIASES, NO_NOISE, is_no_noise, law_name, law_names
from contdepth.toy.model import VARIANT_OF_LAW, ModelConfig

SPELLINGS = [(law, spelling) for law, aliases in LAW_ALIASES.items() for spelling in (law, *aliases)]


def test_no_spelling_names_two_laws():
    spellings = [s for _, s in SPELLINGS]
    assert len(spellings) == len(set(spellings)) and not set(spellings) & set(NO_NOISE)
    assert law_names() == sorted(spellings) == cd.noise.available_laws()


@pytest.mark.parametrize("law, spelling", SPELLINGS)
def test_a_spelling_names_one_law_everywhere(law, spelling):
    assert law_name(spelling) == law_name(f" {spelling.upper()} ") == law
    options = {"p": 0.3} if law == "bernoulli" else {}
    assert type(get_law(spelling, **options)) is law_class(law)
    assert type(cd.Noise(spelling, **options).law) is law_class(law)
    # the model zoo: a spec kind per law it offers (sd, gaussian, shake), the others refused
    spec = {"bernoulli": f"{spelling}:0.5", "gaussian": f"{spelling}:0.1"}.get(law, spelling)
    if law in KIND_OF_LAW:
        parsed = parse_noise(spec)
        assert parsed.kind == KIND_OF_LAW[law]
        assert type(parsed.law([1, 2], 4)) is law_class(law)  # the spec draws from the law it is named by
    else:
        with pytest.raises(ValueError, match="unknown noise spec"):
            parse_noise(spec)
    # the toy: a variant per law it offers (gaussian, stochastic_depth), the others refused
    if law in VARIANT_OF_LAW:
        assert ModelConfig(noise=spelling).noise == VARIANT_OF_LAW[law]
    else:
        with pytest.raises(ValueError, match="unknown noise.*none, gaussian, stochastic_depth, dropout"):
            ModelConfig(noise=spelling)


@pytest.mark.parametrize("spelling", [*NO_NOISE, "", " OFF "])
def test_no_noise_is_spelled_alike(spelling):
    assert is_no_noise(spelling) and law_name(spelling) is None
    assert parse_noise(spelling) is None
    assert ModelConfig(noise=spelling).noise == "none"


def test_unknown_names_are_refused_everywhere():
    assert law_name("cauchy") is None and law_name(3) is None and not is_no_noise(None)
    with pytest.raises(ValueError, match="unknown noise law 'cauchy'; available: bernoulli, gauss, gaussian"):
        get_law("cauchy")
    with pytest.raises(ValueError, match="unknown noise spec 'cauchy:1'"):
        parse_noise("cauchy:1")
    with pytest.raises(ValueError, match="unknown noise 'cauchy'"):
        ModelConfig(noise="cauchy")
