"""The trained nets the package ships by name (``contdepth.pretrained``), with the test error each run recorded."""

from __future__ import annotations

from contdepth.pretrained.catalog import tag_of
from contdepth.pretrained.shipped import SHIPPED

from ..data import Results, source
from ..fmt import num, table
from ..registry import block

CONFIGS, RESULTS = "results/*/*/config.json", "results/*/*/results.json"


@block("pretrained", CONFIGS, RESULTS)
def pretrained(results: Results) -> str:
    rows: list[tuple[str, list[object]]] = []
    for run in SHIPPED:
        model = results.json(f"results/{run}/config.json")["model"]
        res = results.json(f"results/{run}/results.json")
        default = model not in {m for m, _ in rows}
        name = f"`{model}.{tag_of(run, model)}`" + (" (`" + model + "`)" if default else "")
        rows.append((model, [name, num(res["final_test_error"]), res["test_images"], f"`results/{run}`"]))
    order = list(dict.fromkeys(m for m, _ in rows))
    ordered = [cells for _, cells in sorted(rows, key=lambda r: order.index(r[0]))]
    return (
        table(["name (default of)", "test error %", "test images", "run"], ordered)
        + "\n\n"
        + source(RESULTS, "`final_test_error`, `test_images`; the names: `contdepth/pretrained/shipped.py`")
    )
