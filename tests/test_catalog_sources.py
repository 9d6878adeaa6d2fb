"""The studies' paper numbers: each with the table it comes from, shown by `contdepth reproduce --list`."""

from __future__ import annotations

import pytest

from contdepth.cli.reproduce import _list
from contdepth.models.noise_spec import parse_noise
from contdepth.studies.catalog import STUDIES, basic_blocks, get_study, matching_gaussian_level


def test_every_paper_number_names_its_table_and_every_source_its_number():
    for study in STUDIES.values():
        for row in study.rows:
            if row.paper_error is None:
                assert not row.paper_source, (study.name, row.name)
            else:
                assert row.paper_source.startswith("Lu et al. 2018, Table "), (study.name, row.name)


@pytest.mark.parametrize(
    ("study", "row", "error", "table"),
    [
        ("lu2018-cifar10", "resnet110", 6.61, "Table 2"),
        ("lu2018-cifar10", "resnet32", 7.51, "Table 1"),
        ("lu2018-cifar10", "preact_resnet110", 6.37, "Table 1"),
        ("lu2018-stochastic", "preact_resnet56-sd0.8", 5.55, "Table 2"),
        ("lu2018-stochastic", "lm_resnet56-sd0.8", 5.14, "Table 2"),
    ],
)
def test_rows_carry_the_papers_number_and_table(study, row, error, table):
    spec = get_study(study).row(row)
    assert spec.paper_error == error
    assert f"2018, {table}" in spec.paper_source


def test_the_gaussian_row_of_resnet110_injects_noise_of_stochastic_depths_size():
    """The paper's 0.001 as a relative level is close to no noise; the row matches sd:0.5 in total variance."""
    rows = get_study("lu2018-stochastic").rows
    row = next(r for r in rows if r.model == "resnet110" and "gaussian" in (r.noise or ""))
    level = parse_noise(row.noise).level
    assert level == pytest.approx(matching_gaussian_level(basic_blocks(110), 0.5), rel=1e-2)
    assert level > 0.1 and row.paper_error == 5.52
    assert "0.001" in row.paper_source and "without defining it" in row.note
    assert not any(r.model == "resnet56" and r.noise for r in rows)


def test_list_prints_each_paper_number_with_its_source(capsys):
    _list()
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("preact_resnet56-sd0.8"))
    assert "5.55% (Lu et al. 2018, Table 2;" in line
    assert "8.33% (Lu et al. 2018, Table 1)" in out
