"""NetCDF-4 assemblies: a file written by xarray + netCDF-C reads back exactly; leut's writer round-trips."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import h5py
import numpy as np
import pytest

from leut.data.errors import DataFormatError
from leut.data.netcdf import open_labelled_array, read_values, write_labelled_array

FIXTURE = Path(__file__).parents[1] / "fixtures" / "xarray_assembly.nc"


def _expected():
  spec = importlib.util.spec_from_file_location("record", FIXTURE.with_name("record_xarray_assembly.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.expected()


def test_reads_a_file_written_by_xarray_and_netcdf_c():
  values, coords = _expected()
  arr = open_labelled_array(FIXTURE)
  assert arr.variable == "data" and arr.dims == ("neuroid", "time_bin", "presentation")
  assert arr.attrs["stimulus_set_identifier"] == "test.fixture-public"
  for name, want in coords.items():
    np.testing.assert_array_equal(arr.coords[name].values, want)
  assert arr.coords["region"].dim == "neuroid" and arr.coords["repetition"].dim == "presentation"
  np.testing.assert_array_equal(read_values(arr), values)  # NaN fill included
  got = read_values(arr, {"time_bin": slice(1, 3), "presentation": np.array([0, 2, 5]), "neuroid": np.array([1, 3])})
  np.testing.assert_array_equal(got, values[[1, 3]][:, 1:3][:, :, [0, 2, 5]])


def test_writer_round_trips_in_any_dimension_order(tmp_path):
  rng = np.random.default_rng(0)
  values = rng.normal(size=(3, 5, 2)).astype(np.float32)
  values[0, 1, 1] = np.nan
  coords = {
    "stimulus_id": ("presentation", ["x", "y", "z", "x", "y"]),
    "region": ("neuroid", ["V1", "V2", "V1"]),
    "time_bin_start": ("time_bin", [70, 80]),
  }
  path = write_labelled_array(tmp_path / "a.nc", values, ("neuroid", "presentation", "time_bin"), coords, {"k": "v"})
  arr = open_labelled_array(path)
  assert arr.dims == ("neuroid", "presentation", "time_bin") and arr.attrs["k"] == "v"
  np.testing.assert_array_equal(read_values(arr), values)
  np.testing.assert_array_equal(arr.coord("stimulus_id", "presentation"), coords["stimulus_id"][1])
  with pytest.raises(DataFormatError, match="no coordinate 'animal' along 'neuroid'.*region"):
    arr.coord("animal", "neuroid")


def test_malformed_files_name_the_file_and_the_problem(tmp_path):
  bad = tmp_path / "text.nc"
  bad.write_text("CDF\x01 classic netCDF-3 is not HDF5")
  with pytest.raises(DataFormatError, match="text.nc: not a NetCDF-4"):
    open_labelled_array(bad)
  two = tmp_path / "two.nc"
  with h5py.File(two, "w") as f:
    for name in ("a", "b"):
      f.create_dataset(name, data=np.zeros(3)).attrs["coordinates"] = b"x"
  with pytest.raises(DataFormatError, match="two.nc: cannot tell the data variable"):
    open_labelled_array(two)
  path = write_labelled_array(tmp_path / "c.nc", np.zeros((2, 2)), ("presentation", "neuroid"), {})
  with h5py.File(path, "a") as f:
    f["data"].attrs["coordinates"] = np.bytes_("stimulus_id")
  with pytest.raises(DataFormatError, match="coordinate 'stimulus_id' listed by 'data' is not in the file"):
    open_labelled_array(path)
