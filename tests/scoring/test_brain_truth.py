"""`brain_truth.mantel_p` against `rsa.permutation_test` (the JAX kernel, same relabellings) on hidden RDMs: the
same Spearman rho and the same one-sided permutation p, including a null case whose p is far from the floor."""

import jax.numpy as jnp
import numpy as np
import pytest

from leut import rsa
from leut.scoring import brain_truth


def _rdm(x):
  return 1.0 - np.corrcoef(x)


@pytest.mark.parametrize("shared", [1.0, 0.0])
def test_mantel_p_equals_the_rsa_permutation_test(shared):
  rng = np.random.default_rng(7)
  latent = rng.normal(size=(30, 6))
  model = _rdm(latent @ rng.normal(size=(6, 20)) + rng.normal(size=(30, 20)))
  brain = _rdm(shared * latent @ rng.normal(size=(6, 25)) + rng.normal(size=(30, 25)))
  perms = np.argsort(rng.random((200, 30)), axis=1)
  rho, p = brain_truth.mantel_p(model, brain, perms)
  ref = rsa.permutation_test(
    jnp.asarray(model, jnp.float32), jnp.asarray(brain, jnp.float32), perms_NxS=perms, alternative="greater"
  )
  np.testing.assert_allclose(rho, float(ref.observed), atol=1e-5)
  assert p == pytest.approx(float(ref.p), abs=1.5 / 201)  # at most one relabelling on the other side of a tie
  assert (p < 0.05) if shared else (p > 0.05)


@pytest.mark.parametrize("bad", ["constant", "nan"])
def test_an_undefined_rho_has_an_undefined_p(bad):
  """A constant or non-finite RDM gives rho NaN, and p NaN with it (not the floor 1/(N+1)), as rsa.permutation_test."""
  rng = np.random.default_rng(3)
  model = _rdm(rng.normal(size=(12, 5)))
  brain = np.ones((12, 12)) - np.eye(12) if bad == "constant" else _rdm(rng.normal(size=(12, 5)))
  if bad == "nan":
    brain[2, 5] = brain[5, 2] = np.nan
  perms = np.argsort(rng.random((50, 12)), axis=1)
  rho, p = brain_truth.mantel_p(model, brain, perms)
  ref = rsa.permutation_test(
    jnp.asarray(model, jnp.float32), jnp.asarray(brain, jnp.float32), perms_NxS=perms, alternative="greater"
  )
  assert np.isnan(rho) and np.isnan(p) and np.isnan(float(ref.observed)) and np.isnan(float(ref.p))
