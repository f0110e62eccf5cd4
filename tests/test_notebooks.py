"""Execute every notebook in notebooks/ against a tiny workdir (the one tests/report builds, made once per session)."""

import importlib.util
import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = ["01_walk_a_workdir", "02_new_rule", "03_reproduce_figures"]


def _report_fixtures():
  spec = importlib.util.spec_from_file_location("report_workdirs", REPO / "tests" / "report" / "conftest.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.fixture(scope="session")
def kernel_name(tmp_path_factory):
  """A kernelspec for *this* interpreter in a private JUPYTER_PATH (the default 'python3' spec runs whatever
  `python` is first on PATH)."""
  root = tmp_path_factory.mktemp("jupyter")
  spec_dir = root / "kernels" / "leut-test"
  spec_dir.mkdir(parents=True)
  (spec_dir / "kernel.json").write_text(
    json.dumps(
      {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "leut test",
        "language": "python",
      }
    )
  )
  return root, "leut-test"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name, tmp_path_factory, synthetic_dir, kernel_name, monkeypatch, tmp_path):
  if name != "02_new_rule":  # 02 trains on random data and reads no workdir
    monkeypatch.setenv("LEUT_WORKDIR", str(_report_fixtures().tiny_workdir_path(tmp_path_factory, synthetic_dir)))
  jupyter_path, kernel = kernel_name
  monkeypatch.setenv("JUPYTER_PATH", str(jupyter_path))
  monkeypatch.setenv("LEUT_FIGURES_OUT", str(tmp_path / "figures"))
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")
  book = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
  NotebookClient(book, timeout=300, kernel_name=kernel, resources={"metadata": {"path": str(REPO)}}).execute()
  errors = [o for c in book.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
  assert not errors
  if name == "03_reproduce_figures":
    assert (tmp_path / "figures" / "alignment.png").exists() and (tmp_path / "figures" / "alignment.pdf").exists()
