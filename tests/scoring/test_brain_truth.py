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
