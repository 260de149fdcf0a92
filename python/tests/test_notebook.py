"""The homework notebook (examples/homework.ipynb) runs top to bottom on a subset, as CI
executes it: any error in a cell fails the test. Needs nbclient, ipykernel and matplotlib
(CI installs them); MNIST from ../shared/data/mnist where present, else the built-in shapes."""

import os

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("matplotlib")
pytest.importorskip("ipykernel")
pytest.importorskip("sklearn")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_homework_notebook_runs_and_draws_its_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("AEKIT_HOMEWORK_QUICK", "1")
    mnist = os.path.join(ROOT, "..", "shared", "data", "mnist")
    if os.path.isdir(mnist):
        monkeypatch.setenv("AEKIT_MNIST", mnist)
    nb = nbformat.read(os.path.join(ROOT, "examples", "homework.ipynb"), as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 4, f"{len(images)} figures drawn"
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "test accuracy" in text and "sigmoid code" in text
