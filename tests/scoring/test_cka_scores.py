"""results/cka.csv rows against an independent float64 CKA: HSIC with explicit centring matrices (biased) and the
U-statistic over distinct index quadruples (debiased, Song et al. 2012), on a hidden tiny case."""

import itertools

import numpy as np
import pandas as pd

from leut.scoring import cka_scores
from tests.scoring.tiny_responses import ROIS, SUBJECTS, WHERE, tiny_case


def _hsic_centring_matrix(k, l):
  n = k.shape[0]
  h = np.eye(n) - np.ones((n, n)) / n
  return np.trace(k @ h @ l @ h) / (n - 1) ** 2


def _hsic_u_statistic(k, l):
  """(1/(n)_4) sum over distinct (i, j, q, r) of k_ij l_ij + k_ij l_qr - 2 k_ij l_iq."""
  n = k.shape[0]
  idx = np.array(list(itertools.permutations(range(n), 4)))
  i, j, q, r = idx.T
  return np.mean(k[i, j] * l[i, j] + k[i, j] * l[q, r] - 2 * k[i, j] * l[i, q])


def _cka64(x, y, hsic):
  k, l = x @ x.T, y @ y.T  # uncentred Gram matrices: the HSIC estimators centre
  return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


def test_cka_rows_equal_an_independent_float64_computation():
  feats, resp = tiny_case(n_stimuli=9)  # 9 stimuli: 3024 quadruples for the U-statistic
  rows = pd.DataFrame(cka_scores.cka_rows(feats, resp, invalid_N=np.zeros(3, bool), **WHERE))
  assert len(rows) == 3 * 2 * len(ROIS) * len(SUBJECTS) * 2  # seeds x layers x ROIs x subjects x estimators
  assert (rows.note == "").all() and rows.cka.notna().all()
  assert set(rows.columns) >= {"rule", "seed", "epoch", "layer", "roi", "subject", "resolution", "arm", "estimator"}
  for _, row in rows.iterrows():
    x = feats[row.layer][row.seed].astype(np.float64)
    y = resp.select(row.roi, row.subject).astype(np.float64)
    hsic = _hsic_u_statistic if row.estimator == "debiased" else _hsic_centring_matrix
    np.testing.assert_allclose(row.cka, _cka64(x, y, hsic), rtol=2e-4, atol=2e-5)


def test_a_diverged_seed_and_nan_responses_are_reported_undefined():
  feats, resp = tiny_case(n_stimuli=9)
  resp.responses_SxN[3, resp.mask("IT", "sub-01")] = np.nan  # every IT neuroid of sub-01 missed stimulus 3
  feats["fc1"][2, 0, 0] = np.inf
  rows = pd.DataFrame(cka_scores.cka_rows(feats, resp, invalid_N=np.array([False, True, False]), **WHERE))
  assert (rows[rows.seed == 1].note == "non_finite_parameters").all() and rows[rows.seed == 1].cka.isna().all()
  bad = rows[(rows.seed == 2) & (rows.layer == "fc1")]
  assert (bad.note == "non_finite_features").all() and bad.cka.isna().all()
  empty = rows[(rows.roi == "IT") & (rows.subject == "sub-01") & (rows.seed == 0)]
  assert empty.cka.isna().all() and (empty.n_neuroids == 0).all() and empty.note.str.startswith("no neuroid").all()
  fine = rows[(rows.seed == 0) & ~((rows.roi == "IT") & (rows.subject == "sub-01"))]
  assert fine.cka.notna().all() and (fine.note == "").all()
