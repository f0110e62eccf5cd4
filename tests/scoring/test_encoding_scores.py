"""results/encoding.csv rows against scikit-learn: RidgeCV (one penalty per target) inside each KFold training split
over the permuted stimuli, held-out Pearson r averaged over folds, r / reliability over the neuroids above the
ceiling threshold, median per ROI and subject; on a hidden tiny case."""

import dataclasses

import jax
import numpy as np
import pandas as pd
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold

from leut.scoring import encoding_scores
from tests.scoring.tiny_responses import ROIS, SUBJECTS, WHERE, tiny_case


def _sklearn_rows(feats, resp, seed):
  """{(layer, seed, roi, subject): (score, r_raw)} computed with scikit-learn and NumPy in float64."""
  n = len(resp.stimuli)
  order = np.asarray(jax.random.permutation(jax.random.key(seed), n))
  folds = [(order[tr], order[te]) for tr, te in KFold(encoding_scores.N_FOLDS).split(order)]
  y = resp.responses_SxN.astype(np.float64)
  out = {}
  for layer, f in feats.items():
    for s, x in enumerate(f.astype(np.float64)):
      x = x / np.sqrt(((x - x.mean(0)) ** 2).sum() / n)
      r = np.zeros((len(folds), y.shape[1]))
      for k, (train, test) in enumerate(folds):
        pred = RidgeCV(alphas=encoding_scores.LAMBDAS, alpha_per_target=True).fit(x[train], y[train]).predict(x[test])
        r[k] = [np.corrcoef(pred[:, t], y[test, t])[0, 1] for t in range(y.shape[1])]
      r = r.mean(0)
      for roi in ROIS:
        for sub in SUBJECTS:
          m = resp.mask(roi, sub)
          c = resp.neuroids["reliability"].to_numpy()[m]
          kept = c > encoding_scores.MIN_CEILING
          out[(layer, s, roi, sub)] = (np.median(r[m][kept] / c[kept]), np.median(r[m][kept]))
  return out


def test_encoding_rows_equal_scikit_learn_ridgecv_over_kfold():
  feats, resp = tiny_case(seed=3, n_stimuli=30)
  rows = pd.DataFrame(encoding_scores.encoding_rows(feats, resp, invalid_N=np.zeros(3, bool), seed=7, **WHERE))
  assert len(rows) == 3 * 2 * len(ROIS) * len(SUBJECTS)
  assert (rows.note == "").all() and (rows.n_folds == encoding_scores.N_FOLDS).all()
  ref = _sklearn_rows(feats, resp, seed=7)
  for _, row in rows.iterrows():
    score, raw = ref[(row.layer, row.seed, row.roi, row.subject)]
    np.testing.assert_allclose([row.score, row.r_raw], [score, raw], atol=1e-4)
  driven = rows[rows.layer == "conv1"].groupby("seed").r_raw.mean()
  assert driven[0] > 0.3  # seed 0's conv1 features drive the responses: a score that cannot be chance


def test_unreliable_blocks_and_diverged_seeds_are_undefined():
  feats, resp = tiny_case(seed=4, n_stimuli=20)
  resp.neuroids.loc[resp.mask("V1", "sub-02"), "reliability"] = 0.1
  rows = pd.DataFrame(
    encoding_scores.encoding_rows(feats, resp, invalid_N=np.array([False, False, True]), seed=0, **WHERE)
  )
  unreliable = rows[(rows.roi == "V1") & (rows.subject == "sub-02")]
  assert unreliable.score.isna().all() and (unreliable.n_targets == 0).all()
  assert (unreliable[unreliable.seed < 2].note == f"no neuroid with reliability > {encoding_scores.MIN_CEILING}").all()
  assert (rows[rows.seed == 2].note == "non_finite_parameters").all() and rows[rows.seed == 2].score.isna().all()
  rest = rows[(rows.seed < 2) & ~((rows.roi == "V1") & (rows.subject == "sub-02"))]
  assert rest.score.notna().all() and (rest.note == "").all()


def test_a_fixed_train_test_split_is_the_one_fold():
  _, resp = tiny_case(n_stimuli=20)
  split = np.where(np.arange(20) % 5 == 0, "test", "train")
  folds = encoding_scores.held_out_folds(dataclasses.replace(resp, split_S=split), seed=0)
  np.testing.assert_array_equal(folds, (split == "test")[None])
  only_train = encoding_scores.held_out_folds(dataclasses.replace(resp, split_S=np.full(20, "train")), seed=0)
  assert only_train.shape == (encoding_scores.N_FOLDS, 20) and (only_train.sum(0) == 1).all()


def test_targets_fitted_in_chunks_give_the_same_r(monkeypatch):
  feats, resp = tiny_case(seed=5, n_stimuli=20)
  x = encoding_scores.scaled_features(feats["conv1"])
  folds = encoding_scores.held_out_folds(resp, seed=0)
  whole = encoding_scores.held_out(x, resp.responses_SxN, folds)[0]
  monkeypatch.setattr(encoding_scores, "TARGET_CHUNK", 3)  # 20 targets: six chunks of 3, the last zero-padded
  chunked = encoding_scores.held_out(x, resp.responses_SxN, folds)[0]
  assert chunked.shape == whole.shape == (3, 20) and np.isfinite(chunked).all()
  np.testing.assert_allclose(chunked, whole, atol=1e-5)
