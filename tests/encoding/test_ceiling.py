"""Ceiling normalisation over reliable targets, against a NumPy reference; NaN when nothing can be scored."""

from __future__ import annotations

import numpy as np

from leut.encoding import ceiling_from_percent, ceiling_normalise


def test_normalises_reliable_targets_and_takes_their_median():
  r = np.array([[0.2, 0.5, np.nan, 0.1, 0.4], [0.3, -0.1, 0.2, 0.0, 0.6]])
  ceiling = np.array([0.5, 0.8, 0.9, 0.2, np.nan])
  got = ceiling_normalise(r, ceiling, min_ceiling=0.3)
  np.testing.assert_array_equal(got.kept_T, [True, True, True, False, False])
  want = r[:, :3] / ceiling[:3]
  np.testing.assert_allclose(got.normalised_NxT[:, :3], want, rtol=1e-6)
  assert np.isnan(got.normalised_NxT[:, 3:]).all()
  np.testing.assert_allclose(got.summary_N, np.nanmedian(want, axis=1), rtol=1e-6)
  np.testing.assert_allclose(got.raw_summary_N, np.nanmedian(r[:, :3], axis=1), rtol=1e-6)
  np.testing.assert_array_equal(got.n_defined_N, [2, 3])


def test_nothing_reliable_is_undefined():
  got = ceiling_normalise(np.ones((2, 3)), np.array([0.1, 0.2, 0.05]), min_ceiling=0.3)
  assert np.isnan(got.summary_N).all() and (np.asarray(got.n_defined_N) == 0).all()


def test_percent_noise_ceilings_become_correlations():
  np.testing.assert_allclose(ceiling_from_percent([30.0, 100.0, -5.0]), [np.sqrt(0.3), 1.0, 0.0], rtol=1e-6)
