"""Statistics kernels give the same ρ and p under TF32 / bfloat16 matmul defaults (emulated: the CPU ignores them),
every product in them runs at HIGHEST, and the emulation does change a default-precision product."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import leut.rsa as rsa
from leut import encoding, evaluate
from leut.report import seed_stats
from tests.rsa.precision_emulation import FULL, reduced_matmul_precision
from tests.rsa.random_rdms import symmetric as _sym

S = 10
MODES = ("bfloat16", "tensorfloat32")


def _data():
  rng = np.random.default_rng(0)
  feats = rng.normal(size=(3, S, 12)).astype(np.float32) + 0.3
  brain = np.stack([_sym(rng, S) for _ in range(3)])
  controls = np.stack([_sym(rng, S), _sym(rng, S, 0)])
  runs = rng.integers(0, 3, (1, S))
  mask = np.asarray(rsa.cross_run_mask(runs))
  diffs = np.abs(rng.normal(0.01, 0.003, size=(6, 5))).astype(np.float32) + 1e-3 * rng.random((6, 5))
  images = rng.random((S, 8, 8, 3)).astype(np.float32)
  return feats, brain, controls, runs, mask, diffs, images


def _kernels():
  """One call of every statistics kernel (jitted, so that each compiles once per precision mode)."""
  feats, brain, controls, runs, mask, diffs, images = _data()
  models = rsa.rdm(feats)
  key = jax.random.key(0)
  targets = evaluate.brain_targets(jnp.asarray(brain[None]), jnp.asarray(mask))
  return {
    "rdm": lambda: (rsa.rdm(feats), rsa.rdm(feats, "euclidean")),
    "sign_flip": lambda: (
      rsa.sign_flip_test(diffs, "greater"),
      rsa.sign_flip_test(np.tile(diffs, 5), "greater", key=key, n_mc=2000),
    ),
    "report_sign_flip": lambda: (seed_stats.sign_flip(diffs, "greater").p,),
    "permutation": lambda: rsa.permutation_test(models[0], brain[0], models[1], key=key, n_perm=30)[:3],
    "partial": lambda: jax.jit(rsa.partial_compare)(models, brain[0], controls, pair_mask=mask),
    "bootstrap": lambda: tuple(
      rsa.bootstrap(models, brain, key=key, n_boot=6, method=m, runs_JxS=runs).scores for m in ("spearman", "pearson")
    ),
    "best_layer": lambda: jax.jit(rsa.cross_validated_best_layer, static_argnames="n_splits")(
      models, brain, key=key, n_splits=2, pair_mask=mask
    ),
    "block_clean": lambda: (rsa.block_clean(brain[0], runs[0]),),
    "luminance_control": lambda: (rsa.luminance_rdm(images),),
    "score_kernel": lambda: evaluate.score_kernel(jnp.asarray(feats), targets),
    "score_and_rank": lambda: evaluate.score_and_rank_rdms(rsa.upper_tri(models), targets),
    "cka": lambda: (rsa.cka(feats, feats[::-1]), rsa.cka(feats, feats[::-1], debiased=True)),
    "encoding": lambda: (
      encoding.encoding_scores(
        feats, feats[0, :, :5] ** 2, encoding.kfold_test_masks(S, 2), np.array([0.1, 10.0])
      ).r_NxT
    ),
  }


def _numbers(out):
  return [np.asarray(x, np.float64) for x in jax.tree.leaves(out) if x is not None]


def test_statistics_do_not_change_under_reduced_matmul_precision():
  """Under the bfloat16 default (the coarser rounding) every kernel's products are HIGHEST and its numbers are
  unchanged; `tensorfloat32` lowers the same products (precision HIGH instead of DEFAULT), checked below."""
  kernels = _kernels()
  plain = {name: _numbers(fn()) for name, fn in kernels.items()}
  with reduced_matmul_precision("bfloat16") as seen:
    emulated = {name: _numbers(fn()) for name, fn in kernels.items()}
  assert len(seen) > 10, "the statistics kernels contain products"
  assert set(seen) == {FULL}, f"products below HIGHEST: {set(seen) - {FULL}}"
  for name in kernels:
    for a, b in zip(plain[name], emulated[name], strict=True):
      np.testing.assert_allclose(b, a, rtol=0, atol=1e-7, err_msg=name)


def test_the_noise_ceiling_has_no_product_to_lower():
  """Its scores are element-wise sums (`compare`), so tracing it under the emulation records no product at all."""
  _, brain, *_ = _data()
  with reduced_matmul_precision("bfloat16") as seen:
    jax.make_jaxpr(lambda b, k: rsa.noise_ceiling(b, key=k, n_perm=4))(brain, jax.random.key(0))
    jax.make_jaxpr(lambda b: rsa.noise_ceiling(b, "rho_a"))(brain)
  assert seen == []


@pytest.mark.parametrize("mode", MODES)
def test_the_emulation_changes_a_default_precision_product_and_the_old_sign_flip_null(mode):
  rng = np.random.default_rng(1)
  a, b = rng.normal(size=(16, 16)).astype(np.float32), rng.normal(size=(16, 16)).astype(np.float32)
  f = jax.jit(lambda x, y: x @ y)
  highest = jax.jit(lambda x, y: jnp.matmul(x, y, precision=jax.lax.Precision.HIGHEST))
  exact = np.asarray(highest(a, b))  # not `f`: a GPU's default product is already TF32
  with reduced_matmul_precision(mode):
    lowered = np.asarray(f(a, b))
    kept = np.asarray(highest(a, b))
  assert np.abs(lowered - exact).max() > 1e-4
  np.testing.assert_array_equal(kept, exact)

  # The sign-flip null as it was written before (`d @ signs.T`, default precision): with every seed positive the
  # identity assignment must count, p = 1/32; rounded inputs drop it in some cases (p = 0), the kernel never does.
  signs_CxN = 1.0 - 2.0 * ((np.arange(32)[:, None] >> np.arange(5)[None, :]) & 1).astype(np.float32)

  def old_p(d_KxN):
    null = d_KxN @ signs_CxN.T / 5
    obs = jnp.mean(d_KxN, -1, keepdims=True)
    return jnp.mean(null >= obs - 1e-6 * jnp.max(jnp.abs(d_KxN), -1, keepdims=True), -1)

  d = (np.abs(rng.normal(0.02, 0.01, size=(64, 5))) + 1e-3).astype(np.float32)
  np.testing.assert_array_equal(np.asarray(jax.jit(old_p)(d)), 1 / 32)
  with reduced_matmul_precision(mode) as seen:
    assert (np.asarray(jax.jit(old_p)(d)) == 0).any()
    np.testing.assert_array_equal(np.asarray(rsa.sign_flip_test(d, "greater")), 1 / 32)
  assert set(seen) == {FULL, (jax.lax.Precision(mode),) * 2}  # the old null's product and the kernel's
