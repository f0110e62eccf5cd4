"""MATLAB files: v7.3 (HDF5) written as MATLAB lays it out, and read back in MATLAB's shapes; v5 through scipy."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.io

from leut.data.errors import DataFormatError
from leut.data.matlab_files import is_v73, read_mat, write_mat_v73


def test_v73_layout_and_round_trip(tmp_path):
  a = np.arange(6.0).reshape(2, 3)
  path = write_mat_v73(tmp_path / "x.mat", {"a": a, "s": {"things_path": ["dog\\dog_01b.jpg", "cat\\cat_02b.jpg"]}})
  assert is_v73(path) and open(path, "rb").read(19) == b"MATLAB 7.3 MAT-file"
  with pytest.raises(NotImplementedError, match="v7.3"):  # scipy recognises the header and refers to HDF5
    scipy.io.loadmat(path)
  with h5py.File(path, "r") as f:
    assert f["a"].shape == (3, 2) and f["a"].attrs["MATLAB_class"] == b"double"  # column-major: reversed shape
    assert f["s"].attrs["MATLAB_class"] == b"struct" and f["s/things_path"].shape == (2, 1)
    first = f[f["s/things_path"][0, 0]]
    assert first.dtype == np.uint16 and first.attrs["MATLAB_class"] == b"char"
  got = read_mat(path, ["a", "s"])
  np.testing.assert_array_equal(got["a"], a)
  assert list(got["s"]["things_path"].ravel()) == ["dog\\dog_01b.jpg", "cat\\cat_02b.jpg"]


def test_reads_v5_files_written_by_scipy(tmp_path):
  path = tmp_path / "old.mat"
  cells = np.array(["x_01b.jpg", "y_02b.jpg"], dtype=object)
  scipy.io.savemat(path, {"m": np.arange(6.0).reshape(3, 2), "s": {"class": cells}})
  assert not is_v73(path)
  got = read_mat(path, ["m", "s"])
  np.testing.assert_array_equal(got["m"], np.arange(6.0).reshape(3, 2))
  assert list(got["s"]["class"]) == ["x_01b.jpg", "y_02b.jpg"]


def test_missing_variable_and_truncated_file_name_the_file(tmp_path):
  path = write_mat_v73(tmp_path / "x.mat", {"a": np.zeros(2)})
  with pytest.raises(DataFormatError, match=r"x.mat: no variable\(s\) \['b'\]; variables: \['a'\]"):
    read_mat(path, ["b"])
  cut = tmp_path / "cut.mat"
  cut.write_bytes(path.read_bytes()[:600])
  with pytest.raises(DataFormatError, match="cut.mat"):
    read_mat(cut, ["a"])
