"""ResponseData: split-half reliability against an independent float64 computation, and the RDM view."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist, squareform
from scipy.stats import pearsonr

from leut.data.responses import ResponseData, half_assignments, split_half_reliability


def test_split_half_reliability_matches_scipy_with_spearman_brown():
  rng = np.random.default_rng(1)
  a = rng.normal(size=(4, 30, 6))
  b = a * 0.5 + rng.normal(size=(4, 30, 6))
  a[1, 3, 2] = np.nan  # a stimulus missing from one half of one split is left out of that split
  got = split_half_reliability(a, b)
  for n in range(6):
    rs = []
    for k in range(4):
      ok = np.isfinite(a[k, :, n]) & np.isfinite(b[k, :, n])
      rs.append(pearsonr(a[k, ok, n], b[k, ok, n])[0])
    r = np.mean(rs)
    assert got[n] == pytest.approx(2 * r / (1 + r), rel=1e-10)


def test_reliability_is_one_for_noise_free_repetitions_and_nan_for_constant_ones():
  x = np.random.default_rng(0).normal(size=(1, 20, 2))
  x[..., 1] = 3.0
  got = split_half_reliability(x, x.copy())
  assert got[0] == pytest.approx(1.0) and np.isnan(got[1])


def test_half_assignments_split_every_stimulus_evenly():
  group = np.repeat(np.arange(5), [4, 5, 6, 2, 7])
  halves = half_assignments(np.random.default_rng(3).permutation(group), 3, seed=1)
  for h in halves:
    perm_group = np.random.default_rng(3).permutation(group)
    for g, n in zip(range(5), [4, 5, 6, 2, 7]):
      assert h[perm_group == g].sum() == n // 2
  assert not (halves[0] == halves[1]).all()


def _data():
  rng = np.random.default_rng(2)
  table = pd.DataFrame(
    {
      "roi": ["V4"] * 5 + ["IT"] * 7,
      "subject": ["a", "a", "b", "b", "b", "a", "a", "a", "b", "b", "b", "b"],
      "neuroid_id": [str(i) for i in range(12)],
      "reliability": [0.9, 0.6, 0.8, 0.7, 0.6, 0.9, 0.9, 0.2, 0.8, 0.8, 0.8, 0.1],
    }
  )
  return ResponseData("x", tuple("stuvw"), tuple("ccddd"), rng.normal(size=(5, 12)).astype(np.float32), table, None)


def test_to_brain_data_is_the_correlation_distance_of_each_roi_and_subject():
  data = _data()
  brain = data.to_brain_data(min_reliability=0.5)
  assert brain.rois == ("V4", "IT") and brain.subjects == ("a", "b")
  for roi in brain.rois:
    for sub in brain.subjects:
      m = (data.neuroids.roi == roi) & (data.neuroids.subject == sub) & (data.neuroids.reliability > 0.5)
      want = squareform(pdist(data.responses_SxN[:, m.to_numpy()].astype(np.float64), "correlation"))
      np.testing.assert_allclose(brain.rdm(roi, sub), want, atol=1e-6)
  assert (brain.runs_JxS < 0).all() and len(set(brain.runs_JxS[0])) == 5
  with pytest.raises(ValueError, match="ROI 'V4' of subject 'a' has 1 neuroids with reliability > 0.85"):
    data.to_brain_data(min_reliability=0.85)
