# Both notebooks run from top to bottom on Debian's Python (nbclient), against the module in the
# build tree, and draw their figures.
import os
import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import BUILD, SOURCE

NOTEBOOKS = SOURCE / "notebooks"


@pytest.mark.parametrize("name, figures", [
    ("study.ipynb", ["study_p99.png"]),
    ("what_if.ipynb", ["what_if_heatmap.png", "what_if_montecarlo.png"]),
])
def test_the_notebook_runs_and_draws_its_figures(tmp_path, monkeypatch, name, figures):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    # stored without outputs: what the repository holds is the recipe, not a stale result
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    monkeypatch.setenv("PYTHONPATH", str(BUILD / "bindings"))
    monkeypatch.setenv("HEADROOM_NOTEBOOKS", str(NOTEBOOKS))
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    for f in figures:
        png = tmp_path / f
        assert png.exists() and png.stat().st_size > 5000, f"{f} was not drawn"
    shown = sum(1 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                if "image/png" in o.get("data", {}))
    assert shown == len(figures)
