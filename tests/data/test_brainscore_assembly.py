"""Brain-Score assemblies (synthetic MajajHong2015 and FreemanZiemba2013 in the real layout) against independent
h5py + pandas computations, the simulated ground truth, and the documented errors."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from leut.data import brainscore_assembly, synthetic_macaque
from leut.data.brainscore_assembly import load_brainscore_assembly
from leut.data.brainscore_stimuli import read_stimulus_set
from leut.data.errors import DataFormatError, MissingDatasetError
from leut.data.simulated_brain import ground_truth_rdms

MH_NC = "assy_dicarlo_MajajHong2015_public.nc"
FZ_NC = "assy_movshon_FreemanZiemba2013_public.nc"


@pytest.fixture(scope="module")
def majaj(tmp_path_factory):
  return synthetic_macaque.write_majajhong2015(tmp_path_factory.mktemp("mh"), n_objects=20, images_per_object=6)


@pytest.fixture(scope="module")
def freeman(tmp_path_factory):
  return synthetic_macaque.write_freemanziemba2013(tmp_path_factory.mktemp("fz"), cells=40)


def _raw(path, variable):
  """The file read with h5py alone: values and a coordinate lookup."""
  with h5py.File(path, "r") as f:
    values = f[variable][()]
    dims = [f[variable].dims[i][0].name.strip("/") for i in range(values.ndim)]
    coords = {k: f[k][()] for k in f if k not in dims and k != variable}
  text = {k: np.array([x.decode() if isinstance(x, bytes) else x for x in v]) for k, v in coords.items()}
  return values, dims, text


def test_majajhong_averages_repetitions_by_stimulus_like_pandas(majaj):
  data = load_brainscore_assembly(majaj, "majajhong2015")
  values, dims, c = _raw(majaj / MH_NC, "data")
  assert dims == ["presentation", "neuroid", "time_bin"]
  long = pd.DataFrame(values[:, :, 0].astype(np.float64), columns=c["neuroid_id"])
  want = long.groupby(c["stimulus_id"]).mean()  # pandas skips NaN
  np.testing.assert_allclose(
    data.responses_SxN, want.loc[list(data.stimuli), data.neuroids.neuroid_id], rtol=1e-6, atol=1e-6
  )
  assert np.isnan(values).any() and not np.isnan(data.responses_SxN).any()
  assert data.rois == ("V4", "IT") and data.subjects == ("Chabo", "Tito")
  assert list(data.neuroids.roi) == ["V4"] * 48 + ["IT"] * 80  # grouped by region, then animal
  table = read_stimulus_set(majaj, "dicarlo.hvm-public").table
  assert list(data.stimuli) == list(table.stimulus_id)  # the stimulus set's order
  assert data.concepts == tuple(table.object_name)
  assert data.load_images_01(data.stimuli[:2], 32).shape == (2, 32, 32, 3)


def test_freemanziemba_averages_the_50_to_200_ms_bins_then_the_repetitions(freeman):
  data = load_brainscore_assembly(freeman, "freemanziemba2013")
  values, dims, c = _raw(freeman / FZ_NC, "__xarray_dataarray_variable__")
  assert dims == ["neuroid", "time_bin", "presentation"]
  window = (c["time_bin_start"] >= 50) & (c["time_bin_end"] <= 200)
  assert window.sum() == 150
  per_trial = values[:, window, :].mean(axis=1).T  # presentation x neuroid
  want = pd.DataFrame(per_trial).groupby(c["image_id"]).mean()
  np.testing.assert_allclose(data.responses_SxN, want.loc[list(data.stimuli)].to_numpy(), rtol=1e-5)
  assert data.subjects == ("pooled",) and data.rois == ("V1", "V2")
  assert set(data.concepts) <= {"327", "336", "393", "402"}


def _rho(a, b):
  iu = np.triu_indices(a.shape[0], 1)
  return spearmanr(a[iu], b[iu])[0]


def test_majajhong_recovers_the_simulated_areas(majaj):
  brain = load_brainscore_assembly(majaj, "majajhong2015").to_brain_data(min_reliability=0.2)
  truth = ground_truth_rdms(majaj, brain.stimuli, ("V1", "V4", "IT"))
  for sub in brain.subjects:
    v4, it = brain.rdm("V4", sub), brain.rdm("IT", sub)
    assert _rho(it, truth["IT"]) > _rho(it, truth["V1"]) + 0.3
    assert _rho(v4, truth["V4"]) > _rho(v4, truth["IT"]) + 0.2
    assert _rho(it, truth["IT"]) > _rho(v4, truth["IT"]) + 0.2


def test_freemanziemba_window_carries_the_signal(freeman, monkeypatch):
  data = load_brainscore_assembly(freeman, "freemanziemba2013")
  truth = ground_truth_rdms(freeman, data.stimuli, ("V1",))["V1"]
  right = _rho(data.to_brain_data().rdm("V1", "pooled"), truth)
  late = brainscore_assembly.ASSEMBLIES["freemanziemba2013"]._replace(time_window_ms=(200, 300))
  monkeypatch.setitem(brainscore_assembly.ASSEMBLIES, "freemanziemba2013", late)
  wrong = _rho(load_brainscore_assembly(freeman, "freemanziemba2013").to_brain_data().rdm("V1", "pooled"), truth)
  assert right > 0.4 and right > wrong + 0.3
  assert data.neuroids.reliability.median() > 0.5


def test_errors_name_the_file_and_the_problem(majaj, tmp_path):
  with pytest.raises(MissingDatasetError, match="assy_dicarlo_MajajHong2015_public.nc"):
    load_brainscore_assembly(tmp_path, "majajhong2015")
  with pytest.raises(DataFormatError, match=r"MajajHong2015_public.nc: no neuroids of region\(s\) \['V1'\]"):
    load_brainscore_assembly(majaj, "majajhong2015", regions=("V1",))
  broken = tmp_path / "broken"
  shutil.copytree(majaj, broken)
  csv = broken / "image_dicarlo_hvm-public.csv"
  pd.read_csv(csv).iloc[1:].to_csv(csv, index=False)
  with pytest.raises(DataFormatError, match="1 stimulus ids not in image_dicarlo_hvm-public.csv"):
    load_brainscore_assembly(broken, "majajhong2015")
  (broken / "image_dicarlo_hvm-public.csv").unlink()
  with pytest.raises(MissingDatasetError, match="stimulus set 'dicarlo.hvm-public' not found"):
    load_brainscore_assembly(broken, "majajhong2015")
