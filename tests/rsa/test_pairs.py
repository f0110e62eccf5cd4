"""Cross-run mask and run-pair block cleaning against explicit loops."""

import numpy as np

import leut.rsa as rsa


def test_cross_run_mask_matches_loop():
  rng = np.random.default_rng(0)
  runs = rng.integers(0, 4, (3, 17))
  got = np.asarray(rsa.cross_run_mask(runs))
  ref = np.zeros((17, 17), bool)
  for a in range(17):
    for b in range(17):
      ref[a, b] = a != b and all(runs[j, a] != runs[j, b] for j in range(3))
  np.testing.assert_array_equal(got, ref)


def test_block_clean_matches_loop():
  rng = np.random.default_rng(1)
  S = 12
  runs = rng.integers(0, 3, S)
  iu, ju = np.triu_indices(S, k=1)
  vec = rng.normal(size=len(iu))
  mask = runs[iu] != runs[ju]
  got = np.asarray(rsa.block_clean(vec, runs, pair_mask=mask))
  for p in range(len(iu)):
    blk = {runs[iu[p]], runs[ju[p]]}
    members = [q for q in range(len(iu)) if {runs[iu[q]], runs[ju[q]]} == blk and mask[q]]
    mean = np.mean(vec[members]) if members else 0.0
    assert abs(got[p] - (vec[p] - mean)) < 1e-5
