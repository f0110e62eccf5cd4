"""Row-selective reads of the response HDF5 for contiguous and chunked/compressed storage."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from leut.data import DataFormatError
from leut.data.response_h5 import read_trial_labels, read_voxel_rows, response_info, write_response_h5


@pytest.mark.parametrize("storage", [dict(), dict(chunks=(16, 8), compression="gzip"), dict(dtype=np.float64)])
def test_selected_rows_equal_numpy_indexing(tmp_path, storage):
  rng = np.random.default_rng(0)
  betas = rng.normal(size=(100, 30))
  path = tmp_path / "r.h5"
  write_response_h5(path, np.arange(100) + 10, range(30), [betas[:37], betas[37:]], **storage)
  rows = np.array([0, 1, 2, 15, 16, 17, 40, 63, 64, 99])
  got = read_voxel_rows(path, rows)
  assert got.shape == (30, 10) and got.dtype == np.float32
  np.testing.assert_array_equal(got, betas[rows].T.astype(np.float32))
  info = response_info(path)
  assert (info.n_voxels, info.n_trials) == (100, 30) and info.voxel_ids[3] == 13
  assert read_trial_labels(path) == list(range(30))
  assert read_voxel_rows(path, []).shape == (30, 0)


def test_not_an_hdf5_file(tmp_path):
  path = tmp_path / "sub-01_ResponseData.h5"
  path.write_bytes(b"\x89HDF\r\n" + b"\x00" * 10)
  with pytest.raises(DataFormatError, match=r"sub-01_ResponseData\.h5: not a readable HDF5"):
    response_info(path)
  with h5py.File(tmp_path / "x.h5", "w") as f:
    f["other"] = np.zeros(3)
  with pytest.raises(DataFormatError, match=r"x\.h5: no 'ResponseData' group.*other"):
    response_info(tmp_path / "x.h5")


def test_truncated_file_is_a_format_error(tmp_path):
  path = tmp_path / "sub-01_ResponseData.h5"
  write_response_h5(path, np.arange(400), range(300), [np.ones((400, 300), np.float32)])
  data = path.read_bytes()
  path.write_bytes(data[: len(data) // 2])
  with pytest.raises(DataFormatError, match=r"sub-01_ResponseData\.h5: .*truncated"):
    response_info(path)
  with pytest.raises(DataFormatError, match=r"sub-01_ResponseData\.h5: .*truncated"):
    read_voxel_rows(path, [1, 399])
