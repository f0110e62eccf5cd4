"""partial_compare against a float64 NumPy residualisation; control RDM builders against NumPy."""

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import pdist, squareform

import leut.rsa as rsa


def _resid(y, X):
  ry = stats.rankdata(y)
  A = np.column_stack([np.ones(len(y))] + [stats.rankdata(x) for x in X])
  beta, *_ = np.linalg.lstsq(A, ry, rcond=None)
  return ry - A @ beta


def test_partial_one_control_matches_published_formula():
  rng = np.random.default_rng(0)
  P = 120
  z = rng.normal(size=P)
  a = z + rng.normal(size=P)
  b = z + rng.normal(size=P) + 0.5 * a
  ar, br, zr = stats.rankdata(a), stats.rankdata(b), stats.rankdata(z)
  zc = zr - zr.mean()
  ra = ar - (ar @ zc) / (zc @ zc + 1e-10) * zr
  rb = br - (br @ zc) / (zc @ zc + 1e-10) * zr
  ref = stats.spearmanr(ra, rb)[0]
  assert float(rsa.partial_compare(a, b, z)) == pytest.approx(ref, abs=1e-5)


def test_partial_several_controls_and_mask():
  rng = np.random.default_rng(1)
  S = 16
  iu = np.triu_indices(S, k=1)
  P = len(iu[0])
  ctrl = rng.normal(size=(2, P))
  a = ctrl.sum(0) + rng.normal(size=P)
  b = ctrl[0] - ctrl[1] + rng.normal(size=P) + 0.3 * a
  keep = rng.random(P) < 0.7
  ref = stats.spearmanr(_resid(a[keep], ctrl[:, keep]), _resid(b[keep], ctrl[:, keep]))[0]
  got = float(rsa.partial_compare(a, b, ctrl, pair_mask=keep))
  assert got == pytest.approx(ref, abs=1e-5)
  # batched models
  got2 = np.asarray(rsa.partial_compare(np.stack([a, b]), b, ctrl, pair_mask=keep))
  assert got2[0] == pytest.approx(ref, abs=1e-5)


def test_control_rdms_match_numpy():
  rng = np.random.default_rng(2)
  img = rng.random((6, 16, 16, 3)).astype(np.float32)
  flat = img.reshape(6, -1).astype(np.float64)
  np.testing.assert_allclose(np.asarray(rsa.pixel_rdm(img)), squareform(pdist(flat, "correlation")), atol=2e-5)
  lum = (img @ np.array([0.2126, 0.7152, 0.0722])).mean(axis=(1, 2))
  np.testing.assert_allclose(np.asarray(rsa.luminance_rdm(img)), np.abs(lum[:, None] - lum[None]), atol=1e-6)
  mrgb = img.mean(axis=(1, 2)).astype(np.float64)
  np.testing.assert_allclose(np.asarray(rsa.mean_rgb_rdm(img)), squareform(pdist(mrgb, "correlation")), atol=1e-4)
  b = np.minimum((img * 8).astype(int), 7)
  hist = np.stack(
    [np.bincount((b[s, ..., 0] * 64 + b[s, ..., 1] * 8 + b[s, ..., 2]).ravel(), minlength=512) for s in range(6)]
  ).astype(np.float64)
  np.testing.assert_allclose(
    np.asarray(rsa.color_histogram_rdm(img)), squareform(pdist(hist, "correlation")), atol=2e-5
  )
  g = np.asarray(rsa.gabor_energy_rdm(img))
  assert g.shape == (6, 6) and np.all(np.isfinite(g)) and np.allclose(g, g.T, atol=1e-6)


def test_gabor_energy_prefers_matching_orientation():
  from leut.rsa.controls import gabor_energy

  H = 32
  yy, xx = np.mgrid[:H, :H]
  vertical = 0.5 + 0.5 * np.cos(2 * np.pi * 0.25 * xx)  # varies along x: theta = 0
  horizontal = 0.5 + 0.5 * np.cos(2 * np.pi * 0.25 * yy)  # varies along y: theta = pi/2
  img = np.stack([np.repeat(v[..., None], 3, -1) for v in (vertical, horizontal)]).astype(np.float32)
  e = np.asarray(gabor_energy(img, grid=1)).reshape(2, 3, 4)  # freq x orientation
  assert np.argmax(e[0, 0]) == 0 and np.argmax(e[1, 0]) == 2


def _textbook_partial_spearman(x, y, Z):
  """r_xy.Z from the inverse of the Spearman correlation matrix of (x, y, z_1..z_K), float64."""
  R = stats.spearmanr(np.column_stack([x, y] + list(Z))).statistic
  prec = np.linalg.inv(np.atleast_2d(R))
  return -prec[0, 1] / np.sqrt(prec[0, 0] * prec[1, 1])


def test_textbook_partial_spearman_equals_the_correlation_matrix_formula_and_differs_from_the_published_one():
  rng = np.random.default_rng(3)
  P = 300
  ctrl = rng.normal(size=(2, P))
  a = ctrl[0] + rng.standard_t(2, size=P)  # heavy tails: residual ranks are far from the residuals
  b = ctrl[0] - ctrl[1] + 0.6 * a + rng.standard_t(2, size=P)
  keep = rng.random(P) < 0.8
  textbook = float(rsa.partial_spearman(a, b, ctrl, pair_mask=keep))
  assert textbook == pytest.approx(_textbook_partial_spearman(a[keep], b[keep], ctrl[:, keep]), abs=1e-5)
  one = float(rsa.partial_spearman(a, b, ctrl[0]))  # one control: (r_xy - r_xz r_yz) / sqrt((1 - r_xz^2)(1 - r_yz^2))
  r = stats.spearmanr(np.column_stack([a, b, ctrl[0]])).statistic
  assert one == pytest.approx(
    (r[0, 1] - r[0, 2] * r[1, 2]) / np.sqrt((1 - r[0, 2] ** 2) * (1 - r[1, 2] ** 2)), abs=1e-5
  )
  published = float(rsa.partial_compare(a, b, ctrl, pair_mask=keep))  # re-ranked residuals
  ref = stats.spearmanr(_resid(a[keep], ctrl[:, keep]), _resid(b[keep], ctrl[:, keep]))[0]
  assert published == pytest.approx(ref, abs=1e-5)
  assert abs(published - textbook) > 0.01  # two estimators, not one


def test_a_duplicated_or_constant_control_adds_nothing():
  rng = np.random.default_rng(4)
  P = 80
  c = rng.normal(size=P)
  a, b = c + rng.normal(size=P), c + rng.normal(size=P)
  alone = float(rsa.partial_spearman(a, b, c))
  assert float(rsa.partial_spearman(a, b, np.stack([c, c, np.ones(P)]))) == pytest.approx(alone, abs=1e-5)
  assert float(rsa.partial_compare(a, b, np.stack([c, 2 * c]))) == pytest.approx(
    float(rsa.partial_compare(a, b, c)), abs=1e-5
  )


def test_a_model_the_controls_explain_entirely_has_no_partial_correlation():
  rng = np.random.default_rng(5)
  c, b = rng.normal(size=(2, 60))
  for fn in (rsa.partial_compare, rsa.partial_spearman):
    assert np.isnan(float(fn(np.exp(c), b, c))), fn.__name__  # same ranks as the control: residuals are 0
    assert np.isfinite(float(fn(c + rng.normal(size=60), b, c))), fn.__name__
