"""Evaluation-side statistics for the report: noise ceilings and partial RSA rows on a tiny random brain."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from leut import rsa
from leut.data.normalization import normalize_01
from leut.evaluate import model_rdms
from leut.scoring import stimulus_stats
from tests.report.tiny_brain import Brain
from tests.report.tiny_brain import correlation_rdm as _rdm


@pytest.fixture(scope="module")
def setup():
  rng = np.random.default_rng(0)
  S = 14
  shared = rng.normal(size=(S, 6))
  rdms = np.stack([np.stack([_rdm(shared + 0.5 * rng.normal(size=(S, 6))) for _ in range(3)]) for _ in range(2)])
  brain = Brain(rdms.astype(np.float32), ("V1", "IT"), ("sub-01", "sub-02", "sub-03"))
  images = normalize_01(rng.uniform(size=(S, 16, 16, 3)))
  masks = {"all": np.ones((S, S), bool)}
  return brain, images, masks, rng


def test_noise_ceiling_table(setup):
  brain, _, masks, _ = setup
  nc = stimulus_stats.noise_ceiling_table(brain, masks)
  assert list(nc.columns) == stimulus_stats.NOISE_CEILING_COLUMNS
  assert len(nc) == 2 and (nc.lower <= nc.upper).all() and (nc.lower > 0).all()
  iu = np.triu_indices(14, 1)
  v = brain.rdms_RxJxSxS[0][:, iu[0], iu[1]]
  lower = np.mean([sps.spearmanr(v[j], np.delete(v, j, 0).mean(0))[0] for j in range(3)])
  assert nc.lower.iloc[0] == pytest.approx(lower, abs=1e-5)


def test_partial_rows_match_the_plain_score_and_lower_it_for_a_copied_control(setup):
  brain, images, masks, rng = setup
  controls = stimulus_stats.control_rdms(images, names=("pixel", "luminance"))
  feats = rng.normal(size=(2, 14, 5)).astype(np.float32)
  rows = pd.DataFrame(
    stimulus_stats.partial_rows(
      rule="r",
      epoch=1,
      step=3,
      layer="conv1",
      model_NxP=rsa.upper_tri(model_rdms(feats)),
      brain=brain,
      controls=controls,
      masks=masks,
      resolution=16,
      arm="native",
    )
  )
  assert list(rows.columns) == stimulus_stats.PARTIAL_COLUMNS
  assert len(rows) == 2 * 2 * 3 * 3  # seeds x rois x subjects x (2 controls + 'all')
  iu = np.triu_indices(14, 1)
  r0 = rows[(rows.seed == 0) & (rows.roi == "V1") & (rows.subject == "sub-01") & (rows.control == "pixel")].iloc[0]
  assert r0.rho == pytest.approx(sps.spearmanr(_rdm(feats[0])[iu], brain.rdms_RxJxSxS[0, 0][iu])[0], abs=1e-5)
  # a control equal to the model RDM leaves nothing to correlate: the partial correlation is undefined
  same = stimulus_stats.partial_rows(
    rule="r",
    epoch=1,
    step=3,
    layer="conv1",
    model_NxP=rsa.upper_tri(model_rdms(feats[:1])),
    brain=brain,
    controls={"copy": _rdm(feats[0])},
    masks=masks,
    resolution=16,
    arm="native",
  )
  assert all(np.isnan(r["rho_partial"]) and np.isnan(r["rho_partial_textbook"]) for r in same)  # undefined, not ~0


def test_unnormalize_inverts_the_cifar_normalisation():
  x = np.random.default_rng(1).uniform(size=(2, 4, 4, 3)).astype(np.float32)
  np.testing.assert_allclose(stimulus_stats.unnormalize(normalize_01(x)), x, atol=1e-6)


def test_bootstrap_rows_bracket_the_observed_score(setup):
  brain, _, masks, rng = setup
  feats = rng.normal(size=(3, 14, 5)).astype(np.float32)
  rows = pd.DataFrame(
    stimulus_stats.bootstrap_rows(
      rule="r",
      epoch=0,
      step=0,
      layer="conv1",
      model_NxSxS=model_rdms(feats),
      brain=brain,
      masks=masks,
      resolution=16,
      arm="native",
      n_boot=200,
      rois=("V1",),
    )
  )
  assert list(rows.columns) == stimulus_stats.BOOTSTRAP_COLUMNS and len(rows) == 1
  r = rows.iloc[0]
  iu = np.triu_indices(14, 1)
  obs = np.mean([sps.spearmanr(_rdm(f)[iu], brain.rdms_RxJxSxS[0, j][iu])[0] for f in feats for j in range(3)])
  assert r.rho == pytest.approx(obs, abs=1e-5)
  assert r.ci_lo < r.rho < r.ci_hi


def test_best_layer_rows_choose_the_truly_best_layer_and_score_it_on_held_out_stimuli():
  rng = np.random.default_rng(3)
  S, N = 40, 2
  latent = rng.normal(size=(S, 8))
  rdms = np.stack([np.stack([_rdm(latent + 0.7 * rng.normal(size=(S, 8))) for _ in range(3)])])
  brain = Brain(rdms.astype(np.float32), ("V1",), ("sub-01", "sub-02", "sub-03"))
  feats = {
    "conv1": rng.normal(size=(N, S, 8)),  # unrelated to the brain
    "conv2": latent[None] + 0.3 * rng.normal(size=(N, S, 8)),  # the truly best layer
    "conv3": latent[None] + 1.5 * rng.normal(size=(N, S, 8)),  # related, but noisier
    "fc1": rng.normal(size=(N, S, 8)),
  }
  feats = {k: v.astype(np.float32) for k, v in feats.items()}
  masks = {"all": np.ones((S, S), bool)}
  layer_rdms = {layer: rsa.upper_tri(model_rdms(f)) for layer, f in feats.items()}
  rows = pd.DataFrame(
    stimulus_stats.best_layer_rows(
      rule="r", epoch=1, step=3, rdms=layer_rdms, brain=brain, masks=masks, resolution=16, arm="native", n_splits=4
    )
  )
  assert list(rows.columns) == stimulus_stats.BEST_LAYER_CV_COLUMNS and len(rows) == N
  one_at_a_time = stimulus_stats.best_layer_rows(
    rule="r",
    epoch=1,
    step=3,
    rdms=layer_rdms,
    brain=brain,
    masks=masks,
    resolution=16,
    arm="native",
    n_splits=4,
    seed_chunk=1,
  )
  pd.testing.assert_frame_equal(pd.DataFrame(one_at_a_time), rows)  # same halvings for every seed, in any chunking
  assert (rows.chosen_layers == ";".join(["conv2"] * 8)).all() and (rows.cv_layer == "conv2").all()
  iu = np.triu_indices(S, 1)
  for _, r in rows.iterrows():
    full = {
      l: np.mean([sps.spearmanr(_rdm(f[r.seed].astype(np.float64))[iu], rdms[0, j][iu])[0] for j in range(3)])
      for l, f in feats.items()
    }
    assert r.naive_max == pytest.approx(max(full.values()), abs=1e-5)  # all-stimulus max over layers
    assert abs(r.cv_score - full["conv2"]) < 0.1  # held-out score of the right layer: no selection bonus to speak of
  # a layer with constant features makes the seed's RDMs undefined: NaN and a note instead of a silent choice
  dead = dict(feats, conv1=np.zeros_like(feats["conv1"]))
  bad = pd.DataFrame(
    stimulus_stats.best_layer_rows(
      rule="r",
      epoch=1,
      step=3,
      rdms={layer: rsa.upper_tri(model_rdms(f)) for layer, f in dead.items()},
      flags={layer: stimulus_stats.feature_flags(f) for layer, f in dead.items()},
      brain=brain,
      masks=masks,
      resolution=16,
      arm="native",
      n_splits=1,
    )
  )
  assert bad.cv_score.isna().all() and bad.note.str.contains("constant").all()
