"""A 50,000-voxel x 2,000-trial response file: loading three small ROIs reads only their rows.

Peak memory is measured in a fresh subprocess by sampling the resident set size
(/proc/self/statm) every millisecond, which covers HDF5's C allocations that
tracemalloc would miss; reading the whole matrix is the positive control.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pandas as pd
import pytest

from leut.data.response_h5 import write_response_h5

N_VOX, N_TRIALS, BLOCK = 50_000, 2_000, 2_500


def _write_large_release(folder):
  folder.mkdir()
  rng = np.random.default_rng(0)
  roi = np.zeros(N_VOX, int)
  roi[rng.choice(N_VOX, 300, replace=False)] = np.repeat([1, 2, 3], 100)
  vox = pd.DataFrame(
    {"voxel_id": np.arange(N_VOX), "V1": (roi == 1) * 1, "V2": (roi == 2) * 1, "IT": (roi == 3) * 1, "lFFA": 0}
  )
  vox.to_csv(folder / "sub-01_VoxelMetadata.csv", index=False)
  stim = pd.DataFrame(
    {
      "trial_type": "train",
      "session": 1,
      "run": np.arange(N_TRIALS) % 10 + 1,
      "subject_id": 1,
      "trial_id": np.arange(N_TRIALS),
      "stimulus": [f"c{t % 500:03d}_{t // 500 + 1:02d}s.jpg" for t in range(N_TRIALS)],
      "concept": [f"c{t % 500:03d}" for t in range(N_TRIALS)],
    }
  )
  stim.to_csv(folder / "sub-01_StimulusMetadata.csv", index=False)
  blocks = (
    np.random.default_rng(lo).standard_normal((BLOCK, N_TRIALS), dtype=np.float32) for lo in range(0, N_VOX, BLOCK)
  )
  write_response_h5(folder / "sub-01_ResponseData.h5", vox["voxel_id"], range(N_TRIALS), blocks)
  return vox


@pytest.fixture
def large_release(tmp_path):
  vox = _write_large_release(tmp_path / "betas_csv")
  yield tmp_path, vox
  (tmp_path / "betas_csv" / "sub-01_ResponseData.h5").unlink()  # keep no 400 MB in pytest's temp dirs


def test_loading_small_rois_reads_only_their_rows(large_release):
  tmp_path, vox = large_release
  h5 = tmp_path / "betas_csv" / "sub-01_ResponseData.h5"
  file_mb = h5.stat().st_size / 2**20
  assert file_mb > 380
  script = textwrap.dedent(f"""
      import json, os, threading, time
      import h5py
      from leut.data import load_brain_rdms
      page = os.sysconf("SC_PAGE_SIZE")
      def rss():
        with open("/proc/self/statm") as f:
          return int(f.read().split()[1]) * page / 2**20
      def peak_during(fn):
        # RSS sampled every millisecond by a thread, relative to the RSS just before the call
        base, peak, done = rss(), [0.0], threading.Event()
        def sample():
          while not done.is_set():
            peak[0] = max(peak[0], rss()); time.sleep(0.001)
        t = threading.Thread(target=sample); t.start()
        try:
          out = fn()
        finally:
          done.set(); t.join()
        return out, max(peak[0], rss()) - base
      first_mb = peak_during(lambda: load_brain_rdms({str(tmp_path)!r}, rois=("V1", "V2", "IT"),
                                                     progress=False))[1]  # includes lazy imports
      brain, roi_mb = peak_during(lambda: load_brain_rdms({str(tmp_path)!r}, rois=("V1", "V2", "IT"),
                                                          progress=False))
      def read_all():  # positive control: the whole matrix
        with h5py.File({str(h5)!r}, "r") as f:
          return f["ResponseData/block0_values"][:]
      full, full_mb = peak_during(read_all)
      print(json.dumps(dict(first_mb=first_mb, roi_mb=roi_mb, full_mb=full_mb, shape=brain.rdms_RxJxSxS.shape,
                            first=brain.stimuli[0], rdm01=float(brain.rdms_RxJxSxS[0, 0, 0, 1]))))
  """)
  res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
  out = json.loads(res.stdout.strip().splitlines()[-1])
  peak_mb, full_mb = out["roi_mb"], out["full_mb"]
  assert out["shape"] == [3, 1, 500, 500] and out["first"] == "c000_01s.jpg"
  print(
    f"peak RSS increase {peak_mb:.1f} MiB loading 3 ROIs (first call {out['first_mb']:.1f}), "
    f"{full_mb:.0f} MiB reading all of a {file_mb:.0f} MiB file"
  )
  assert full_mb > 0.8 * file_mb  # the measurement does see a full read
  assert peak_mb < 0.1 * file_mb, (peak_mb, file_mb)  # ~300 rows x 2,000 trials, not 400 MB
  # the one value checked against a direct float64 computation on the V1 rows
  rows = np.flatnonzero(vox["V1"].to_numpy())
  with h5py.File(h5, "r") as f:
    x = f["ResponseData/block0_values"][rows, :].T.astype(np.float64)
  z = (x - x.mean(0)) / (x.std(0) + 1e-8)
  a, b = z[0], z[1]
  np.testing.assert_allclose(out["rdm01"], 1 - np.corrcoef(a, b)[0, 1], atol=1e-5)
